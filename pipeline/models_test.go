package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/img2vid/img2vid"
	"github.com/img2vid/img2vid/internal/testenv"
	"github.com/img2vid/img2vid/internal/testimage"
	"github.com/img2vid/img2vid/pipeline"
)

// fakeModels serves one frame model whatever the name.
type fakeModels struct{ fm img2vid.FrameModel }

func (f fakeModels) ListModels() []img2vid.ModelInfo               { return nil }
func (f fakeModels) FrameModel(string) (img2vid.FrameModel, error) { return f.fm, nil }
func (f fakeModels) Interpolator(name string) (img2vid.Interpolator, error) {
	return nil, img2vid.Errorf(img2vid.ENOTFOUND, "no model %q", name)
}
func (f fakeModels) Detector(name string) (img2vid.Detector, error) {
	return nil, img2vid.Errorf(img2vid.ENOTFOUND, "no model %q", name)
}

// fakeFrameModel runs apply on every frame.
type fakeFrameModel struct {
	apply func(ctx context.Context, in *image.NRGBA) (*image.NRGBA, error)
}

func (fakeFrameModel) Name() string                   { return "fake" }
func (fakeFrameModel) OutputSize(w, h int) (int, int) { return w, h }
func (f fakeFrameModel) Apply(ctx context.Context, in *image.NRGBA) (*image.NRGBA, error) {
	return f.apply(ctx, in)
}

// greyImages writes n PNGs whose grey level is their index, and returns them.
func greyImages(t *testing.T, n int) []string {
	t.Helper()
	dir := t.TempDir()
	var paths []string
	for i := 0; i < n; i++ {
		p := filepath.Join(dir, fmt.Sprintf("f%02d.png", i))
		testimage.Write(t, p, testimage.PNG(t, testimage.Solid(16, 16, color.NRGBA{uint8(i), uint8(i), uint8(i), 255})))
		paths = append(paths, p)
	}
	return paths
}

// A model that panics fails the job, not the process.
func TestModelPanicFailsTheJob(t *testing.T) {
	testenv.NeedFFmpeg(t)
	fm := fakeFrameModel{apply: func(_ context.Context, in *image.NRGBA) (*image.NRGBA, error) {
		if in.Pix[0] == 2 {
			panic("model exploded")
		}
		return in, nil
	}}
	opts := img2vid.DefaultOptions()
	opts.FrameModel = "fake"
	_, err := (&pipeline.Pipeline{Models: fakeModels{fm}}).Convert(context.Background(), greyImages(t, 6),
		filepath.Join(t.TempDir(), "v.mp4"), opts, nil)
	if err == nil || !strings.Contains(err.Error(), "panic on image 3: model exploded") || img2vid.ErrorCode(err) != img2vid.EINTERNAL {
		t.Fatalf("got %v, want an internal error naming the panic and the image", err)
	}
}

// When a job fails, Convert returns only once the images being decoded or
// run through a model ahead of the failure have stopped: nothing of the job
// outlives it.
func TestFailedJobLeavesNoWorkRunning(t *testing.T) {
	testenv.NeedFFmpeg(t)
	var running atomic.Int32
	fm := fakeFrameModel{apply: func(ctx context.Context, in *image.NRGBA) (*image.NRGBA, error) {
		if in.Pix[0] == 0 {
			time.Sleep(50 * time.Millisecond) // let the others start
			return nil, errors.New("bad frame")
		}
		running.Add(1)
		defer running.Add(-1)
		<-ctx.Done()
		time.Sleep(100 * time.Millisecond) // a model that takes a while to notice
		return nil, ctx.Err()
	}}
	opts := img2vid.DefaultOptions()
	opts.FrameModel = "fake"
	p := &pipeline.Pipeline{Models: fakeModels{fm}, Workers: 3}
	_, err := p.Convert(context.Background(), greyImages(t, 8), filepath.Join(t.TempDir(), "v.mp4"), opts, nil)
	if err == nil || !strings.Contains(err.Error(), "bad frame") {
		t.Fatalf("got %v, want the model's error", err)
	}
	if n := running.Load(); n != 0 {
		t.Errorf("%d model runs still going after Convert returned", n)
	}
}

// Frames are bounded like images: neither a large size nor a model's
// upscaling may make frames above the pixel limit.
func TestFramePixelsAreBounded(t *testing.T) {
	inputs := greyImages(t, 2) // 16x16
	big := img2vid.DefaultOptions()
	big.Width, big.Height = 8192, 8192
	up := img2vid.DefaultOptions()
	up.FrameModel = "x4"
	up.Width, up.Height = 16, 16 // small frames: the model's own output is what is too large
	fm := fakeFrameModel{apply: func(_ context.Context, in *image.NRGBA) (*image.NRGBA, error) { return in, nil }}
	p := &pipeline.Pipeline{Models: fakeModels{upscaler{fm}}, Limits: img2vid.Limits{Pixels: 1000}}
	for _, tc := range []struct {
		name string
		opts img2vid.Options
		text string
	}{
		{"size", big, "video frames of 8192x8192 are too large (set a smaller size); the limit is max_pixels=1000"},
		{"model output", up, "f00.png: x4 would make it 64x64; the limit is max_pixels=1000"},
	} {
		_, err := p.Convert(context.Background(), inputs, filepath.Join(t.TempDir(), "v.mp4"), tc.opts, nil)
		if img2vid.ErrorCode(err) != img2vid.ETOOLARGE || !strings.Contains(err.Error(), tc.text) {
			t.Errorf("%s: got %v, want too large: %q", tc.name, err, tc.text)
		}
	}
}

// upscaler claims a 4x output size.
type upscaler struct{ fakeFrameModel }

func (upscaler) OutputSize(w, h int) (int, int) { return 4 * w, 4 * h }
