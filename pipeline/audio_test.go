package pipeline_test

import (
	"bytes"
	"context"
	"fmt"
	"image/color"
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
	"github.com/img2vid/img2vid/internal/testimage"
	"github.com/img2vid/img2vid/pipeline"
	"github.com/img2vid/img2vid/video"
)

func TestHoldFramesAndFadeOut(t *testing.T) {
	for _, tc := range []struct {
		seconds, fps float64
		frames, want int
	}{{2.5, 4, 10, 0}, {4, 4, 10, 6}, {4.01, 4, 10, 7}, {1, 4, 10, -6}, {3.3, 30, 0, 99}} {
		if got := img2vid.HoldFrames(tc.seconds, tc.fps, tc.frames); got != tc.want {
			t.Errorf("HoldFrames(%v s, %v fps, %d) = %d, want %d", tc.seconds, tc.fps, tc.frames, got, tc.want)
		}
	}
	for _, tc := range []struct{ audio, video, want float64 }{{2, 2.5, 0}, {2.52, 2.5, 0}, {10, 2.5, 0.625}, {10, 6, 1}} {
		if got := pipeline.FadeOut(tc.audio, tc.video); got != tc.want {
			t.Errorf("FadeOut(%v, %v) = %v, want %v", tc.audio, tc.video, got, tc.want)
		}
	}
}

// audioStream returns the codec and length of file's audio stream, as
// ffprobe reads them.
func audioStream(t *testing.T, file string) (string, float64) {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries", "stream=codec_name,duration",
		"-of", "default=noprint_wrappers=1", file).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", file, err)
	}
	var codec string
	var d float64
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "codec_name="); ok {
			codec = v
		}
		if v, ok := strings.CutPrefix(line, "duration="); ok {
			d, _ = strconv.ParseFloat(v, 64)
		}
	}
	if d == 0 { // WebM keeps lengths on the container only
		out, _ := exec.Command("ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", file).Output()
		d, _ = strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	}
	return codec, d
}

func tone(t *testing.T, path string, seconds float64) string {
	t.Helper()
	if out, err := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i",
		fmt.Sprintf("sine=frequency=330:duration=%v", seconds), "-y", path).CombinedOutput(); err != nil {
		t.Fatalf("making %s: %v: %s", path, err, out)
	}
	return path
}

// decodedLeft returns the soundtracks the pipeline decoded that are still
// in the temporary folder tmp.
func decodedLeft(t *testing.T, tmp string) []string {
	t.Helper()
	left, err := filepath.Glob(filepath.Join(tmp, "*soundtrack*"))
	if err != nil {
		t.Fatal(err)
	}
	return left
}

func TestSoundtrack(t *testing.T) {
	testenv.NeedFFmpeg(t)
	dir := t.TempDir()
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // where the decoded soundtrack goes
	var inputs []string
	for i := range 10 { // 10 images at 4 per second: 2.5 s
		p := filepath.Join(dir, fmt.Sprintf("img_%02d.png", i))
		v := uint8(20 * i)
		testimage.Write(t, p, testimage.PNG(t, testimage.Solid(64, 48, color.NRGBA{v, 100, 255 - v, 255})))
		inputs = append(inputs, p)
	}
	long := tone(t, filepath.Join(dir, "long.mp3"), 4)
	short := tone(t, filepath.Join(dir, "short.wav"), 1.3)
	for _, tc := range []struct {
		name, format, fit, audio string
		codec                    string
		video, sound             float64
	}{
		{"mp4, trimmed", img2vid.FormatMP4, img2vid.AudioTrim, long, "aac", 2.5, 2.5},
		{"webm, extended", img2vid.FormatWebM, img2vid.AudioExtend, long, "opus", 4, 4},
		{"mp4, short audio padded", img2vid.FormatMP4, img2vid.AudioTrim, short, "aac", 2.5, 2.5},
		{"mp4, short audio, extend changes nothing", img2vid.FormatMP4, img2vid.AudioExtend, short, "aac", 2.5, 2.5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "v."+tc.format)
			o := img2vid.DefaultOptions()
			o.FPS, o.Format, o.Audio, o.AudioFit = 4, tc.format, tc.audio, tc.fit
			res, err := convert(t, &pipeline.Pipeline{}, inputs, out, o)
			if err != nil {
				t.Fatal(err)
			}
			info := probe(t, out)
			codec, sound := audioStream(t, out)
			if math.Abs(info.Duration-tc.video) > 0.06 || codec != tc.codec || math.Abs(sound-tc.sound) > 0.06 {
				t.Errorf("video %.3f s, audio %s %.3f s; want %.1f s, %s %.1f s", info.Duration, codec, sound, tc.video, tc.codec, tc.sound)
			}
			if res.Frames != int(tc.video*4) || math.Abs(res.Duration-tc.video) > 1e-9 || res.Bytes <= 0 || res.Audio <= 0 {
				t.Errorf("result %+v", res)
			}
			if extra := leftovers(t, filepath.Dir(out), filepath.Base(out)); len(extra) > 0 {
				t.Errorf("files left beside the video: %v", extra)
			}
			if left := decodedLeft(t, tmp); len(left) > 0 {
				t.Errorf("decoded soundtracks left: %v", left)
			}
			if marked, err := video.Marked(out); !marked || err != nil {
				t.Errorf("the video with sound lost the program's mark (%v)", err)
			}
		})
	}

	t.Run("refused", func(t *testing.T) {
		garbage := filepath.Join(dir, "notes.m4a")
		os.WriteFile(garbage, []byte("not a song at all"), 0o600)
		playlist := filepath.Join(t.TempDir(), "song.mp3")
		os.WriteFile(playlist, []byte("#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:4,\n"+long+"\n#EXT-X-ENDLIST\n"), 0o600)
		for _, tc := range []struct {
			name, format, audio string
			limits              img2vid.Limits
			code, want          string
		}{
			{"gif", img2vid.FormatGIF, long, img2vid.Limits{}, img2vid.EINVALID, "GIF cannot carry a soundtrack"},
			{"garbage", img2vid.FormatMP4, garbage, img2vid.Limits{}, img2vid.EINVALID, `soundtrack "notes.m4a" is not audio that can be decoded`},
			{"an image", img2vid.FormatMP4, inputs[0], img2vid.Limits{}, img2vid.EINVALID, `soundtrack "img_00.png"`},
			{"a playlist", img2vid.FormatMP4, playlist, img2vid.Limits{}, img2vid.EINVALID, `soundtrack "song.mp3" is not a sound file img2vid reads: a playlist`},
			{"too long", img2vid.FormatMP4, long, img2vid.Limits{Duration: 3 * time.Second}, img2vid.ETOOLARGE,
				`soundtrack "long.mp3" lasts more than 3 s; the limit is max_duration=3s`},
		} {
			out := filepath.Join(t.TempDir(), "v."+tc.format)
			o := img2vid.DefaultOptions()
			o.Format, o.Audio = tc.format, tc.audio
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a hang fails
			_, err := (&pipeline.Pipeline{Limits: tc.limits}).Convert(ctx, inputs, out, o, nil)
			cancel()
			if img2vid.ErrorCode(err) != tc.code || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: %v, want a %s error containing %q", tc.name, err, tc.code, tc.want)
			}
			if extra := leftovers(t, filepath.Dir(out)); len(extra) > 0 {
				t.Errorf("%s: files left: %v", tc.name, extra)
			}
			if left := decodedLeft(t, tmp); len(left) > 0 {
				t.Errorf("%s: decoded soundtracks left: %v", tc.name, left)
			}
		}
	})
}

