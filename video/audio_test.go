package video

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
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
			MuxSpec{Video: "v.mp4", Audio: "a.flac", Format: img2vid.FormatMP4, Duration: 3, Output: "o.mp4"},
			"-nostdin -hide_banner -nostats -loglevel error -protocol_whitelist file -format_whitelist mov,matroska -i v.mp4 -protocol_whitelist file -format_whitelist flac -f flac -i a.flac -map 0:v:0 -map 1:a:0 -c:v copy -af apad -c:a aac -b:a 160k -f mp4 -movflags +faststart -t 3 -y o.mp4"},
		{"webm with Opus, faded out",
			MuxSpec{Video: "v.webm", Audio: "soundtrack.flac", Format: img2vid.FormatWebM, Duration: 2.5, FadeOut: 0.6251, Output: "o.webm"},
			"-nostdin -hide_banner -nostats -loglevel error -protocol_whitelist file -format_whitelist mov,matroska -i v.webm -protocol_whitelist file -format_whitelist flac -f flac -i soundtrack.flac -map 0:v:0 -map 1:a:0 -c:v copy -af afade=t=out:st=1.875:d=0.625,apad -c:a libopus -b:a 128k -f webm -t 2.5 -y o.webm"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := strings.Join(MuxArgs(tt.spec), " "); got != tt.want {
				t.Errorf("MuxArgs:\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestDecodeAudioArgs(t *testing.T) {
	const head = "-nostdin -hide_banner -nostats -loglevel error -xerror -protocol_whitelist file -format_whitelist mp3,aac,mov,wav,ogg,flac,matroska,aiff,caf,w64 -i /jobs/a/soundtrack.upload -map 0:a:0 -vn -map_metadata -1 -map_chapters -1 -af " + decodedSound + " -c:a flac "
	for _, tc := range []struct {
		longest time.Duration
		want    string
	}{
		{0, head + "-f flac -progress pipe:1 -y /jobs/a/.soundtrack.part"},
		{30 * time.Minute, head + "-t 1801 -f flac -progress pipe:1 -y /jobs/a/.soundtrack.part"},
		{1500 * time.Millisecond, head + "-t 2.5 -f flac -progress pipe:1 -y /jobs/a/.soundtrack.part"},
	} {
		if got := strings.Join(DecodeAudioArgs("/jobs/a/soundtrack.upload", "/jobs/a/.soundtrack.part", tc.longest), " "); got != tc.want {
			t.Errorf("DecodeAudioArgs(%v):\n got %s\nwant %s", tc.longest, got, tc.want)
		}
	}
}

func TestDecodeTimeout(t *testing.T) {
	for longest, want := range map[time.Duration]time.Duration{0: 0, time.Minute: 72 * time.Second, 30 * time.Minute: 7 * time.Minute} {
		if got := decodeTimeout(longest); got != want {
			t.Errorf("decodeTimeout(%v) = %v, want %v", longest, got, want)
		}
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

// flacMagic is how every FLAC file begins.
var flacMagic = []byte("fLaC")

// decoded fails the test unless file is a FLAC file.
func decoded(t *testing.T, file string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil || !bytes.HasPrefix(b, flacMagic) {
		t.Errorf("%s: %.8q (%v), want a FLAC file", filepath.Base(file), b, err)
	}
}

// onlyFiles fails the test unless dir holds exactly the files named: no
// partial file, nothing written that was not asked for.
func onlyFiles(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if strings.Join(got, " ") != strings.Join(names, " ") {
		t.Errorf("%s holds %v, want %v", dir, got, names)
	}
}

// A soundtrack in any of the containers taken is decoded, once, into a
// FLAC file of its length, 16-bit, at most 48 kHz and two channels,
// written whole or not at all; the user's file is kept, or replaced when
// it is the destination.
func TestDecodeAudio(t *testing.T) {
	testenv.NeedFFmpeg(t)
	dir := t.TempDir()
	ctx := context.Background()
	for _, name := range []string{"tone.wav", "tone.mp3", "tone.flac", "tone.ogg", "tone.m4a", "tone.webm", "tone.aiff"} {
		src := sine(t, dir, name, 2.5)
		out := t.TempDir()
		dst := filepath.Join(out, "soundtrack.flac")
		got, err := DecodeAudio(ctx, "ffmpeg", src, dst, name, time.Minute)
		if err != nil || math.Abs(got-2.5) > 0.06 {
			t.Errorf("%s: %v s, %v; want 2.5 s", name, got, err)
		}
		decoded(t, dst)
		onlyFiles(t, out, "soundtrack.flac")
		if _, err := os.Stat(src); err != nil {
			t.Errorf("%s: the source is gone: %v", name, err)
		}
	}

	t.Run("in place", func(t *testing.T) {
		up := t.TempDir()
		src := filepath.Join(up, "soundtrack.upload")
		if err := os.Rename(sine(t, up, "tone.mp3", 1.5), src); err != nil {
			t.Fatal(err)
		}
		if got, err := DecodeAudio(ctx, "ffmpeg", src, src, "tone", time.Minute); err != nil || math.Abs(got-1.5) > 0.06 {
			t.Errorf("%v s, %v; want 1.5 s", got, err)
		}
		decoded(t, src) // the user's MP3 is gone: what is there is FLAC
		onlyFiles(t, up, "soundtrack.upload")
	})

	t.Run("bounded form", func(t *testing.T) {
		wide := filepath.Join(dir, "wide.wav")
		if out, err := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=r=96000:d=1", "-ac", "6",
			"-c:a", "pcm_s24le", "-y", wide).CombinedOutput(); err != nil {
			t.Fatalf("making %s: %v: %s", wide, err, out)
		}
		dst := filepath.Join(t.TempDir(), "wide.flac")
		if _, err := DecodeAudio(ctx, "ffmpeg", wide, dst, "wide", 0); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_name,sample_fmt,sample_rate,channels",
			"-of", "csv=p=0", dst).Output()
		if got := strings.TrimSpace(string(out)); err != nil || got != "flac,s16,48000,2" {
			t.Errorf("96 kHz, 6 channels, 24 bits decoded as %q (%v), want flac,s16,48000,2", got, err)
		}
	})

	text := filepath.Join(dir, "notes.mp3")
	os.WriteFile(text, []byte("this is not a song\n"), 0o600)
	out := t.TempDir()
	_, err := DecodeAudio(ctx, "ffmpeg", text, filepath.Join(out, "soundtrack.flac"), `soundtrack "notes.mp3"`, time.Minute)
	if img2vid.ErrorCode(err) != img2vid.EINVALID || strings.Contains(err.Error(), dir) || strings.Contains(err.Error(), out) ||
		!strings.HasPrefix(err.Error(), `soundtrack "notes.mp3" is not audio that can be decoded`) {
		t.Errorf("a text file: %v, want an invalid-input error naming it, without a path", err)
	}
	onlyFiles(t, out)
	t.Logf("a text file: %v", err)
	if _, err := DecodeAudio(ctx, "no-such-ffmpeg", text, filepath.Join(out, "x.flac"), "x", 0); img2vid.ErrorCode(err) != img2vid.EUNAVAILABLE {
		t.Errorf("no ffmpeg: %v", err)
	}
	onlyFiles(t, out)
}

// hangGuard is the context of a test that would hang if the bound it
// tests broke: it fails the test then, instead of blocking it.
func hangGuard(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// TestPlaylistSoundtracksRefused: a soundtrack that is a list of other
// files (an HLS playlist, a concat or ffconcat list), uploaded as
// song.mp3, pointing at a local file that was never uploaded, is refused
// by name, and nothing of that file reaches any output: none is written.
func TestPlaylistSoundtracksRefused(t *testing.T) {
	testenv.NeedFFmpeg(t)
	secret := sine(t, t.TempDir(), "secret.wav", 1)
	const playlist = `soundtrack "song.mp3" is not a sound file img2vid reads: a playlist`
	for _, tc := range []struct {
		name, body, want string
	}{
		{"HLS", "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:1,\n" + secret + "\n#EXT-X-ENDLIST\n", playlist},
		{"endless HLS", "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:1,\n" + secret + "\n", playlist},
		{"ffconcat", "ffconcat version 1.0\nfile '" + secret + "'\n", playlist},
		// Without its first line no probe takes a list for concat: it is
		// then a broken MP3.
		{"concat", "file '" + secret + "'\nduration 1\n", `soundtrack "song.mp3" is not`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			src := filepath.Join(dir, "song.mp3")
			if err := os.WriteFile(src, []byte(tc.body), 0o600); err != nil {
				t.Fatal(err)
			}
			for _, dst := range []string{filepath.Join(dir, "soundtrack.flac"), src} {
				_, err := DecodeAudio(hangGuard(t), "ffmpeg", src, dst, `soundtrack "song.mp3"`, time.Minute)
				if img2vid.ErrorCode(err) != img2vid.EINVALID || !strings.HasPrefix(err.Error(), tc.want) {
					t.Errorf("into %s: %v, want an invalid-input error starting %q", filepath.Base(dst), err, tc.want)
				}
				onlyFiles(t, dir, "song.mp3")
			}
			if b, _ := os.ReadFile(src); string(b) != tc.body {
				t.Errorf("the refused upload was changed: %q", b)
			}
		})
	}
}

// A soundtrack longer than max_duration is refused naming the limit, and
// leaves no file; one within it is taken.
func TestSoundtrackPastTheLimitRefused(t *testing.T) {
	testenv.NeedFFmpeg(t)
	dir := t.TempDir()
	out := t.TempDir()
	long := sine(t, dir, "long.mp3", 3)
	_, err := DecodeAudio(hangGuard(t), "ffmpeg", long, filepath.Join(out, "soundtrack.flac"), `soundtrack "long.mp3"`, 2*time.Second)
	var e *img2vid.Error
	if !errors.As(err, &e) || e.Code != img2vid.ETOOLARGE || e.Limit != img2vid.LimitDuration ||
		e.Message != `soundtrack "long.mp3" lasts more than 2 s; the limit is max_duration=2s` {
		t.Errorf("3 s under max_duration=2s: %v, want a refusal naming the limit", err)
	}
	onlyFiles(t, out)
	if got, err := DecodeAudio(hangGuard(t), "ffmpeg", long, filepath.Join(out, "soundtrack.flac"), "long.mp3", 4*time.Second); err != nil || math.Abs(got-3) > 0.06 {
		t.Errorf("3 s under max_duration=4s: %v s, %v", got, err)
	}
}

// feed makes a named pipe at path that serves a WAV header (8 kHz mono,
// its lengths unknown), then, when endless, silence for as long as it is
// read, else nothing more until the test ends: a soundtrack that never
// ends, and one that never comes.
func feed(t *testing.T, path string, endless bool) {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	header := []byte("RIFF\xff\xff\xff\xffWAVEfmt ")
	header = binary.LittleEndian.AppendUint32(header, 16)
	header = binary.LittleEndian.AppendUint16(header, 1)     // PCM
	header = binary.LittleEndian.AppendUint16(header, 1)     // mono
	header = binary.LittleEndian.AppendUint32(header, 8000)  // samples per second
	header = binary.LittleEndian.AppendUint32(header, 16000) // bytes per second
	header = binary.LittleEndian.AppendUint16(header, 2)     // bytes per sample
	header = binary.LittleEndian.AppendUint16(header, 16)    // bits per sample
	header = append(header, "data\xff\xff\xff\xff"...)
	done := make(chan struct{})
	fed := make(chan struct{})
	go func() {
		defer close(fed)
		w, err := os.OpenFile(path, os.O_WRONLY, 0) // waits for ffmpeg to open it
		if err != nil {
			return
		}
		defer w.Close()
		if _, err := w.Write(header); err != nil || !endless {
			<-done
			return
		}
		silence := make([]byte, 16000)
		for {
			if _, err := w.Write(silence); err != nil {
				return // ffmpeg stopped reading
			}
		}
	}()
	t.Cleanup(func() {
		close(done)
		// Open the reading end, in case ffmpeg never did, so the writer
		// goes on and ends.
		if r, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0); err == nil {
			r.Close()
		}
		<-fed
	})
}

// A soundtrack that never ends is decoded up to max_duration and refused
// naming it; one that never comes is stopped by the wall-clock bound,
// refused naming the limit it comes from. Neither leaves a file.
func TestEndlessSoundtrackStops(t *testing.T) {
	testenv.NeedFFmpeg(t)
	dir := t.TempDir()
	out := t.TempDir()
	endless := filepath.Join(dir, "endless.wav")
	feed(t, endless, true)
	_, err := DecodeAudio(hangGuard(t), "ffmpeg", endless, filepath.Join(out, "soundtrack.flac"), `soundtrack "endless.wav"`, 2*time.Second)
	var e *img2vid.Error
	if !errors.As(err, &e) || e.Limit != img2vid.LimitDuration || !strings.HasPrefix(e.Message, `soundtrack "endless.wav" lasts more than 2 s`) {
		t.Errorf("endless: %v, want a refusal naming max_duration", err)
	}
	onlyFiles(t, out)

	stalled := filepath.Join(dir, "stalled.wav")
	feed(t, stalled, false)
	_, err = decodeAudio(hangGuard(t), "ffmpeg", stalled, filepath.Join(out, "soundtrack.flac"), `soundtrack "stalled.wav"`, 2*time.Second, time.Second)
	if !errors.As(err, &e) || e.Limit != img2vid.LimitDuration ||
		e.Message != `soundtrack "stalled.wav" did not decode within 1s; the limit is max_duration=2s` {
		t.Errorf("stalled: %v, want a refusal naming max_duration", err)
	}
	onlyFiles(t, out)
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

// soundtrack makes a tone of the given length and decodes it as an
// upload is, returning the decoded file.
func soundtrack(t *testing.T, dir string, seconds float64) string {
	t.Helper()
	dst := filepath.Join(dir, "soundtrack.flac")
	if _, err := DecodeAudio(context.Background(), "ffmpeg", sine(t, dir, "tone.wav", seconds), dst, "tone", 0); err != nil {
		t.Fatal(err)
	}
	return dst
}

// soundLength is the length of file's first audio stream, decoded.
func soundLength(t *testing.T, file string) float64 {
	t.Helper()
	got, err := DecodeAudio(context.Background(), "ffmpeg", file, filepath.Join(t.TempDir(), "back.flac"), "out", 0)
	if err != nil {
		t.Fatalf("the sound of %s: %v", filepath.Base(file), err)
	}
	return got
}

// silentVideo writes a video of 10 frames a second with ffmpeg's test
// pattern.
func silentVideo(t *testing.T, path, size string, seconds int) {
	t.Helper()
	if out, err := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size="+size+":rate=10:duration="+strconv.Itoa(seconds),
		"-pix_fmt", "yuv420p", "-y", path).CombinedOutput(); err != nil {
		t.Fatalf("making the video: %v: %s", err, out)
	}
}

func TestMux(t *testing.T) {
	testenv.NeedFFmpeg(t)
	dir := t.TempDir()
	ctx := context.Background()
	tone := soundtrack(t, dir, 5)
	for _, format := range []string{img2vid.FormatMP4, img2vid.FormatWebM} {
		t.Run(format, func(t *testing.T) {
			silent := filepath.Join(dir, "silent."+format)
			silentVideo(t, silent, "64x48", 2)
			out := filepath.Join(dir, "out."+format)
			if err := Mux(ctx, "ffmpeg", MuxSpec{Video: silent, Audio: tone, Format: format, Duration: 2, FadeOut: 0.5, Output: out}); err != nil {
				t.Fatal(err)
			}
			s := streams(t, out)
			want := map[string]string{img2vid.FormatMP4: "aac", img2vid.FormatWebM: "opus"}[format]
			if s["audio"][0] != want {
				t.Errorf("audio stream %v, want %s", s["audio"], want)
			}
			if got := soundLength(t, out); math.Abs(got-2) > 0.05 {
				t.Errorf("audio length %v s, want 2 s, the video's", got)
			}
			if left, _ := filepath.Glob(filepath.Join(dir, ".*.part")); len(left) > 0 {
				t.Errorf("partial files left: %v", left)
			}
		})
	}
}

// The mux reads the soundtrack as FLAC, by name, and nothing else: not
// the user's file (a WAV, however named), not a playlist, which a probe
// would have followed. Each fails, leaving no file.
func TestMuxReadsOnlyTheDecodedSoundtrack(t *testing.T) {
	testenv.NeedFFmpeg(t)
	dir := t.TempDir()
	ctx := context.Background()
	silent := filepath.Join(dir, "silent.mp4")
	silentVideo(t, silent, "64x48", 1)
	wav := sine(t, dir, "tone.wav", 1)
	named := filepath.Join(dir, "named.flac")
	if err := os.Link(wav, named); err != nil {
		t.Fatal(err)
	}
	list := filepath.Join(dir, "list.flac")
	os.WriteFile(list, []byte("#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:1,\n"+wav+"\n#EXT-X-ENDLIST\n"), 0o600)
	for _, audio := range []string{wav, named, list} {
		out := filepath.Join(t.TempDir(), "out.mp4")
		if err := Mux(ctx, "ffmpeg", MuxSpec{Video: silent, Audio: audio, Format: img2vid.FormatMP4, Duration: 1, Output: out}); err == nil {
			t.Errorf("%s was muxed; want only FLAC taken", filepath.Base(audio))
		} else {
			t.Logf("%s: %v", filepath.Base(audio), err)
		}
		onlyFiles(t, filepath.Dir(out))
	}
	out := filepath.Join(t.TempDir(), "out.mp4")
	if err := Mux(ctx, "ffmpeg", MuxSpec{Video: silent, Audio: soundtrack(t, t.TempDir(), 1), Format: img2vid.FormatMP4, Duration: 1, Output: out}); err != nil {
		t.Errorf("the decoded soundtrack: %v", err)
	}
}

// A mux told the most bytes it may write stops there and fails with
// ErrMaxBytes, leaving no file; one that fits is written whole.
func TestMuxStopsAtMaxBytes(t *testing.T) {
	testenv.NeedFFmpeg(t)
	dir := t.TempDir()
	ctx := context.Background()
	tone := soundtrack(t, dir, 5)
	silent := filepath.Join(dir, "silent.mp4")
	silentVideo(t, silent, "320x240", 4)
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
	if got := soundLength(t, out); math.Abs(got-4) > 0.05 {
		t.Errorf("audio length %v s, want 4 s", got)
	}
}
