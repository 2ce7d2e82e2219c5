package ingest

import (
	"image"
)

// BT.601 "studio swing" YCbCr to RGB, the conversion VP8 (lossy WebP)
// frames use, in 16.16 fixed point: Y spans 16-235 and Cb, Cr 16-240.
// Go's image.YCbCr converts as JPEG's full-range JFIF, which makes lossy
// WebP flatter and duller than libwebp shows it.
const (
	vp8Y  = 76309  // 255/219
	vp8RV = 104597 // 1.402 * 255/224
	vp8GU = 25675  // 0.344136 * 255/224
	vp8GV = 53279  // 0.714136 * 255/224
	vp8BU = 132201 // 1.772 * 255/224
)

// webpToNRGBA converts a decoded WebP image to NRGBA as libwebp does. A
// lossy frame (4:2:0 YCbCr, with alpha or not) is video-range BT.601, its
// chroma upsampled by weighting the four nearest samples 9:3:3:1 ("fancy"
// upsampling), not repeated; a lossless one is RGB already.
func webpToNRGBA(src image.Image) *image.NRGBA {
	var m *image.YCbCr
	var alpha []byte
	var aStride int
	switch s := src.(type) {
	case *image.YCbCr:
		m = s
	case *image.NYCbCrA:
		m, alpha, aStride = &s.YCbCr, s.A, s.AStride
	}
	if m == nil || m.SubsampleRatio != image.YCbCrSubsampleRatio420 || m.Rect.Min != (image.Point{}) {
		return toNRGBA(src)
	}
	b := m.Rect
	w, h := b.Dx(), b.Dy()
	dst := image.NewNRGBA(image.Rect(0, 0, w, h))
	cw, ch := (w+1)/2, (h+1)/2
	chroma := func(plane []byte, x, y int) int32 {
		return int32(plane[y*m.CStride+x])
	}
	for y := range h {
		cy := y / 2
		ny := cy + 1 // the vertical neighbour: the chroma row on y's side
		if y%2 == 0 {
			ny = cy - 1
		}
		ny = min(max(ny, 0), ch-1)
		yrow := m.Y[y*m.YStride:]
		out := dst.Pix[y*dst.Stride:]
		for x := range w {
			cx := x / 2
			nx := cx + 1
			if x%2 == 0 {
				nx = cx - 1
			}
			nx = min(max(nx, 0), cw-1)
			u := (9*chroma(m.Cb, cx, cy) + 3*chroma(m.Cb, nx, cy) + 3*chroma(m.Cb, cx, ny) + chroma(m.Cb, nx, ny) + 8) >> 4
			v := (9*chroma(m.Cr, cx, cy) + 3*chroma(m.Cr, nx, cy) + 3*chroma(m.Cr, cx, ny) + chroma(m.Cr, nx, ny) + 8) >> 4
			l := vp8Y * (int32(yrow[x]) - 16)
			u, v = u-128, v-128
			p := out[4*x : 4*x+4]
			p[0] = clamp8((l + vp8RV*v + 1<<15) >> 16)
			p[1] = clamp8((l - vp8GU*u - vp8GV*v + 1<<15) >> 16)
			p[2] = clamp8((l + vp8BU*u + 1<<15) >> 16)
			p[3] = 0xFF
			if alpha != nil {
				p[3] = alpha[y*aStride+x]
			}
		}
	}
	return dst
}

func clamp8(v int32) uint8 {
	return uint8(min(max(v, 0), 255))
}
