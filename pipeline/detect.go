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
	"github.com/img2vid/img2vid/caption"
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
	// captions are the caption overlays made so far, by text: an image's
	// caption is drawn on each of its frames, and made once.
	captions map[string]*caption.Overlay
}

// frame writes img, with dets drawn on it when detecting and the caption
// text under it (none for "").
func (w *frameWriter) frame(img *image.NRGBA, dets []img2vid.Detection, text string, interpolated bool) error {
	if w.log == nil && text == "" {
		return w.enc.WriteFrame(img)
	}
	if w.canvas == nil || w.canvas.Rect != img.Rect {
		w.canvas = image.NewNRGBA(img.Rect)
	}
	copy(w.canvas.Pix, img.Pix)
	if w.log != nil {
		annotate.Draw(w.canvas, dets)
		i := w.enc.Frames()
		w.log.Frame(i, float64(i)/w.fps, dets, interpolated)
	}
	if text != "" {
		o, err := w.caption(text, img.Rect.Dx(), img.Rect.Dy())
		if err != nil {
			return err
		}
		o.Draw(w.canvas)
	}
	return w.enc.WriteFrame(w.canvas)
}

// caption is the overlay of text for w x h frames, made on its first use.
func (w *frameWriter) caption(text string, fw, fh int) (*caption.Overlay, error) {
	if o, ok := w.captions[text]; ok {
		return o, nil
	}
	o, err := caption.Render(fw, fh, text)
	if err != nil {
		return nil, fmt.Errorf("drawing the caption %q: %w", text, err)
	}
	if w.captions == nil {
		w.captions = map[string]*caption.Overlay{}
	}
	w.captions[text] = o
	return o, nil
}

// write writes one image's frame: its file on the pass-through path.
func (w *frameWriter) write(f frame) error {
	if f.data != nil {
		return w.enc.WriteEncoded(f.data)
	}
	return w.frame(f.img, f.dets, f.caption, false)
}
