package video

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/img2vid/img2vid"
	"github.com/img2vid/img2vid/internal/testenv"
)

func TestMuxArgs(t *testing.T) {
	tests := []struct {
		name string
		spec MuxSpec
		want string
	}{
		{"mp4 with AAC, padded to the video",
			MuxSpec{Video: "v.mp4", Audio: "a.wav", Format: img2vid.FormatMP4, Duration: 3, Output: "o.mp4"},
			"-nostdin -hide_banner -nostats -loglevel error -protocol_whitelist file -format_whitelist mov,matroska -i v.mp4 -protocol_whitelist file -format_whitelist mp3,aac,mov,wav,ogg,flac,matroska,aiff,caf,w64 -i a.wav -map 0:v:0 -map 1:a:0 -c:v copy -af apad -c:a aac -b:a 160k -f mp4 -movflags +faststart -t 3 -y o.mp4"},
		{"webm with Opus, faded out",
			MuxSpec{Video: "v.webm", Audio: "a.mp3", Format: img2vid.FormatWebM, Duration: 2.5, FadeOut: 0.6251, Output: "o.webm"},
			"-nostdin -hide_banner -nostats -loglevel error -protocol_whitelist file -format_whitelist mov,matroska -i v.webm -protocol_whitelist file -format_whitelist mp3,aac,mov,wav,ogg,flac,matroska,aiff,caf,w64 -i a.mp3 -map 0:v:0 -map 1:a:0 -c:v copy -af afade=t=out:st=1.875:d=0.625,apad -c:a libopus -b:a 128k -f webm -t 2.5 -y o.webm"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := strings.Join(MuxArgs(tt.spec), " "); got != tt.want {
				t.Errorf("MuxArgs:\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestProbeAudioArgs(t *testing.T) {
	want := "-nostdin -hide_banner -nostats -loglevel error -xerror -protocol_whitelist file -format_whitelist mp3,aac,mov,wav,ogg,flac,matroska,aiff,caf,w64 -i /jobs/a/soundtrack.upload -map 0:a:0 -vn -c:a pcm_s16le -f null -progress pipe:1 -"
	if got := strings.Join(ProbeAudioArgs("/jobs/a/soundtrack.upload"), " "); got != want {
		t.Errorf("ProbeAudioArgs:\n got %s\nwant %s", got, want)
	}
}

func TestLastOutTime(t *testing.T) {
	got := lastOutTime([]byte("out_time_us=100000\nprogress=continue\nout_time_us=3300000\nout_time=00:00:03.300000\nprogress=end\n"))
	if got != 3.3 {
		t.Errorf("lastOutTime = %v, want 3.3", got)
	}
}

// sine writes a sine tone of the given length with ffmpeg's own source.
func sine(t *testing.T, dir, name string, seconds float64) string {
	t.Helper()
	path := filepath.Join(dir, name)
	out, err := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i",
		"sine=frequency=440:duration="+strconv.FormatFloat(seconds, 'f', -1, 64), "-y", path).CombinedOutput()
	if err != nil {
		t.Fatalf("making %s: %v: %s", name, err, out)
	}
	return path
}

func TestProbeAudio(t *testing.T) {
	testenv.NeedFFmpeg(t)
	dir := t.TempDir()
	ctx := context.Background()
	for _, name := range []string{"tone.wav", "tone.mp3", "tone.flac", "tone.ogg", "tone.m4a", "tone.webm", "tone.aiff"} {
		got, err := ProbeAudio(ctx, "ffmpeg", sine(t, dir, name, 2.5), name)
		if err != nil || math.Abs(got-2.5) > 0.06 {
			t.Errorf("%s: %v s, %v; want 2.5 s", name, got, err)
		}
	}
	text := filepath.Join(dir, "notes.mp3")
	os.WriteFile(text, []byte("this is not a song\n"), 0o600)
	_, err := ProbeAudio(ctx, "ffmpeg", text, `soundtrack "notes.mp3"`)
	if img2vid.ErrorCode(err) != img2vid.EINVALID || strings.Contains(err.Error(), dir) ||
		!strings.HasPrefix(err.Error(), `soundtrack "notes.mp3" is not audio that can be decoded`) {
		t.Errorf("a text file: %v, want an invalid-input error naming it, without the path", err)
	}
	t.Logf("a text file: %v", err)
	if _, err := ProbeAudio(ctx, "no-such-ffmpeg", text, "x"); img2vid.ErrorCode(err) != img2vid.EUNAVAILABLE {
		t.Errorf("no ffmpeg: %v", err)
	}
}

// TestPlaylistSoundtracksRefused: a soundtrack that is a list of other
// files (an HLS playlist, a concat or ffconcat list), whatever its name,
// pointing at a local file that was never uploaded, is refused by name at
// once, and ffmpeg reads nothing it names.
func TestPlaylistSoundtracksRefused(t *testing.T) {
	testenv.NeedFFmpeg(t)
	dir := t.TempDir()
	secret := sine(t, dir, "secret.wav", 1)
	lists := map[string]string{
		"hls.mp3":     "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:1,\n" + secret + "\n#EXT-X-ENDLIST\n",
		"endless.m4a": "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:1,\n" + secret + "\n",
		"concat.mp3":  "ffconcat version 1.0\nfile '" + secret + "'\n",
		"concat.wav":  "file '" + secret + "'\n",
		"text.flac":   "not a sound\n",
	}
	for name, body := range lists {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_, err := ProbeAudio(context.Background(), "ffmpeg", path, `soundtrack "`+name+`"`)
		if img2vid.ErrorCode(err) != img2vid.EINVALID || !strings.HasPrefix(err.Error(), `soundtrack "`+name+`" is not`) || time.Since(start) > time.Second {
			t.Errorf("%s: %v after %v, want an invalid-input error naming it within a second", name, err, time.Since(start))
		}
		t.Logf("%s: %v", name, err)
	}
}

// streams returns the codec and length of each kind of stream ffprobe
// finds in file.
func streams(t *testing.T, file string) map[string][2]string {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_type,codec_name,duration",
		"-of", "json", file).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", file, err)
	}
	var raw struct {
		Streams []map[string]string `json:"streams"`
	}
	if err := json.Unmarshal(out, &raw); err != nil {
		t.Fatal(err)
	}
	m := map[string][2]string{}
	for _, s := range raw.Streams {
		m[s["codec_type"]] = [2]string{s["codec_name"], s["duration"]}
	}
	return m
}

func TestMux(t *testing.T) {
	testenv.NeedFFmpeg(t)
	dir := t.TempDir()
	ctx := context.Background()
	tone := sine(t, dir, "tone.wav", 5)
	for _, format := range []string{img2vid.FormatMP4, img2vid.FormatWebM} {
		t.Run(format, func(t *testing.T) {
			silent := filepath.Join(dir, "silent."+format)
			if out, err := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=10:duration=2",
				"-pix_fmt", "yuv420p", "-y", silent).CombinedOutput(); err != nil {
				t.Fatalf("making the video: %v: %s", err, out)
			}
			out := filepath.Join(dir, "out."+format)
			if err := Mux(ctx, "ffmpeg", MuxSpec{Video: silent, Audio: tone, Format: format, Duration: 2, FadeOut: 0.5, Output: out}); err != nil {
				t.Fatal(err)
			}
			s := streams(t, out)
			want := map[string]string{img2vid.FormatMP4: "aac", img2vid.FormatWebM: "opus"}[format]
			if s["audio"][0] != want {
				t.Errorf("audio stream %v, want %s", s["audio"], want)
			}
			got, err := ProbeAudio(ctx, "ffmpeg", out, "out")
			if err != nil || math.Abs(got-2) > 0.05 {
				t.Errorf("audio length %v s (%v), want 2 s, the video's", got, err)
			}
			if left, _ := filepath.Glob(filepath.Join(dir, ".*.part")); len(left) > 0 {
				t.Errorf("partial files left: %v", left)
			}
		})
	}
}

