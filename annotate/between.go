package annotate

import (
	"cmp"
	"math"
	"slices"

	"github.com/img2vid/img2vid"
)

// Between places the objects detected in two neighbouring frames, a and
// b, on the frame at time t (0 < t < 1) between them. Each object of a is
// matched to one of the same class in b, by overlap, else by nearness
// (centres less than 1.5 times the larger box's longer side apart, for an
// object that moved about its size or more); a matched pair moves linearly, box
// and score. An object seen in only one of the two is left out: it is not
// known where it is in between, and a box where it was or will be would
// be a ghost.
func Between(a, b []img2vid.Detection, t float64) []img2vid.Detection {
	type pair struct {
		i, j int
		iou  float64
		dist float64
	}
	var pairs []pair
	for i, da := range a {
		for j, db := range b {
			if da.ClassID != db.ClassID {
				continue
			}
			p := pair{i: i, j: j, iou: iou(da.Box, db.Box), dist: centreDistance(da.Box, db.Box)}
			reach := 1.5 * max(da.Box[2]-da.Box[0], da.Box[3]-da.Box[1], db.Box[2]-db.Box[0], db.Box[3]-db.Box[1])
			if p.iou > 0 || p.dist < reach {
				pairs = append(pairs, p)
			}
		}
	}
	// Best first: more overlap, then nearer.
	slices.SortStableFunc(pairs, func(p, q pair) int {
		if c := cmp.Compare(q.iou, p.iou); c != 0 {
			return c
		}
		return cmp.Compare(p.dist, q.dist)
	})
	usedA, usedB := make([]bool, len(a)), make([]bool, len(b))
	var out []img2vid.Detection
	for _, p := range pairs {
		if usedA[p.i] || usedB[p.j] {
			continue
		}
		usedA[p.i], usedB[p.j] = true, true
		da, db := a[p.i], b[p.j]
		d := img2vid.Detection{Class: da.Class, ClassID: da.ClassID, Score: da.Score + t*(db.Score-da.Score)}
		for k := range d.Box {
			d.Box[k] = da.Box[k] + t*(db.Box[k]-da.Box[k])
		}
		out = append(out, d)
	}
	slices.SortStableFunc(out, func(p, q img2vid.Detection) int { return cmp.Compare(q.Score, p.Score) })
	return out
}

func iou(a, b [4]float64) float64 {
	iw := min(a[2], b[2]) - max(a[0], b[0])
	ih := min(a[3], b[3]) - max(a[1], b[1])
	if iw <= 0 || ih <= 0 {
		return 0
	}
	inter := iw * ih
	return inter / ((a[2]-a[0])*(a[3]-a[1]) + (b[2]-b[0])*(b[3]-b[1]) - inter)
}

func centreDistance(a, b [4]float64) float64 {
	return math.Hypot((a[0]+a[2]-b[0]-b[2])/2, (a[1]+a[3]-b[1]-b[3])/2)
}
