package pipeline_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/img2vid/img2vid"
	"github.com/img2vid/img2vid/annotate"
	"github.com/img2vid/img2vid/inference"
	"github.com/img2vid/img2vid/internal/testenv"
	"github.com/img2vid/img2vid/internal/testimage"
	"github.com/img2vid/img2vid/pipeline"
)

// detectRuntime opens the real ONNX Runtime with the test detectors as
// the user's models (the built-in interpolators come with it).
func detectRuntime(t *testing.T) *inference.Runtime {
	t.Helper()
	if _, err := inference.FindLibrary(inference.DefaultLibrarySearch(os.Getenv("ONNXRUNTIME_LIB"))); err != nil {
		testenv.Missing(t, "ONNX Runtime is not installed (run scripts/setup.sh run): %v", err)
	}
	rt, err := inference.Open(inference.Config{Library: os.Getenv("ONNXRUNTIME_LIB"), Device: inference.DeviceCPU, ModelsDir: testimage.DetectModels(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt
}

// cleanCheck wraps the runtime's interpolators so that each pair of
// frames they get is checked for box colours: boxes are drawn after
// interpolation, never before.
type cleanCheck struct {
	img2vid.Models
	t *testing.T
}

func (c cleanCheck) Interpolator(name string) (img2vid.Interpolator, error) {
	m, err := c.Models.Interpolator(name)
	return checkedInterp{m, c.t}, err
}

type checkedInterp struct {
	img2vid.Interpolator
	t *testing.T
}

func (c checkedInterp) Interpolate(ctx context.Context, a, b *image.NRGBA, ts []float32, emit func(int, *image.NRGBA) error) error {
	for _, img := range []*image.NRGBA{a, b} {
		for i := 0; i < len(img.Pix); i += 4 {
			for id := range 3 {
				if k := annotate.Colour(id); img.Pix[i] == k.R && img.Pix[i+1] == k.G && img.Pix[i+2] == k.B {
					c.t.Errorf("the interpolator got a frame with a box drawn on it (pixel %d)", i/4)
					return c.Interpolator.Interpolate(ctx, a, b, ts, emit)
				}
			}
		}
	}
	return c.Interpolator.Interpolate(ctx, a, b, ts, emit)
}

func readRecords(t *testing.T, path string) []annotate.Record {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var recs []annotate.Record
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r annotate.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("%s: %q: %v", path, sc.Text(), err)
		}
		recs = append(recs, r)
	}
	return recs
}

// TestDetectInVideo: with a detect model and interpolation, every frame
// carries boxes: the images' where the model found the squares, the
// in-between frames' where the moving square is at that time; the
// detections file and the summary say the same, the interpolator only
// ever sees clean frames, and the boxes are in the video.
func TestDetectInVideo(t *testing.T) {
	testenv.NeedFFmpeg(t)
	rt := detectRuntime(t)
	dir := t.TempDir()
	var inputs []string
	for i := range 3 {
		img := testimage.Squares(256, 192,
			testimage.Square{Class: "red", Value: 255, Box: image.Rect(40+40*i, 60, 80+40*i, 100)},
			testimage.Square{Class: "blue", Value: 200, Box: image.Rect(170, 120, 236, 180)})
		p := filepath.Join(dir, fmt.Sprintf("f%d.png", i))
		testimage.Write(t, p, testimage.PNG(t, img))
		inputs = append(inputs, p)
	}
	out := filepath.Join(dir, "out.mp4")
	dets := filepath.Join(dir, "out.detections.jsonl")
	opts := img2vid.DefaultOptions()
	opts.Interpolate, opts.InterpModel = 4, "blend"
	opts.DetectModel, opts.Detections = "squares-yolov8", dets
	opts.Quality = 10
	p := &pipeline.Pipeline{Models: cleanCheck{rt, t}}
	res, err := convert(t, p, inputs, out, opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.Frames != 12 {
		t.Fatalf("%d frames, want 12", res.Frames)
	}
	want := &img2vid.DetectSummary{Model: "squares-yolov8", Total: 24, Classes: []img2vid.ClassSummary{
		{Class: "blue", Frames: 12, Most: 1}, {Class: "red", Frames: 12, Most: 1}}}
	if got := res.Detections; got == nil || got.Model != want.Model || got.Total != want.Total || !slices.Equal(got.Classes, want.Classes) {
		t.Errorf("summary %+v, want %+v", got, want)
	}
	recs := readRecords(t, dets)
	if len(recs) != 24 {
		t.Fatalf("%d records, want 24", len(recs))
	}
	for _, r := range recs {
		if r.Class != "red" {
			continue
		}
		// The square is at x = 40 + 40*i on image i, shown 4 frames each;
		// in between it is where linear motion puts it; the last image is
		// held.
		pos := min(float64(r.Frame)/4, 2)
		x := 40 + 40*pos
		if math.Abs(r.Box[0]-x) > 1 || math.Abs(r.Box[2]-(x+40)) > 1 || math.Abs(r.Box[1]-60) > 1 {
			t.Errorf("frame %d: red at %v, want x %.0f..%.0f", r.Frame, r.Box, x, x+40)
		}
		if interp := r.Frame%4 != 0 && r.Frame < 8; r.Interpolated != interp {
			t.Errorf("frame %d: interpolated %v, want %v", r.Frame, r.Interpolated, interp)
		}
		if math.Abs(r.Time-float64(r.Frame)/res.FPS) > 1e-9 {
			t.Errorf("frame %d: time %v", r.Frame, r.Time)
		}
	}
	// The box of the red square (class 2 of this model) is drawn: its
	// top edge, on the first and on an in-between frame.
	frames := testimage.DecodeVideo(t, out, 256, 192)
	c := annotate.Colour(2)
	for _, f := range []struct{ frame, x int }{{0, 60}, {2, 80}} {
		got := testimage.RGBAt(frames[f.frame], 256, f.x, 61)
		if d := max(absDiff(got[0], c.R), absDiff(got[1], c.G), absDiff(got[2], c.B)); d > 40 {
			t.Errorf("frame %d at (%d, 61): %v, want the box colour %v", f.frame, f.x, got, c)
		}
	}
	if extra := leftovers(t, dir, "f0.png", "f1.png", "f2.png", "out.mp4", "out.detections.jsonl"); len(extra) > 0 {
		t.Errorf("left behind: %v", extra)
	}
}

func absDiff(a, b uint8) int { return max(int(a)-int(b), int(b)-int(a)) }

// TestDetectRefusedEarly: an unknown class or detect model stops the job
// before anything is written.
func TestDetectRefusedEarly(t *testing.T) {
	testenv.NeedFFmpeg(t)
	rt := detectRuntime(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "a.png")
	testimage.Write(t, in, testimage.PNG(t, testimage.Squares(64, 64)))
	for _, tc := range []struct {
		model   string
		classes string
		code    string
	}{{"squares-yolox", "red, fish", img2vid.EINVALID}, {"no-such-model", "", img2vid.ENOTFOUND}} {
		opts := img2vid.DefaultOptions()
		opts.DetectModel, opts.DetectClasses, opts.Detections = tc.model, tc.classes, filepath.Join(dir, "d.jsonl")
		_, err := (&pipeline.Pipeline{Models: rt}).Convert(context.Background(), []string{in}, filepath.Join(dir, "out.mp4"), opts, nil)
		if img2vid.ErrorCode(err) != tc.code {
			t.Errorf("%s %v: got %v, want %s", tc.model, tc.classes, err, tc.code)
		}
	}
	if extra := leftovers(t, dir, "a.png"); len(extra) > 0 {
		t.Errorf("left behind: %v", extra)
	}
}
