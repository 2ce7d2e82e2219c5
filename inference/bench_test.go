package inference

import (
	"context"
	"testing"
)

// BenchmarkIdentity1080p times the frame path's own work (tensor in, run a
// model that copies, blend out) on a 1080p frame.
func BenchmarkIdentity1080p(b *testing.B) {
	r := openRuntime(b, identityDir(b))
	m, err := r.FrameModel("identity")
	if err != nil {
		b.Fatal(err)
	}
	frame := aquariumFrame(b, 5)
	for b.Loop() {
		if _, err := m.Apply(context.Background(), frame); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBlend1080p times one interpolated 1080p frame of the built-in
// blend model.
func BenchmarkBlend1080p(b *testing.B) {
	r := openRuntime(b, "")
	m, err := r.Interpolator("blend")
	if err != nil {
		b.Fatal(err)
	}
	a, c := aquariumFrame(b, 5), aquariumFrame(b, 6)
	for b.Loop() {
		if _, err := m.Interpolate(context.Background(), a, c, []float32{0.5}); err != nil {
			b.Fatal(err)
		}
	}
}
