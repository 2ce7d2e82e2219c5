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

// featherWeights returns, for each tile at starts (in input pixels, each
// tile long), the blend weight of each of its tile*scale output pixels
// along the axis. Where two neighbours overlap, the weights cross over
// linearly in a band ramp*scale pixels wide (or the whole overlap, if
// narrower) at the middle of the overlap: before the band only the first
// tile counts, after it only the second. The middle is where both tiles'
// outputs are furthest from their edges, where a model sees no context,
// and a narrow band leaves most of the overlap to a single tile, which the
// mosaic then copies without blending. The weights are divided by their
// sum at each pixel, so they add up to exactly one everywhere, also where
// three tiles overlap (evenly spread tiles can), and a pixel one tile
// alone covers has weight exactly one.
func featherWeights(starts []int, tile, scale, ramp int) [][]float32 {
	n := tile * scale
	ws := make([][]float32, len(starts))
	for i := range starts {
		ws[i] = make([]float32, n)
		for k := range ws[i] {
			ws[i][k] = 1
		}
	}
	for i := 1; i < len(starts); i++ {
		// The overlap of tiles i-1 and i is [a, b) in output pixels.
		a, b := starts[i]*scale, (starts[i-1]+tile)*scale
		if b <= a {
			continue
		}
		r := min(ramp*scale, b-a)
		c := a + (b-a-r)/2 // the band is [c, c+r)
		prev, next := ws[i-1], ws[i]
		for x := a; x < b; x++ {
			up := float32(0) // the weight of tile i
			switch {
			case x >= c+r:
				up = 1
			case x >= c:
				up = (float32(x-c) + 0.5) / float32(r)
			}
			prev[x-starts[i-1]*scale] *= 1 - up
			next[x-a] *= up
		}
	}
	sum := make([]float32, (starts[len(starts)-1]+tile)*scale)
	for i, s := range starts {
		for k, v := range ws[i] {
			sum[s*scale+k] += v
		}
	}
	for i, s := range starts {
		for k := range ws[i] {
			if ws[i][k] != 0 {
				ws[i][k] /= sum[s*scale+k]
			}
		}
	}
	return ws
}

// roundUp returns v rounded up to a multiple of m.
func roundUp(v, m int) int {
	return (v + m - 1) / m * m
}
