package inference

import (
	"image"
	"runtime"
	"sync"
)

// mosaic assembles a frame from the outputs of overlapping tiles fed to it
// in raster order (row by row, left to right), each weighted by its
// feather weights wx[x]*wy[y], which sum to one over the tiles weighing a
// pixel (see featherWeights).
//
// A 1080p frame through a 2x model is 44 M tile values for a 25 M value
// frame, the bulk of the frame path's own work, so each pixel is handled
// by what its tile knows about it: one only this tile weighs goes straight
// into the frame (its weight is exactly one, and that is most pixels, the
// feathered bands being narrow); one an earlier tile weighs too has a
// partial sum waiting for it; one a later tile weighs too leaves its
// partial sum for that tile; the last tile over a pixel converts the
// finished sum into the frame. The float sums are touched only in the
// bands, never need clearing, and no pass over the whole frame is left
// after the last tile. Tile values of zero weight are never read.
type mosaic struct {
	img        *image.NRGBA
	sum        []float32 // 3 planes, R, G and B, of the frame's size
	cols, rows []span    // the tiles' spans along x and y
}

// span is the part of one tile's output along an axis of the frame that
// has weight, cut where its neighbours' parts overlap it.
type span struct {
	lo, hi    int       // the frame pixels it gives weight to
	prevEnd   int       // pixels before this an earlier tile weighs too
	nextStart int       // pixels from this on a later tile weighs too
	w         []float32 // feather weight of each pixel of the tile's output
	origin    int       // the frame pixel of w[0]
}

// spans returns the spans of tiles of length tile (in input pixels) at
// starts along an output axis of size pixels, scale times the input's,
// feathered over ramp input pixels (see featherWeights).
func spans(starts []int, tile, scale, ramp, size int) []span {
	ws := featherWeights(starts, tile, scale, ramp)
	ss := make([]span, len(starts))
	for i, s := range starts {
		w := ws[i]
		lo, hi := 0, len(w)
		for lo < hi && w[lo] == 0 {
			lo++
		}
		for hi > lo && w[hi-1] == 0 {
			hi--
		}
		o := s * scale
		ss[i] = span{lo: o + lo, hi: min(o+hi, size), w: w, origin: o}
	}
	for i := range ss {
		ss[i].prevEnd, ss[i].nextStart = ss[i].lo, ss[i].hi
		if i > 0 {
			ss[i].prevEnd = min(max(ss[i-1].hi, ss[i].lo), ss[i].hi)
		}
		if i+1 < len(ss) {
			ss[i].nextStart = min(max(ss[i+1].lo, ss[i].lo), ss[i].hi)
		}
	}
	return ss
}

// segment is a run of a span's pixels that its neighbours treat alike.
type segment struct {
	lo, hi        int
	before, after bool // an earlier / a later tile covers these pixels too
}

// segments cuts the span where earlier tiles stop and later ones start.
func (s span) segments() []segment {
	a, b := min(s.prevEnd, s.nextStart), max(s.prevEnd, s.nextStart)
	var segs []segment
	for _, r := range [][2]int{{s.lo, a}, {a, b}, {b, s.hi}} {
		if r[0] < r[1] {
			segs = append(segs, segment{lo: r[0], hi: r[1], before: r[0] < s.prevEnd, after: r[1] > s.nextStart})
		}
	}
	return segs
}

// newMosaic starts a w x h frame to be assembled from tiles of tw x th
// output pixels placed at xs and ys (in input pixels, scale times fewer)
// and feathered over ramp input pixels, keeping its partial sums in sum, at
// least 3*w*h long, whatever it holds.
func newMosaic(w, h, tw, th, scale, ramp int, xs, ys []int, sum []float32) *mosaic {
	return &mosaic{
		img:  image.NewNRGBA(image.Rect(0, 0, w, h)),
		sum:  sum[:3*w*h],
		cols: spans(xs, tw/scale, scale, ramp, w),
		rows: spans(ys, th/scale, scale, ramp, h),
	}
}

