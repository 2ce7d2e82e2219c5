package inference

// TileOrigins places tiles of length tile along an axis of length size so
// that neighbours overlap by at least overlap, spread evenly, the first at 0
// and the last ending at size. An axis shorter than a tile gets one tile,
// padded later.
func TileOrigins(size, tile, overlap int) []int {
	if size <= tile {
		return []int{0}
	}
	stride := tile - overlap
	n := (size-tile+stride-1)/stride + 1
	starts := make([]int, n)
	for i := range starts {
		// Rounded to nearest: the spread stays even and the last tile ends
		// exactly at size.
		starts[i] = (i*(size-tile)*2 + (n - 1)) / (2 * (n - 1))
	}
	return starts
}

// featherWeights returns, for tile i of the tiles at starts (in input
// pixels, each tile long), the blend weight of each of its tile*scale output
// pixels along the axis. Where tile i overlaps a neighbour the weight ramps
// linearly from 0 to 1 across the whole overlap and the neighbour's ramps the
// other way, so the two sum to one and no seam is left; elsewhere it is 1.
func featherWeights(starts []int, i, tile, scale int) []float32 {
	n := tile * scale
	w := make([]float32, n)
	for k := range w {
		w[k] = 1
	}
	a := starts[i] * scale
	if i > 0 {
		// Overlap with the previous tile: [a, prevEnd).
		if ov := (starts[i-1]+tile)*scale - a; ov > 0 {
			for k := 0; k < ov && k < n; k++ {
				w[k] = (float32(k) + 0.5) / float32(ov)
			}
		}
	}
	if i+1 < len(starts) {
		// Overlap with the next tile: [nextStart, a+n).
		if ov := a + n - starts[i+1]*scale; ov > 0 {
			for k := 0; k < ov && k < n; k++ {
				w[n-1-k] *= (float32(k) + 0.5) / float32(ov)
			}
		}
	}
	return w
}

// roundUp returns v rounded up to a multiple of m.
func roundUp(v, m int) int {
	return (v + m - 1) / m * m
}