// Plan decodes the user's soundtrack once into a FLAC file of its own,
// which its plan names and Run muxes; the user's file is left as it was.
func TestPlanDecodesTheSoundtrackOnce(t *testing.T) {
	testenv.NeedFFmpeg(t)
	dir := t.TempDir()
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	in := filepath.Join(dir, "a.png")
	testimage.Write(t, in, testimage.PNG(t, testimage.Solid(64, 48, color.NRGBA{200, 100, 50, 255})))
	song := tone(t, filepath.Join(dir, "song.mp3"), 2)
	before, _ := os.ReadFile(song)
	o := img2vid.DefaultOptions()
	o.Format, o.Audio, o.AudioFit = img2vid.FormatMP4, song, img2vid.AudioExtend
	p := &pipeline.Pipeline{}
	plan, err := p.Plan(context.Background(), []string{in}, o)
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(plan.Options.Audio)
	if filepath.Dir(plan.Options.Audio) != tmp || math.Abs(plan.AudioSeconds-2) > 0.06 {
		t.Errorf("plan's soundtrack %s of %v s, want a file in %s of 2 s", plan.Options.Audio, plan.AudioSeconds, tmp)
	}
	if b, err := os.ReadFile(plan.Options.Audio); err != nil || !bytes.HasPrefix(b, []byte("fLaC")) {
		t.Errorf("the plan's soundtrack is not FLAC: %.8q (%v)", b, err)
	}
	if after, _ := os.ReadFile(song); !bytes.Equal(before, after) {
		t.Error("the user's soundtrack was changed")
	}
	out := filepath.Join(dir, "v.mp4")
	if _, err := p.Run(context.Background(), plan, []string{in}, out, 0, nil); err != nil {
		t.Fatal(err)
	}
	if codec, sound := audioStream(t, out); codec != "aac" || math.Abs(sound-2) > 0.06 {
		t.Errorf("audio %s %.3f s, want aac 2 s", codec, sound)
	}
}

// The server's ProbeAudio decodes an upload into FLAC in its place and
// refuses, leaving it as it was, what is not sound or lasts too long.
func TestProbeAudioReplacesTheUpload(t *testing.T) {
	testenv.NeedFFmpeg(t)
	dir := t.TempDir()
	upload := filepath.Join(dir, "soundtrack.upload")
	if err := os.Rename(tone(t, filepath.Join(dir, "song.mp3"), 2), upload); err != nil {
		t.Fatal(err)
	}
	p := &pipeline.Pipeline{Limits: img2vid.Limits{Duration: time.Minute}}
	ctx := context.Background()
	if got, err := p.ProbeAudio(ctx, upload, `audio file "song.mp3"`); err != nil || math.Abs(got-2) > 0.06 {
		t.Errorf("%v s, %v; want 2 s", got, err)
	}
	if b, _ := os.ReadFile(upload); !bytes.HasPrefix(b, []byte("fLaC")) {
		t.Errorf("the upload is %.8q, want it replaced by FLAC", b)
	}
	if extra := leftovers(t, dir, "soundtrack.upload"); len(extra) > 0 {
		t.Errorf("files left: %v", extra)
	}
	p.Limits.Duration = time.Second
	if _, err := p.ProbeAudio(ctx, upload, `audio file "song.mp3"`); img2vid.ErrorCode(err) != img2vid.ETOOLARGE ||
		!strings.HasPrefix(err.Error(), `audio file "song.mp3" lasts more than 1 s; the limit is max_duration=1s`) {
		t.Errorf("past max_duration: %v", err)
	}
	if b, _ := os.ReadFile(upload); !bytes.HasPrefix(b, []byte("fLaC")) {
		t.Errorf("a refused decode changed the file: %.8q", b)
	}
}
