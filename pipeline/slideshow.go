package pipeline

import (
	"image"

	"github.com/img2vid/img2vid"
	"github.com/img2vid/img2vid/transition"
)

// slides writes a slideshow's frames: each image held for its slot at the
// output rate, the last frames of a slot a transition into the next image.
type slides struct {
	out  *frameWriter
	opts img2vid.Options
	mix  *image.NRGBA // the transition's frame, drawn into frame after frame
}

// show writes the slot of image i (from 0), cur, on the way to next; nil
// next for the last image, which is held for its whole slot.
func (s *slides) show(i int, cur frame, next *frame) error {
	n := s.opts.SlotFrames(i)
	t := 0
	if next != nil {
		t = s.opts.TransitionFrames(n)
	}
	for range n - t {
		if err := s.out.write(cur); err != nil {
			return err
		}
	}
	for k := 1; k <= t; k++ {
		if err := s.between(cur, *next, float64(k)/float64(t+1)); err != nil {
			return err
		}
	}
	return nil
}

// between writes the transition's frame at p from a to b, with a's boxes
// until half way and b's after (both frames are real images, not made up).
func (s *slides) between(a, b frame, p float64) error {
	if s.mix == nil || s.mix.Rect != a.img.Rect {
		s.mix = image.NewNRGBA(a.img.Rect)
	}
	if err := transition.Draw(s.mix, a.img, b.img, s.opts.Transition, p); err != nil {
		return err
	}
	dets := a.dets
	if p >= 0.5 {
		dets = b.dets
	}
	return s.out.frame(s.mix, dets, false)
}