// A mux told the most bytes it may write stops there and fails with
// ErrMaxBytes, leaving no file; one that fits is written whole.
func TestMuxStopsAtMaxBytes(t *testing.T) {
	testenv.NeedFFmpeg(t)
	dir := t.TempDir()
	ctx := context.Background()
	tone := sine(t, dir, "tone.wav", 5)
	silent := filepath.Join(dir, "silent.mp4")
	if out, err := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=10:duration=4",
		"-pix_fmt", "yuv420p", "-y", silent).CombinedOutput(); err != nil {
		t.Fatalf("making the video: %v: %s", err, out)
	}
	out := filepath.Join(dir, "out.mp4")
	if err := Mux(ctx, "ffmpeg", MuxSpec{Video: silent, Audio: tone, Format: img2vid.FormatMP4, Duration: 4, Output: out, MaxBytes: 20 << 10}); !errors.Is(err, ErrMaxBytes) {
		t.Fatalf("mux over the cap: %v, want ErrMaxBytes", err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*out.mp4*")); len(left) > 0 {
		t.Errorf("files left: %v", left)
	}
	if err := Mux(ctx, "ffmpeg", MuxSpec{Video: silent, Audio: tone, Format: img2vid.FormatMP4, Duration: 4, Output: out, MaxBytes: 10 << 20}); err != nil {
		t.Fatalf("mux within the cap: %v", err)
	}
	if got, err := ProbeAudio(ctx, "ffmpeg", out, "out"); err != nil || math.Abs(got-4) > 0.05 {
		t.Errorf("audio length %v s (%v), want 4 s", got, err)
	}
}
