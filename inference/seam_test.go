package inference

import (
	"context"
	"image"
	"math"
	"path/filepath"
	"testing"

	"github.com/img2vid/img2vid/internal/testimage"
)

// lineDiff is the mean absolute difference, over RGB, between a and b
// along output column x (vertical) or row x, on the part of a that b covers:
// b is a's frame cut at (ox, oy), run through the model again.
func lineDiff(a, b *image.NRGBA, ox, oy, k int, vertical bool) float64 {
	w, h := b.Rect.Dx(), b.Rect.Dy()
	n := h
	if !vertical {
		n = w
	}
	var s float64
	// b's own frame edges (the model sees padding there) are left out.
	const margin = 16
	for i := margin; i < n-margin; i++ {
		x, y := k-ox, i
		if !vertical {
			x, y = i, k-oy
		}
		p, q := a.PixOffset(ox+x, oy+y), b.PixOffset(x, y)
		for c := range 3 {
			s += math.Abs(float64(a.Pix[p+c]) - float64(b.Pix[q+c]))
		}
	}
	return s / float64(3*(n-2*margin))
}

// worstSeam runs frame in through the 2x frame model name (its file
// name.onnx in dir) with the given tile overlap, and again cut by (dx, dy)
// so that its tiles fall elsewhere, and returns the largest lineDiff along
// the first run's tile borders: a tile's output differs from its
// neighbour's near their shared edge (the model pads there), so a hard seam
// shows as a difference there, where a feathered blend matches the other
// run. The edges of the feathered bands, where one tile hands over to the
// next, are measured too.
func worstSeam(t *testing.T, dir, name string, in *image.NRGBA, dx, dy int, overlap string) float64 {
	writeFile(t, filepath.Join(dir, name+".json"), `{"name": "`+name+`", "kind": "frame", "file": "`+name+`.onnx", "tile_overlap": `+overlap+`}`)
	r := openRuntime(t, dir)
	m, err := r.FrameModel(name)
	if err != nil {
		t.Fatal(err)
	}
	w, h := in.Rect.Dx(), in.Rect.Dy()
	a, err := m.Apply(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if got := a.Rect.Size(); got != image.Pt(2*w, 2*h) {
		t.Fatalf("output %v, want %dx%d", got, 2*w, 2*h)
	}
	b, err := m.Apply(context.Background(), in.SubImage(image.Rect(dx, dy, w, h)).(*image.NRGBA))
	if err != nil {
		t.Fatal(err)
	}
	tl := m.(*frameModel).plan(w, h)
	worst := 0.0
	check := func(k int, vertical bool, lo, hi int) {
		if k <= lo || k >= hi {
			return // outside the frame, or outside the part b covers
		}
		d := lineDiff(a, b, 2*dx, 2*dy, k, vertical)
		t.Logf("tile_overlap %s: border %s %d: mean difference %.4f", overlap, map[bool]string{true: "column", false: "row"}[vertical], k, d)
		worst = max(worst, d)
	}
	for _, x := range tl.xs {
		check(2*x, true, 2*dx, 2*w)
		check(2*(x+tl.tw), true, 2*dx, 2*w)
	}
	for _, y := range tl.ys {
		check(2*y, false, 2*dy, 2*h)
		check(2*(y+tl.th), false, 2*dy, 2*h)
	}
	// The feathered bands sit inside the overlaps: their edges, where a
	// tile's output starts and stops counting, are where a seam would show.
	ramp := *m.(*frameModel).spec.TileOverlap
	for _, s := range spans(tl.xs, tl.tw, 2, ramp, 2*w) {
		check(s.lo, true, 2*dx, 2*w)
		check(s.hi, true, 2*dx, 2*w)
	}
	for _, s := range spans(tl.ys, tl.th, 2, ramp, 2*h) {
		check(s.lo, false, 2*dy, 2*h)
		check(s.hi, false, 2*dy, 2*h)
	}
	return worst
}

// TestTiledFrameHasNoSeam: a frame through a fixed-size 2x model comes out
// with no seam at any tile border: the tests' model (96x64 tiles) on a
// generated 480x384 photo (5x6 tiles butted exactly when there is no
// overlap), and, in the extended set, QuickSRNet (640x360
// tiles) on a 1920x1080 aquarium frame. The same measurement on tiles
// butted together without overlap shows the seams, so the measurement can
// see them.
func TestTiledFrameHasNoSeam(t *testing.T) {
	const limit = 0.02 // grey levels, mean along a border line
	for _, tc := range []struct {
		name   string
		setup  func(t *testing.T) (dir, model string, in *image.NRGBA)
		dx, dy int
	}{
		{"generated", func(t *testing.T) (string, string, *image.NRGBA) {
			return testimage.FrameModelDir(t), "sr2x", testimage.Photo(480, 384)
		}, 50, 30},
		{"quicksrnet", func(t *testing.T) (string, string, *image.NRGBA) {
			return quickSRNetDir(t), "sr-2x", testimage.AquariumFrame(t, 10, 0, 0)
		}, 200, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, model, in := tc.setup(t)
			if w := worstSeam(t, dir, model, in, tc.dx, tc.dy, "16"); w > limit {
				t.Errorf("feathered tiles: a tile border differs by %.4f grey levels on average, above %.2f: a seam shows", w, limit)
			}
			if w := worstSeam(t, dir, model, in, tc.dx, tc.dy, "0"); w <= limit {
				t.Errorf("butted tiles: the worst border differs by only %.4f grey levels; the measurement does not see hard seams", w)
			}
		})
	}
}
