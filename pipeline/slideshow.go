package pipeline

import (
	"image"

	"github.com/img2vid/img2vid"
	"github.com/img2vid/img2vid/motion"
	"github.com/img2vid/img2vid/transition"
)

// slides writes a slideshow's frames: each image held for its slot at the
// output rate, the last frames of a slot a transition into the next
// image; with Ken Burns, each image's frames a window moving over it from
// the first frame it is seen in (the transition into it) to its last.
type slides struct {
	out   *frameWriter
	opts  img2vid.Options
	slots []int // each input's frames (Plan.Slots)
	// in is how many frames of the transition into the image shown next
	// showed it already, and shown how many images were shown: the
	// images shown, not the inputs, alternate their zoom.
	in, shown int
	mix       *image.NRGBA    // the transition's frame, drawn into frame after frame
	view      [2]*image.NRGBA // Ken Burns renders: the image, and the next one in a transition
}

// show writes the slot of cur on the way to next; nil next for the last
// image, which is held for its whole slot.
func (s *slides) show(cur frame, next *frame) error {
	n := s.slots[cur.index]
	t := 0
	if next != nil {
		t = s.opts.TransitionFrames(n)
	}
	in, i := s.in, s.shown
	s.in, s.shown = t, s.shown+1
	seen := in + n // the frames the image is seen in
	for k := range n - t {
		var err error
		if s.opts.Moves() {
			v := s.moved(cur, i, in+k, seen, 0)
			err = s.out.frame(v.img, v.dets, v.caption, false)
		} else {
			err = s.out.write(cur)
		}
		if err != nil {
			return err
		}
	}
	for k := 1; k <= t; k++ {
		a := s.moved(cur, i, in+n-t+k-1, seen, 0)
		b := s.moved(*next, i+1, k-1, t+s.slots[next.index], 1)
		if err := s.between(a, b, float64(k)/float64(t+1)); err != nil {
			return err
		}
	}
	return nil
}

// moved is frame j of the seen frames the i-th image shown is seen in: the window of its
// Ken Burns move at that point, rendered into view buffer buf, with its
// boxes where the window puts them; the image itself without motion.
func (s *slides) moved(f frame, i, j, seen, buf int) frame {
	if !s.opts.Moves() {
		return f
	}
	fw, fh := f.img.Rect.Dx(), f.img.Rect.Dy()
	from, to := s.path(f, i, fw, fh)
	u := 0.0
	if seen > 1 {
		u = float64(j) / float64(seen-1)
	}
	w := motion.Lerp(from, to, u)
	if s.view[buf] == nil || s.view[buf].Rect != f.img.Rect {
		s.view[buf] = image.NewNRGBA(f.img.Rect)
	}
	motion.Render(s.view[buf], f.img, w)
	return frame{img: s.view[buf], dets: windowed(f.dets, w, fw, fh), caption: f.caption, index: f.index}
}

// path is image i's Ken Burns move over a fw x fh frame: towards the focus
// point, or the subject its detections enclose (the frame's centre when it
// has none), zooming in or out as the direction says for image i.
func (s *slides) path(f frame, i, fw, fh int) (from, to motion.Window) {
	var subject image.Rectangle
	fx, fy, ok := s.opts.FocusPoint()
	if !ok { // detect
		fx, fy = 0.5, 0.5
		for _, d := range f.dets {
			subject = subject.Union(image.Rect(int(d.Box[0]), int(d.Box[1]), int(d.Box[2]+0.5), int(d.Box[3]+0.5)))
		}
		if !subject.Empty() {
			fx, fy = (float64(subject.Min.X+subject.Max.X)/2)/float64(fw), (float64(subject.Min.Y+subject.Max.Y)/2)/float64(fh)
		}
	}
	out := s.opts.MotionDirection == img2vid.DirectionOut || (s.opts.MotionDirection != img2vid.DirectionIn && i%2 == 1)
	return motion.Path(fw, fh, s.opts.MotionZoom, fx*float64(fw), fy*float64(fh), subject, out)
}

// windowed maps detection boxes of a fw x fh frame into the frame made of
// its window w: moved and scaled with it, cut at the frame's edges, and
// dropped when the window leaves them out.
func windowed(dets []img2vid.Detection, w motion.Window, fw, fh int) []img2vid.Detection {
	if len(dets) == 0 {
		return nil
	}
	sx, sy := float64(fw)/w.W, float64(fh)/w.H
	out := make([]img2vid.Detection, 0, len(dets))
	for _, d := range dets {
		b := [4]float64{(d.Box[0] - w.X) * sx, (d.Box[1] - w.Y) * sy, (d.Box[2] - w.X) * sx, (d.Box[3] - w.Y) * sy}
		b = [4]float64{max(b[0], 0), max(b[1], 0), min(b[2], float64(fw)), min(b[3], float64(fh))}
		if b[2] <= b[0] || b[3] <= b[1] {
			continue
		}
		d.Box = b
		out = append(out, d)
	}
	return out
}

// between writes the transition's frame at p from a to b, with a's boxes
// and caption until half way and b's after (both frames are real images,
// not made up).
func (s *slides) between(a, b frame, p float64) error {
	if s.mix == nil || s.mix.Rect != a.img.Rect {
		s.mix = image.NewNRGBA(a.img.Rect)
	}
	if err := transition.Draw(s.mix, a.img, b.img, s.opts.Transition, p); err != nil {
		return err
	}
	dets, text := a.dets, a.caption
	if p >= 0.5 {
		dets, text = b.dets, b.caption
	}
	return s.out.frame(s.mix, dets, text, false)
}
