package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/img2vid/img2vid"
	"github.com/img2vid/img2vid/internal/testenv"
	"github.com/img2vid/img2vid/internal/testimage"
	"github.com/img2vid/img2vid/video"
)

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// help and version must work on a machine with neither ffmpeg nor ONNX
// Runtime: nothing native is loaded for them.
func TestHelpAndVersionNeedNothingNative(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Setenv("ONNXRUNTIME_LIB", "/nonexistent/libonnxruntime.so")
	if code, out, _ := runCLI(t, "version"); code != 0 || !strings.HasPrefix(out, "img2vid ") {
		t.Errorf("version: exit %d, %q", code, out)
	}
	if code, _, errOut := runCLI(t, "--help"); code != 0 || !strings.Contains(errOut, "convert") || !strings.Contains(errOut, "serve") {
		t.Errorf("--help: exit %d, %q", code, errOut)
	}
	if code, _, errOut := runCLI(t, "convert", "--help"); code != 0 || !strings.Contains(errOut, "INPUT_DIR") || !strings.Contains(errOut, "-interpolate") {
		t.Errorf("convert --help: exit %d, %q", code, errOut)
	}
	if code, _, errOut := runCLI(t, "frobnicate"); code != 2 || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: exit %d, %q", code, errOut)
	}
}

