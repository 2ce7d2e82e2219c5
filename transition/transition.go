// Package transition draws the frames between two slideshow images: a
// crossfade, a fade through black, a wipe or a slide, at any point of the
// way. Every kind works on whole frames of one size, in linear time.
package transition

import (
	"fmt"
	"image"
	"math"

	"github.com/img2vid/img2vid"
)

// Draw writes into dst the frame of the given kind (img2vid.Transitions,
// other than none) at p (0: all a, 1: all
// b) on the way from a to b. dst, a and b must have the same bounds; dst
// may be reused frame after frame (it is overwritten whole).
func Draw(dst, a, b *image.NRGBA, kind string, p float64) error {
	if dst.Rect != a.Rect || a.Rect != b.Rect {
		return fmt.Errorf("transition: frames of %v, %v and %v differ in size", dst.Rect, a.Rect, b.Rect)
	}
	p = min(max(p, 0), 1)
	switch kind {
	case img2vid.TransitionCrossfade:
		mix(dst.Pix, a.Pix, b.Pix, weight(p))
	case img2vid.TransitionFadeBlack:
		if p < 0.5 {
			scale(dst.Pix, a.Pix, weight(1-2*p))
		} else {
			scale(dst.Pix, b.Pix, weight(2*p-1))
		}
	case img2vid.TransitionWipe:
		w := a.Rect.Dx()
		edge := int(math.Round(p * float64(w)))
		rows(dst, func(y int, d []byte) {
			copy(d[:4*edge], b.Pix[b.PixOffset(b.Rect.Min.X, y):])
			copy(d[4*edge:], a.Pix[a.PixOffset(a.Rect.Min.X+edge, y):][:4*(w-edge)])
		})
	case img2vid.TransitionSlide:
		w := a.Rect.Dx()
		shift := int(math.Round(p * float64(w)))
		rows(dst, func(y int, d []byte) {
			copy(d[:4*(w-shift)], a.Pix[a.PixOffset(a.Rect.Min.X+shift, y):][:4*(w-shift)])
			copy(d[4*(w-shift):], b.Pix[b.PixOffset(b.Rect.Min.X, y):][:4*shift])
		})
	default:
		return fmt.Errorf("transition: unknown kind %q", kind)
	}
	return nil
}

// weight is p in 1/256ths, for integer mixing.
func weight(p float64) uint32 { return uint32(math.Round(p * 256)) }

// mix writes a*(256-w)/256 + b*w/256 into dst, alpha kept opaque.
func mix(dst, a, b []byte, w uint32) {
	for i := 0; i < len(dst); i += 4 {
		for k := range 3 {
			dst[i+k] = uint8((uint32(a[i+k])*(256-w) + uint32(b[i+k])*w + 128) >> 8)
		}
		dst[i+3] = 0xFF
	}
}

// scale writes src*w/256 into dst: src towards black.
func scale(dst, src []byte, w uint32) {
	for i := 0; i < len(dst); i += 4 {
		for k := range 3 {
			dst[i+k] = uint8((uint32(src[i+k])*w + 128) >> 8)
		}
		dst[i+3] = 0xFF
	}
}

// rows calls f with each row of dst and its y.
func rows(dst *image.NRGBA, f func(y int, row []byte)) {
	w := dst.Rect.Dx()
	for y := dst.Rect.Min.Y; y < dst.Rect.Max.Y; y++ {
		f(y, dst.Pix[dst.PixOffset(dst.Rect.Min.X, y):][:4*w])
	}
}
