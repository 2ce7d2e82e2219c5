// Package motion moves a window over a still image, Ken Burns style: a
// slow zoom and pan towards a focus point, sampled at sub-pixel precision
// on every frame, so that nothing shakes. The window moves at a constant
// rate in position and size: its second difference frame to frame is
// zero, where a window rounded to whole pixels (ffmpeg's zoompan) jitters.
package motion

import (
	"image"
	"math"
	"runtime"
	"sync"
)

// Window is the part of a frame shown, in the frame's pixels (fractional):
// its top-left corner and its size. It keeps the frame's aspect.
type Window struct{ X, Y, W, H float64 }

// Lerp is the window at u (0: a, 1: b) on the straight way from a to b.
func Lerp(a, b Window, u float64) Window {
	l := func(p, q float64) float64 { return p + (q-p)*u }
	return Window{l(a.X, b.X), l(a.Y, b.Y), l(a.W, b.W), l(a.H, b.H)}
}

// Path is one image's move over a fw x fh frame: from the whole frame to
// a window zoom times smaller around the focus (fx, fy, in the frame's
// pixels), or the reverse when out is set. A subject box (non-empty
// subject) widens the close window as needed to keep the subject whole
// in it. The close window stays inside the frame.
func Path(fw, fh int, zoom, fx, fy float64, subject image.Rectangle, out bool) (from, to Window) {
	full := Window{0, 0, float64(fw), float64(fh)}
	w, h := float64(fw)/zoom, float64(fh)/zoom
	if !subject.Empty() {
		// The smallest window of the frame's shape that holds the subject
		// with a little room, if that is larger than zoom gives.
		grow := max(float64(subject.Dx())*1.1/w, float64(subject.Dy())*1.1/h, 1)
		w, h = min(w*grow, float64(fw)), min(h*grow, float64(fh))
	}
	x := min(max(fx-w/2, 0), float64(fw)-w)
	y := min(max(fy-h/2, 0), float64(fh)-h)
	close := Window{x, y, w, h}
	if out {
		return close, full
	}
	return full, close
}

// Render samples src's window w into dst (bilinear, at sub-pixel
// positions), filling dst whole: dst's pixel centres map evenly onto the
// window. Each row blends its two source rows first, over the columns the
// window covers, then across: fewer multiplications than four taps per
// pixel. Rows are shared between the cores.
func Render(dst, src *image.NRGBA, w Window) {
	dw, dh := dst.Rect.Dx(), dst.Rect.Dy()
	sw, sh := src.Rect.Dx(), src.Rect.Dy()
	sx, sy := w.W/float64(dw), w.H/float64(dh)
	// Each destination column's left source column (from lo) and weight.
	x0 := make([]int32, dw)
	fx := make([]uint32, dw)
	lo, hi := sw, 0
	for x := range dw {
		p := min(max(w.X+(float64(x)+0.5)*sx-0.5, 0), float64(sw-1))
		i := int(p)
		x0[x], fx[x] = int32(i), uint32((p-float64(i))*256)
		lo, hi = min(lo, i), max(hi, min(i+1, sw-1))
	}
	for x := range x0 {
		x0[x] = 3 * (x0[x] - int32(lo)) // into the row of blended RGB below
	}
	span := hi - lo + 1
	rows := func(from, to int) {
		mid := make([]uint32, 3*(span+1)) // the two source rows blended, RGB, 16-bit
		for y := from; y < to; y++ {
			p := min(max(w.Y+(float64(y)+0.5)*sy-0.5, 0), float64(sh-1))
			j := int(p)
			fy := uint32((p - float64(j)) * 256)
			j1 := min(j+1, sh-1)
			r0 := src.Pix[src.PixOffset(src.Rect.Min.X+lo, src.Rect.Min.Y+j):][:4*span]
			r1 := src.Pix[src.PixOffset(src.Rect.Min.X+lo, src.Rect.Min.Y+j1):][:4*span]
			for i, k := 0, 0; i < 4*span; i, k = i+4, k+3 {
				mid[k] = uint32(r0[i])*(256-fy) + uint32(r1[i])*fy
				mid[k+1] = uint32(r0[i+1])*(256-fy) + uint32(r1[i+1])*fy
				mid[k+2] = uint32(r0[i+2])*(256-fy) + uint32(r1[i+2])*fy
			}
			copy(mid[3*span:], mid[3*span-3:3*span]) // the last column's right neighbour is itself
			out := dst.Pix[dst.PixOffset(dst.Rect.Min.X, dst.Rect.Min.Y+y):][:4*dw]
			for x := range dw {
				a, wx := x0[x], fx[x]
				m := mid[a : a+6 : a+6]
				o := out[4*x : 4*x+4 : 4*x+4]
				o[0] = uint8((m[0]*(256-wx) + m[3]*wx + 1<<15) >> 16)
				o[1] = uint8((m[1]*(256-wx) + m[4]*wx + 1<<15) >> 16)
				o[2] = uint8((m[2]*(256-wx) + m[5]*wx + 1<<15) >> 16)
				o[3] = 0xFF
			}
		}
	}
	parts := min(runtime.GOMAXPROCS(0), max(dh/16, 1))
	var wg sync.WaitGroup
	for p := range parts {
		wg.Go(func() { rows(dh*p/parts, dh*(p+1)/parts) })
	}
	wg.Wait()
}

// Jitter is the largest second difference, frame to frame, of a window's
// position and size over a path sampled at frames frames: how unevenly it
// moves, in pixels per frame squared. A window rounded to whole pixels
// scores about half a pixel; a smooth one zero.
func Jitter(windows []Window) float64 {
	worst := 0.0
	for i := 2; i < len(windows); i++ {
		a, b, c := windows[i-2], windows[i-1], windows[i]
		for _, d := range []float64{a.X - 2*b.X + c.X, a.Y - 2*b.Y + c.Y, a.W - 2*b.W + c.W, a.H - 2*b.H + c.H} {
			worst = max(worst, math.Abs(d))
		}
	}
	return worst
}
