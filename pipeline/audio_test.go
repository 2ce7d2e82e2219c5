package pipeline_test

import (
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

func TestSoundtrack(t *testing.T) {
	testenv.NeedFFmpeg(t)
	dir := t.TempDir()
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
			if marked, err := video.Marked(out); !marked || err != nil {
				t.Errorf("the video with sound lost the program's mark (%v)", err)
			}
		})
	}

	t.Run("refused", func(t *testing.T) {
		garbage := filepath.Join(dir, "notes.m4a")
		os.WriteFile(garbage, []byte("not a song at all"), 0o600)
		for _, tc := range []struct {
			name, format, audio, want string
		}{
			{"gif", img2vid.FormatGIF, long, "GIF cannot carry a soundtrack"},
			{"garbage", img2vid.FormatMP4, garbage, `soundtrack "notes.m4a" is not audio that can be decoded`},
			{"an image", img2vid.FormatMP4, inputs[0], `soundtrack "img_00.png"`},
		} {
			out := filepath.Join(t.TempDir(), "v."+tc.format)
			o := img2vid.DefaultOptions()
			o.Format, o.Audio = tc.format, tc.audio
			_, err := (&pipeline.Pipeline{}).Convert(context.Background(), inputs, out, o, nil)
			if img2vid.ErrorCode(err) != img2vid.EINVALID || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: %v, want an invalid-input error containing %q", tc.name, err, tc.want)
			}
			if extra := leftovers(t, filepath.Dir(out)); len(extra) > 0 {
				t.Errorf("%s: files left: %v", tc.name, extra)
			}
		}
	})
}