// add folds in the output item src of the tile at column i, row j, in the
// model's layout. Tiles must come in raster order. Rows are shared among
// the cores: when the model is idle they have nothing else to do, and
// while it runs the scheduler weighs both.
func (mo *mosaic) add(c *codec, src []float32, i, j int) {
	sx, sy := mo.cols[i], mo.rows[j]
	cs, ys, xs := c.strides(len(sx.w), len(sy.w))
	segs := sx.segments()
	w, plane := mo.img.Rect.Dx(), len(mo.sum)/3
	rows := func(y0, y1 int) {
		for y := y0; y < y1; y++ {
			ty := y - sy.origin
			wy := sy.w[ty]
			rowBefore, rowAfter := y < sy.prevEnd, y >= sy.nextStart
			for _, sg := range segs {
				n, tx := sg.hi-sg.lo, sg.lo-sx.origin
				var t [3][]float32 // the tile's R, G, B along this row
				for k := range 3 {
					o := k*cs + ty*ys + tx*xs
					t[c.channel(k)] = src[o : o+(n-1)*xs+1]
				}
				px := mo.img.Pix[y*mo.img.Stride+4*sg.lo:][:4*n]
				wx := sx.w[tx : tx+n]
				o := y*w + sg.lo
				s := [3][]float32{mo.sum[o : o+n], mo.sum[plane+o : plane+o+n], mo.sum[2*plane+o : 2*plane+o+n]}
				first, last := !rowBefore && !sg.before, !rowAfter && !sg.after
				switch {
				case first && last:
					c.put(px, t, xs)
				case first:
					for k := range 3 {
						start(s[k], t[k], xs, wx, wy)
					}
				case last:
					c.finish(px, s, t, xs, wx, wy)
				default:
					for k := range 3 {
						accumulate(s[k], t[k], xs, wx, wy)
					}
				}
			}
		}
	}
	forRows(sy.lo, sy.hi, rows)
}

// forRows runs rows over [y0, y1) in parts, one per core, each at least
// 32 rows so the goroutines pay for themselves.
func forRows(y0, y1 int, rows func(y0, y1 int)) {
	n := min(runtime.GOMAXPROCS(0), max((y1-y0)/32, 1))
	if n == 1 {
		rows(y0, y1)
		return
	}
	var wg sync.WaitGroup
	for k := range n {
		wg.Go(func() { rows(y0+k*(y1-y0)/n, y0+(k+1)*(y1-y0)/n) })
	}
	wg.Wait()
}

// put writes the pixels of a tile alone into px, from its channels t
// whose values lie xs apart.
func (c *codec) put(px []uint8, t [3][]float32, xs int) {
	r, g, b := t[0], t[1], t[2]
	for x := range len(px) / 4 {
		i := x * xs
		p := px[4*x : 4*x+4 : 4*x+4]
		p[0] = c.to8bit(r[i])
		p[1] = c.to8bit(g[i])
		p[2] = c.to8bit(b[i])
		p[3] = 255
	}
}

// start begins the partial sums s with a tile's weighted values t.
func start(s, t []float32, xs int, wx []float32, wy float32) {
	wx = wx[:len(s)]
	for x := range s {
		s[x] = t[x*xs] * (wx[x] * wy)
	}
}

// accumulate adds a tile's weighted values t to the partial sums s.
func accumulate(s, t []float32, xs int, wx []float32, wy float32) {
	wx = wx[:len(s)]
	for x := range s {
		s[x] += t[x*xs] * (wx[x] * wy)
	}
}

// finish writes into px the partial sums s completed with the last tile's
// weighted values t.
func (c *codec) finish(px []uint8, s, t [3][]float32, xs int, wx []float32, wy float32) {
	sr := s[0]
	sg, sb := s[1][:len(sr)], s[2][:len(sr)]
	r, g, b := t[0], t[1], t[2]
	wx = wx[:len(sr)]
	px = px[:4*len(sr)]
	for x := range sr {
		i, w := x*xs, wx[x]*wy
		p := px[4*x : 4*x+4 : 4*x+4]
		p[0] = c.to8bit(sr[x] + r[i]*w)
		p[1] = c.to8bit(sg[x] + g[i]*w)
		p[2] = c.to8bit(sb[x] + b[i]*w)
		p[3] = 255
	}
}