func TestConvertErrors(t *testing.T) {
	empty := t.TempDir()
	out := t.TempDir()
	tests := []struct {
		name string
		args []string
		code int
		text string
	}{
		{"empty folder", []string{"convert", empty, filepath.Join(out, "v.mp4")}, 3, "no images in " + empty},
		{"missing input", []string{"convert", filepath.Join(empty, "nope"), filepath.Join(out, "v.mp4")}, 4, "does not exist"},
		{"bad fps", []string{"convert", "--fps", "0", empty, filepath.Join(out, "v.mp4")}, 3, "fps must be between"},
		{"fps too small to last", []string{"convert", "--fps", "1e-320", empty, filepath.Join(out, "v.mp4")}, 3, "fps must be between"},
		{"bad size", []string{"convert", "--size", "huge", empty, filepath.Join(out, "v.mp4")}, 2, `size must look like 1280x720, got "huge"`},
		{"negative limit", []string{"convert", "--max-pixels", "-1", empty, filepath.Join(out, "v.mp4")}, 3, "max_pixels must be 0 (no limit) or more"},
		{"one argument", []string{"convert", empty}, 2, "Usage: img2vid convert"},
		{"missing audio", []string{"convert", "--audio", filepath.Join(empty, "song.mp3"), empty, filepath.Join(out, "v.mp4")}, 4, "audio file " + filepath.Join(empty, "song.mp3")},
		{"audio fit", []string{"convert", "--audio-fit", "loop", empty, filepath.Join(out, "v.mp4")}, 3, `audio_fit must be trim, extend or spread, got "loop"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := runCLI(t, tt.args...)
			if code != tt.code || !strings.Contains(errOut, tt.text) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, errOut, tt.code, tt.text)
			}
			if entries, _ := os.ReadDir(out); len(entries) != 0 {
				t.Errorf("output folder holds %v", entries)
			}
		})
	}
}

// Every error code has its own exit status, and none takes 0 (success)
// or 2 (bad usage).
func TestExitStatusFollowsTheErrorCode(t *testing.T) {
	seen := map[int]string{0: "success", 2: "usage"}
	for _, code := range []string{img2vid.EINVALID, img2vid.ENOTFOUND, img2vid.ETOOLARGE, img2vid.EUNAVAILABLE, img2vid.ECANCELED, img2vid.EINTERNAL} {
		st := exitStatus(code)
		if other, dup := seen[st]; dup {
			t.Errorf("%s exits %d, as %s does", code, st, other)
		}
		seen[st] = code
	}
	if exitStatus(img2vid.EBUSY) != exitStatus(img2vid.EUNAVAILABLE) {
		t.Error("busy and unavailable both mean: try again when the dependency is there")
	}
}

// The seed's container mode: relative paths resolve against INPUT_DIR and
// OUTPUT_DIR; --json prints progress events and the result.
func TestConvertWithVolumesAndJSON(t *testing.T) {
	testenv.NeedFFmpeg(t)
	for _, src := range testimage.Sources(12, 320, 180) {
		t.Run(src.Name, func(t *testing.T) {
			frames := src.Dir(t)
			outDir := t.TempDir()
			t.Setenv("INPUT_DIR", filepath.Dir(frames))
			t.Setenv("OUTPUT_DIR", outDir)
			code, stdout, errOut := runCLI(t, "convert", "--json", "--include", "frame_00*.jpg", filepath.Base(frames), "sub/clip.mp4")
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			lines := strings.Split(strings.TrimSpace(stdout), "\n")
			var last struct {
				Event  string `json:"event"`
				Output string `json:"output"`
				Frames int    `json:"frames"`
			}
			if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil {
				t.Fatalf("last line %q: %v", lines[len(lines)-1], err)
			}
			want := filepath.Join(outDir, "sub", "clip.mp4")
			if last.Event != "done" || last.Output != want || last.Frames != 10 {
				t.Errorf("result event %+v, want done, %s, 10 frames", last, want)
			}
			if len(lines) < 3 || !strings.Contains(lines[0], `"event":"progress"`) {
				t.Errorf("want progress events before the result, got %q", lines)
			}
			info, err := video.Probe(context.Background(), "ffprobe", want)
			if err != nil || info.Frames != 10 {
				t.Errorf("probe: %+v, %v", info, err)
			}
		})
	}
}

// --audio with --audio-fit extend: the last image is held until the
// soundtrack ends, and the file carries it as AAC.
func TestConvertWithAudio(t *testing.T) {
	testenv.NeedFFmpeg(t)
	in, out := t.TempDir(), t.TempDir()
	for _, name := range []string{"a.png", "b.png"} {
		testimage.Write(t, filepath.Join(in, name), testimage.PNG(t, testimage.Quadrants(32, 32)))
	}
	song := filepath.Join(in, "song.wav")
	if b, err := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=duration=1.5", "-y", song).CombinedOutput(); err != nil {
		t.Fatalf("making the song: %v: %s", err, b)
	}
	video := filepath.Join(out, "v.mp4")
	code, stdout, errOut := runCLI(t, "convert", "--fps", "2", "--audio", song, "--audio-fit", "extend", filepath.Join(in, "a.png"), filepath.Join(in, "b.png"), video)
	if code != 0 || !strings.Contains(stdout, "3 frames") || !strings.Contains(stdout, "1.50 s of sound") {
		t.Fatalf("exit %d, stdout %q, stderr %q; want 3 frames (1.5 s at 2 fps) and 1.50 s of sound", code, stdout, errOut)
	}
	probe, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries", "stream=codec_name", "-of", "csv=p=0", video).Output()
	if err != nil || strings.TrimSpace(string(probe)) != "aac" {
		t.Errorf("audio stream: %q, %v; want aac", probe, err)
	}
	if code, _, errOut := runCLI(t, "convert", "--audio", song, filepath.Join(in, "a.png"), filepath.Join(out, "v.gif")); code != 3 || !strings.Contains(errOut, "GIF cannot carry a soundtrack") {
		t.Errorf("audio into a GIF: exit %d, %q", code, errOut)
	}
}

// --interpolate 4 with the default model: 4x the frames at 4x the rate,
// the same length.
func TestConvertInterpolate(t *testing.T) {
	testenv.NeedFFmpeg(t)
	for _, src := range testimage.Sources(20, 320, 180) {
		t.Run(src.Name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "smooth.mp4")
			code, stdout, errOut := runCLI(t, "convert", "--interpolate", "4", "--size", "480x270", "--device", "cpu", "--log-level", "warn",
				src.Dir(t), out)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			info, err := video.Probe(context.Background(), "ffprobe", out)
			if err != nil {
				t.Fatal(err)
			}
			frames, seconds := 4*src.Frames, float64(src.Frames)/5
			if info.Frames != frames || math.Abs(info.FPS-20) > 0.01 || math.Abs(info.Duration-seconds) > 0.1 || info.Width != 480 || info.Height != 270 {
				t.Errorf("probe %+v, want %d frames at 20 fps, %.0f s, 480x270", info, frames, seconds)
			}
			if !strings.Contains(stdout, img2vid.DefaultInterpModel+" interpolation, 0 scene cuts held") {
				t.Errorf("summary %q should name the model and the scene cuts", stdout)
			}
		})
	}
}

// A model the user brings, described by a manifest in the models folder,
// runs on every frame: the tests' fixed-size 2x model on generated photos
// (tiled, 200x120 to 400x240), and in the extended set QuickSRNet doubling
// 640x360 aquarium frames to 1280x720.
func TestConvertWithUserFrameModel(t *testing.T) {
	testenv.NeedFFmpeg(t)
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T) (models, model string, frames []image.Image)
		w, h  int
	}{
		{"generated", func(t *testing.T) (string, string, []image.Image) {
			return testimage.FrameModelDir(t), "sr2x", []image.Image{testimage.Scene(200, 120, testimage.Pan, 0), testimage.Scene(200, 120, testimage.Pan, 1)}
		}, 400, 240},
		{"quicksrnet", func(t *testing.T) (string, string, []image.Image) {
			shared := testimage.SharedDir(t)
			models := t.TempDir()
			if err := os.Symlink(filepath.Join(shared, "models", "quicksrnetsmall-2x-360p.onnx"), filepath.Join(models, "sr.onnx")); err != nil {
				t.Fatal(err)
			}
			testimage.Write(t, filepath.Join(models, "sr-2x.json"), []byte(`{"name": "sr-2x", "kind": "frame", "file": "sr.onnx"}`))
			return models, "sr-2x", []image.Image{testimage.AquariumFrame(t, 0, 640, 360), testimage.AquariumFrame(t, 1, 640, 360)}
		}, 1280, 720},
	} {
		t.Run(tc.name, func(t *testing.T) {
			models, model, frames := tc.setup(t)
			in := t.TempDir()
			for i, img := range frames {
				testimage.Write(t, filepath.Join(in, fmt.Sprintf("frame_%03d.png", i)), testimage.PNG(t, img))
			}
			out := filepath.Join(t.TempDir(), "sr.mp4")
			code, _, errOut := runCLI(t, "convert", "--frame-model", model, "--models-dir", models, "--device", "cpu", "--log-level", "warn", in, out)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			info, err := video.Probe(context.Background(), "ffprobe", out)
			if err != nil || info.Width != tc.w || info.Height != tc.h || info.Frames != 2 {
				t.Errorf("probe %+v (%v), want %dx%d with 2 frames", info, err, tc.w, tc.h)
			}
			code, _, errOut = runCLI(t, "convert", "--frame-model", "nope", "--models-dir", models, "--device", "cpu", in, out+".2.mp4")
			if code != 4 || !strings.Contains(errOut, "nope") {
				t.Errorf("unknown model: exit %d, %q", code, errOut)
			}
		})
	}
}

// --detect-model draws and reports: the summary on stdout, one JSON line
// per box in --detections, and img2vid models lists the detector.
func TestConvertWithDetector(t *testing.T) {
	testenv.NeedFFmpeg(t)
	in, out := t.TempDir(), t.TempDir()
	var inputs []string
	for i, boxes := range [][]testimage.Square{
		{{Class: "red", Value: 255, Box: image.Rect(10, 10, 30, 30)}, {Class: "green", Value: 255, Box: image.Rect(40, 40, 60, 60)}},
		{{Class: "red", Value: 255, Box: image.Rect(12, 10, 32, 30)}},
	} {
		p := filepath.Join(in, fmt.Sprintf("%d.png", i))
		testimage.Write(t, p, testimage.PNG(t, testimage.Squares(64, 64, boxes...)))
		inputs = append(inputs, p)
	}
	dets := filepath.Join(out, "d.jsonl")
	models := testimage.DetectModels(t)
	args := append([]string{"convert", "--models-dir", models, "--device", "cpu", "--log-level", "warn",
		"--detect-model", "squares-yolov5", "--detect-classes", "red, green", "--detections", dets}, inputs...)
	code, stdout, errOut := runCLI(t, append(args, filepath.Join(out, "v.mp4"))...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if want := "squares-yolov5: 3 detections, red on 2 frames (at most 1 at once), green on 1 frames (at most 1 at once)"; !strings.Contains(stdout, want) {
		t.Errorf("stdout %q, want %q", stdout, want)
	}
	data, err := os.ReadFile(dets)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	var first struct {
		Frame int
		Class string
		Box   [4]float64
	}
	if len(lines) != 3 || json.Unmarshal([]byte(lines[0]), &first) != nil || first.Frame != 0 || first.Class != "red" {
		t.Fatalf("detections file:\n%s", data)
	}
	for i, v := range []float64{10, 10, 30, 30} {
		if math.Abs(first.Box[i]-v) > 1 {
			t.Errorf("box %v, want [10 10 30 30] within 1 pixel", first.Box)
		}
	}
	code, stdout, errOut = runCLI(t, "models", "--models-dir", models, "--device", "cpu")
	if code != 0 || !strings.Contains(stdout, "squares-yolox") || !strings.Contains(stdout, "[3 classes: blue, green, red]") {
		t.Errorf("models: exit %d, %q, %q", code, stdout, errOut)
	}
	code, _, errOut = runCLI(t, "convert", "--detect-score", "1.5", "--detect-model", "squares-yolov5", inputs[0], filepath.Join(out, "w.mp4"))
	if code != 3 || !strings.Contains(errOut, "detect_score must be between 0") {
		t.Errorf("bad score: exit %d, %q", code, errOut)
	}
}
