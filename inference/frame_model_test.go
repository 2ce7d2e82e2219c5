package inference

import (
	"context"
	"image"
	"testing"

	"github.com/img2vid/img2vid/internal/testimage"
)

// TestFrameModelMatchesItsMaths runs the tests' frame model, a fixed-size
// 2x upscaler with a different gain and offset per channel, through the
// bring-your-own path (a manifest with only the required fields), and
// compares every output pixel with the model's maths computed in Go:
// swapped channels, a wrong value range or layout, or misplaced tiles would
// each miss by far more than rounding.
func TestFrameModelMatchesItsMaths(t *testing.T) {
	r := openRuntime(t, testimage.FrameModelDir(t))
	m, err := r.FrameModel("sr2x")
	if err != nil {
		t.Fatalf("FrameModel: %v", err)
	}
	for _, tc := range []struct {
		name   string
		in     *image.NRGBA
		border int // output pixels at the frame's edge left out
	}{
		// Exactly the model's input: one run, no tiling, every pixel.
		{"one tile", testimage.Photo(testimage.SR2xInput.X, testimage.SR2xInput.Y), 0},
		// Tiled with overlaps; at the frame's edge the tiler pads the
		// frame, which the model sees unlike the whole-frame maths.
		{"tiled", testimage.Photo(333, 201), 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := m.Apply(context.Background(), tc.in)
			if err != nil {
				t.Fatal(err)
			}
			want := testimage.SR2x(tc.in)
			if got.Rect != want.Rect {
				t.Fatalf("output %v, want %v", got.Rect, want.Rect)
			}
			worst, sum, n := 0, 0, 0
			for y := tc.border; y < want.Rect.Dy()-tc.border; y++ {
				for x := tc.border; x < want.Rect.Dx()-tc.border; x++ {
					g, w := got.NRGBAAt(x, y), want.NRGBAAt(x, y)
					for _, d := range []int{int(g.R) - int(w.R), int(g.G) - int(w.G), int(g.B) - int(w.B)} {
						d = max(d, -d)
						worst, sum, n = max(worst, d), sum+d, n+1
					}
				}
			}
			t.Logf("%s: worst difference %d grey levels, mean %.4f", tc.name, worst, float64(sum)/float64(n))
			if worst > 2 {
				t.Errorf("a pixel differs from the model's maths by %d grey levels, above 2", worst)
			}
		})
	}
}
