package inference

import "image"

// codec converts between 8-bit pixels and a model's tensor values: its
// layout, colour order and value range. It is the hot path (a 1080p frame
// through a 2x model is 6 M values in and 25 M out), so the loops index
// slices directly and look values up in a table.
type codec struct {
	lut  [256]float32 // 8-bit value -> tensor value
	lo   float32      // tensor value of black
	to8  float32      // tensor units -> 8-bit steps
	bgr  bool
	nhwc bool
}

func newCodec(m Manifest) *codec {
	c := &codec{
		lo:   float32(m.Range[0]),
		to8:  float32(255 / (m.Range[1] - m.Range[0])),
		bgr:  m.Channels == ChannelsBGR,
		nhwc: m.Layout == LayoutNHWC,
	}
	step := (m.Range[1] - m.Range[0]) / 255
	for i := range c.lut {
		c.lut[i] = float32(m.Range[0] + float64(i)*step)
	}
	return c
}

// strides returns the distance between neighbouring channels, rows and
// columns in one w x h item of a tensor.
func (c *codec) strides(w, h int) (cs, ys, xs int) {
	if c.nhwc {
		return 1, 3 * w, 3
	}
	return w * h, w, 1
}

// channel returns which of R, G, B (0, 1, 2) tensor channel k holds. The
// mapping is its own inverse, so it also gives the tensor channel of R, G, B.
func (c *codec) channel(k int) int {
	if c.bgr {
		return 2 - k
	}
	return k
}

// load writes the w x h window of img whose top-left corner is (x0, y0)
// into dst, one tensor item. Pixels outside img repeat its nearest edge
// pixel, which pads small frames and the last tiles without a hard border
// for the model to react to.
func (c *codec) load(dst []float32, img *image.NRGBA, x0, y0, w, h int) {
	b := img.Rect
	iw, ih := b.Dx(), b.Dy()
	cols := make([]int, w) // byte offset of each window column in a row
	for x := range cols {
		cols[x] = 4 * min(max(x0+x, 0), iw-1)
	}
	cs, ys, xs := c.strides(w, h)
	r, g := c.channel(0), c.channel(1)
	for y := range h {
		sy := min(max(y0+y, 0), ih-1)
		row := img.Pix[img.PixOffset(b.Min.X, b.Min.Y+sy):][:4*iw]
		base := y * ys
		if !c.nhwc {
			pr := dst[r*cs+base : r*cs+base+w]
			pg := dst[g*cs+base : g*cs+base+w]
			pb := dst[(2-r)*cs+base : (2-r)*cs+base+w]
			for x, o := range cols {
				p := row[o : o+3 : o+3]
				pr[x] = c.lut[p[0]]
				pg[x] = c.lut[p[1]]
				pb[x] = c.lut[p[2]]
			}
			continue
		}
		d := dst[base : base+3*w]
		for x, o := range cols {
			p := row[o : o+3 : o+3]
			q := d[x*xs : x*xs+3 : x*xs+3]
			q[r] = c.lut[p[0]]
			q[g] = c.lut[p[1]]
			q[2-r] = c.lut[p[2]]
		}
	}
}

// to8bit maps a tensor value to an 8-bit value, rounded and clamped.
func (c *codec) to8bit(v float32) uint8 {
	f := (v-c.lo)*c.to8 + 0.5
	switch {
	case f <= 0 || f != f: // below black, or NaN
		return 0
	case f >= 255:
		return 255
	}
	return uint8(f)
}

// store writes the w x h window at (x0, y0) of one tensor item src, of
// size sw x sh, into dst at its origin, clipped to dst. Alpha is opaque.
func (c *codec) store(dst *image.NRGBA, src []float32, sw, sh, x0, y0 int) {
	w, h := min(dst.Rect.Dx(), sw-x0), min(dst.Rect.Dy(), sh-y0)
	cs, ys, xs := c.strides(sw, sh)
	r, g := c.channel(0), c.channel(1)
	b := 2 - r
	for y := range h {
		row := dst.Pix[y*dst.Stride : y*dst.Stride+4*w]
		base := (y0+y)*ys + x0*xs
		for x := range w {
			i := base + x*xs
			p := row[4*x : 4*x+4 : 4*x+4]
			p[0] = c.to8bit(src[i+r*cs])
			p[1] = c.to8bit(src[i+g*cs])
			p[2] = c.to8bit(src[i+b*cs])
			p[3] = 255
		}
	}
}
