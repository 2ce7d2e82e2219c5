package pipeline

import (
	"context"
	"fmt"
	"image"
	"path/filepath"
	"slices"
	"strings"

	"github.com/img2vid/img2vid"
	"github.com/img2vid/img2vid/annotate"
	"github.com/img2vid/img2vid/video"
)

// detector returns the job's detect model, nil when none is asked for,
// with its class filter checked before any work starts.
func (p *Pipeline) detector(opts img2vid.Options) (img2vid.Detector, error) {
	if opts.DetectModel == "" {
		return nil, nil
	}
	d, err := p.models().Detector(opts.DetectModel)
	if err != nil {
		return nil, err
	}
	for _, c := range img2vid.ParseClasses(opts.DetectClasses) {
		if !slices.Contains(d.Labels(), c) {
			return nil, img2vid.Errorf(img2vid.EINVALID, "detect_classes: %q is not a class of %s (it has %s)", c, d.Name(), strings.Join(d.Labels(), ", "))
		}
	}
	return d, nil
}

// detect runs the detect model on one placed frame, in the loader, so
// detection overlaps decoding like every other per-image step.
func detect(ctx context.Context, d img2vid.Detector, img *image.NRGBA, p img2vid.DetectParams, input string) ([]img2vid.Detection, error) {
	dets, err := d.Detect(ctx, img, p)
	if err != nil {
		return nil, fmt.Errorf("%s on %s: %w", d.Name(), filepath.Base(input), err)
	}
	return dets, nil
}

// frameWriter sends frames to the encoder. With a detect model it draws
// each frame's detections on a copy, so the frame itself stays clean for
// the interpolator and the duplicate check, and records them.
type frameWriter struct {
	enc    *video.Encoder
	fps    float64
	log    *annotate.Log // nil without a detect model
	canvas *image.NRGBA  // the annotated copy, reused frame after frame
}

// frame writes img, with dets drawn on it when detecting.
func (w *frameWriter) frame(img *image.NRGBA, dets []img2vid.Detection, interpolated bool) error {
	if w.log == nil {
		return w.enc.WriteFrame(img)
	}
	if w.canvas == nil || w.canvas.Rect != img.Rect {
		w.canvas = image.NewNRGBA(img.Rect)
	}
	copy(w.canvas.Pix, img.Pix)
	annotate.Draw(w.canvas, dets)
	i := w.enc.Frames()
	w.log.Frame(i, float64(i)/w.fps, dets, interpolated)
	return w.enc.WriteFrame(w.canvas)
}

// write writes one image's frame: its file on the pass-through path.
func (w *frameWriter) write(f frame) error {
	if f.data != nil {
		return w.enc.WriteEncoded(f.data)
	}
	return w.frame(f.img, f.dets, false)
}
