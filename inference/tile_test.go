package inference

import (
	"math"
	"testing"
)

func TestTileOrigins(t *testing.T) {
	tests := []struct{ size, tile, overlap int }{
		{1920, 640, 16}, {1080, 360, 16}, {960, 640, 16}, {641, 640, 16}, {640, 640, 16}, {300, 640, 16}, {1920, 640, 0}, {4000, 256, 32},
	}
	for _, tt := range tests {
		o := TileOrigins(tt.size, tt.tile, tt.overlap)
		if o[0] != 0 {
			t.Errorf("%v: first tile at %d", tt, o[0])
		}
		if last := o[len(o)-1] + tt.tile; tt.size > tt.tile && last != tt.size {
			t.Errorf("%v: last tile ends at %d, not at the edge", tt, last)
		}
		for i := 1; i < len(o); i++ {
			if ov := o[i-1] + tt.tile - o[i]; ov < tt.overlap || 2*ov >= 2*tt.tile {
				t.Errorf("%v: tiles %d and %d overlap by %d", tt, i-1, i, ov)
			}
		}
	}
}

// TestFeatherWeightsSumToOne: wherever tiles overlap, their weights add up
// to one, so blending keeps brightness and leaves no seam; 1265 puts three
// tiles of 640 over a few pixels. Where one tile alone has weight its
// weight is exactly one, which lets the mosaic copy those pixels unweighted,
// and the crossover is no wider than the ramp asked for.
func TestFeatherWeightsSumToOne(t *testing.T) {
	for _, tt := range []struct{ size, tile, overlap, scale int }{
		{1920, 640, 16, 2}, {1080, 360, 16, 2}, {1000, 128, 8, 1}, {1920, 640, 0, 2}, {1000, 640, 0, 1}, {1265, 640, 16, 2}, {300, 640, 16, 2},
	} {
		o := TileOrigins(tt.size, tt.tile, tt.overlap)
		sum := make([]float64, (o[len(o)-1]+tt.tile)*tt.scale)
		weighted := make([]int, len(sum)) // tiles with weight at each pixel
		for i, w := range featherWeights(o, tt.tile, tt.scale, tt.overlap) {
			for k, v := range w {
				sum[o[i]*tt.scale+k] += float64(v)
				if v != 0 {
					weighted[o[i]*tt.scale+k]++
				}
			}
		}
		blended := 0
		for x, s := range sum {
			if math.Abs(s-1) > 1e-5 {
				t.Fatalf("%v: weights at %d sum to %v", tt, x, s)
			}
			if weighted[x] == 1 && s != 1 {
				t.Fatalf("%v: the only tile at %d weighs %v, not exactly 1", tt, x, s)
			}
			if weighted[x] > 1 {
				blended++
			}
		}
		if want := (len(o) - 1) * tt.overlap * tt.scale; blended > want {
			t.Errorf("%v: %d pixels blend two tiles, more than the %d of the ramps", tt, blended, want)
		}
	}
}
