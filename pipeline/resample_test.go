package pipeline_test

import (
	"context"
	"fmt"
	"image"
	"image/color"
	"math"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/img2vid/img2vid"
	"github.com/img2vid/img2vid/internal/testenv"
	"github.com/img2vid/img2vid/internal/testimage"
	"github.com/img2vid/img2vid/pipeline"
)

// recordingInterp records the times it is asked for, pair by pair (named
// by the grey level of the pair's first image), and returns that image.
type recordingInterp struct {
	mu     sync.Mutex
	calls  [][]float32
	firsts []uint8
}

func (*recordingInterp) Name() string { return "recording" }
func (r *recordingInterp) Interpolate(_ context.Context, a, _ *image.NRGBA, ts []float32, emit func(int, *image.NRGBA) error) error {
	r.mu.Lock()
	r.calls = append(r.calls, slices.Clone(ts))
	r.firsts = append(r.firsts, a.Pix[0])
	r.mu.Unlock()
	for i := range ts {
		if err := emit(i, a); err != nil {
			return err
		}
	}
	return nil
}

type interpModels struct{ m img2vid.Interpolator }

func (interpModels) ListModels() []img2vid.ModelInfo { return nil }
func (interpModels) FrameModel(name string) (img2vid.FrameModel, error) {
	return nil, img2vid.Errorf(img2vid.ENOTFOUND, "no model %q", name)
}
func (f interpModels) Interpolator(string) (img2vid.Interpolator, error) { return f.m, nil }
func (interpModels) Detector(name string) (img2vid.Detector, error) {
	return nil, img2vid.Errorf(img2vid.ENOTFOUND, "no model %q", name)
}

// With fps_out and no interpolate, every output frame is made at its own
// time between its two images: 24 -> 60 frames/s puts frames at image
// times 0, 0.4, 0.8, 1.2, ..., so pair 0 gets t = 0.4, 0.8, pair 1 t =
// 0.2, 0.6, pair 2 (image 2 falls on frame 5) 0.4, 0.8, and the last
// image holds for its slot. With interpolate, fps_out keeps its meaning
// of a playback rate: the interpolate frames per pair are the same.
func TestResampleAtTrueTimes(t *testing.T) {
	testenv.NeedFFmpeg(t)
	dir := t.TempDir()
	var inputs []string
	for i := range 4 {
		p := filepath.Join(dir, fmt.Sprintf("f%d.png", i))
		g := uint8(20 * i) // close enough in brightness not to count as scene cuts
		testimage.Write(t, p, testimage.PNG(t, testimage.Solid(16, 16, color.NRGBA{g, g, g, 255})))
		inputs = append(inputs, p)
	}
	for _, c := range []struct {
		fps, fpsOut float64
		interpolate int
		want        [][]float32
		frames      int
	}{
		{24, 60, 1, [][]float32{{0.4, 0.8}, {0.2, 0.6}, {0.4, 0.8}}, 10},
		// Fewer frames than images: times 0, 1.25, 2.5 and 3.75, the
		// last in the last image's slot, so held.
		{30, 24, 1, [][]float32{{0.25, 0.5}}, 4},
		{24, 60, 2, [][]float32{{0.5}, {0.5}, {0.5}}, 8},
		// Interpolation asks for all of a pair's frames in one call, so
		// that the model estimates the pair's motion once.
		{24, 96, 4, [][]float32{{0.25, 0.5, 0.75}, {0.25, 0.5, 0.75}, {0.25, 0.5, 0.75}}, 16},
	} {
		t.Run(fmt.Sprintf("fps %v fps_out %v interpolate %d", c.fps, c.fpsOut, c.interpolate), func(t *testing.T) {
			rec := &recordingInterp{}
			opts := img2vid.DefaultOptions()
			opts.FPS, opts.FPSOut, opts.Interpolate, opts.InterpModel = c.fps, c.fpsOut, c.interpolate, "recording"
			out := filepath.Join(t.TempDir(), "r.mp4")
			res, err := convert(t, &pipeline.Pipeline{Models: interpModels{rec}}, inputs, out, opts)
			if err != nil {
				t.Fatal(err)
			}
			var got [][]float32
			for _, ts := range rec.calls {
				got = append(got, roundTimes(ts))
			}
			if c.fps == 30 {
				// One frame per call here: pairs 1 and 2 ask for 0.25
				// and 0.5 one at a time.
				got = [][]float32{slices.Concat(got...)}
			}
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Errorf("interpolated at %v (pairs starting at grey %v), want %v", got, rec.firsts, c.want)
			}
			info := probe(t, out)
			if res.Frames != c.frames || info.Frames != c.frames || math.Abs(info.FPS-c.fpsOut) > 0.01 {
				t.Errorf("%d frames (probe %+v), want %d at %v frames/s", res.Frames, info, c.frames, c.fpsOut)
			}
		})
	}
}

func roundTimes(ts []float32) []float32 {
	out := make([]float32, len(ts))
	for i, t := range ts {
		out[i] = float32(math.Round(float64(t)*1000) / 1000)
	}
	return out
}
