package inference

import (
	"context"
	"fmt"
	"image"

	"github.com/img2vid/img2vid"
	ort "github.com/yalue/onnxruntime_go"
)

// interpolator runs an interpolate model: frame0, frame1 and t in, the
// frame at t out. A two-graph model estimates a pair's motion once (its
// motion session) and runs only the synthesis once per t. Frames are
// padded to the model's multiple by repeating their edges, and the result
// cropped back.
type interpolator struct {
	spec   *spec
	sess   *session
	motion *session // nil for a single-graph model
	codec  *codec
}

var _ img2vid.Interpolator = (*interpolator)(nil)

func newInterpolator(s *spec, main, motion *session) loadedModel {
	return &interpolator{spec: s, sess: main, motion: motion, codec: newCodec(s.Manifest)}
}

func (m *interpolator) kind() string { return img2vid.KindInterpolate }

func (m *interpolator) close() error {
	if m.motion != nil {
		m.motion.close()
	}
	return m.sess.close()
}

// Name is the model's registry name.
func (m *interpolator) Name() string { return m.spec.Name }

func (m *interpolator) shape(w, h int) ort.Shape {
	if m.spec.Layout == LayoutNHWC {
		return ort.NewShape(1, int64(h), int64(w), 3)
	}
	return ort.NewShape(1, 3, int64(h), int64(w))
}

// Interpolate makes the frames at each t in ts between a and b, handing
// each to emit: the motion graph runs once, the main graph once per t.
func (m *interpolator) Interpolate(ctx context.Context, a, b *image.NRGBA, ts []float32, emit func(int, *image.NRGBA) error) error {
	w, h := a.Rect.Dx(), a.Rect.Dy()
	switch {
	case w == 0 || h == 0:
		return img2vid.Errorf(img2vid.EINVALID, "model %s: the frames are empty (%dx%d)", m.spec.Name, w, h)
	case b.Rect.Dx() != w || b.Rect.Dy() != h:
		return img2vid.Errorf(img2vid.EINVALID, "model %s: the frames differ in size, %dx%d and %dx%d", m.spec.Name, w, h, b.Rect.Dx(), b.Rect.Dy())
	case m.spec.tileW != 0 && (w != m.spec.tileW || h != m.spec.tileH):
		return img2vid.Errorf(img2vid.EINVALID, "model %s takes %dx%d frames only, got %dx%d", m.spec.Name, m.spec.tileW, m.spec.tileH, w, h)
	}
	for _, t := range ts {
		if !(t > 0 && t < 1) {
			return img2vid.Errorf(img2vid.EINVALID, "model %s: each time must be strictly between 0 and 1, got %v", m.spec.Name, t)
		}
	}
	pw, ph := roundUp(w, m.spec.Multiple), roundUp(h, m.spec.Multiple)
	shape := m.shape(pw, ph)
	// The conversions run beside each other (a few milliseconds each at
	// 960x540): the model's own run keeps a second core idle most of the
	// time, its GridSamples working through a frame's pixels one by one.
	var f1 *ort.Tensor[float32]
	var err1 error
	loaded := make(chan struct{})
	go func() {
		defer close(loaded)
		f1, err1 = m.frameTensor(shape, b)
	}()
	f0, err := m.frameTensor(shape, a)
	<-loaded
	if f1 != nil {
		defer f1.Destroy()
	}
	if err != nil {
		return err
	}
	defer f0.Destroy()
	if err1 != nil {
		return err1
	}
	ins := []ort.Value{f0, f1, nil}
	if m.motion != nil {
		motion := make([]ort.Value, len(m.spec.Motion.Outputs))
		if err := m.motion.s.Run([]ort.Value{f0, f1}, motion); err != nil {
			return img2vid.Errorf(img2vid.EINTERNAL, "model %s: the motion of %dx%d frames: %w", m.spec.Name, w, h, err)
		}
		for _, v := range motion {
			defer v.Destroy()
		}
		ins = append(ins, motion...)
	}
	out := make([]float32, 3*pw*ph)
	for i, t := range ts {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := m.runAt(ins, t, shape, out); err != nil {
			return img2vid.Errorf(img2vid.EINTERNAL, "model %s on %dx%d frames at t=%v: %w", m.spec.Name, w, h, t, err)
		}
		if err := emit(i, m.frameOf(out, w, h, pw, ph)); err != nil {
			return err
		}
	}
	return nil
}

// frameOf converts the model's output tensor (pw x ph) into a w x h
// frame, the top and bottom halves at once.
func (m *interpolator) frameOf(out []float32, w, h, pw, ph int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	half := h / 2
	top := img.SubImage(image.Rect(0, 0, w, half)).(*image.NRGBA)
	bottom := img.SubImage(image.Rect(0, half, w, h)).(*image.NRGBA)
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.codec.store(bottom, out, pw, ph, 0, half)
	}()
	m.codec.store(top, out, pw, ph, 0, 0)
	<-done
	return img
}

func (m *interpolator) frameTensor(shape ort.Shape, img *image.NRGBA) (*ort.Tensor[float32], error) {
	w, h := int(shape[3]), int(shape[2])
	if m.spec.Layout == LayoutNHWC {
		w, h = int(shape[2]), int(shape[1])
	}
	buf := make([]float32, 3*w*h)
	m.codec.load(buf, img, 0, 0, w, h)
	t, err := ort.NewTensor(shape, buf)
	if err != nil {
		return nil, img2vid.Errorf(img2vid.EINTERNAL, "model %s: creating a frame tensor %v: %w", m.spec.Name, shape, err)
	}
	return t, nil
}

// runAt runs the main graph at time t on ins: frame0, frame1, a place
// for t, then the motion, if any.
func (m *interpolator) runAt(ins []ort.Value, t float32, shape ort.Shape, out []float32) error {
	tt, err := ort.NewTensor(ort.NewShape(1), []float32{t})
	if err != nil {
		return fmt.Errorf("creating the time tensor: %w", err)
	}
	defer tt.Destroy()
	ins[2] = tt
	return m.sess.run(ins, shape, out)
}
