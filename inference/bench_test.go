package inference

import (
	"context"
	"testing"

	"github.com/img2vid/img2vid"
	"github.com/img2vid/img2vid/internal/testimage"
)

// BenchmarkIdentity1080p times the frame path's own work (tensor in, run a
// model that copies, blend out) on a 1080p frame.
func BenchmarkIdentity1080p(b *testing.B) {
	r := openRuntime(b, identityDir(b))
	m, err := r.FrameModel("identity")
	if err != nil {
		b.Fatal(err)
	}
	frame := testimage.AquariumFrame(b, 5, 0, 0)
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
	a, c := testimage.AquariumFrame(b, 5, 0, 0), testimage.AquariumFrame(b, 6, 0, 0)
	for b.Loop() {
		if _, err := img2vid.InterpolateAll(context.Background(), m, a, c, []float32{0.5}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTileConversion1080p times what FrameModel.Apply adds to the
// model's own time for a 1080p frame through a 2x model of 640x360 tiles:
// tiles to tensors and tensors folded into the 4K frame, done one after
// the other here, without a model running beside them.
func BenchmarkTileConversion1080p(b *testing.B) {
	c := newCodec(Manifest{Range: []float64{0, 1}, Layout: LayoutNCHW, Channels: ChannelsRGB})
	frame := testimage.AquariumFrame(b, 5, 0, 0)
	xs, ys := TileOrigins(1920, 640, DefaultTileOverlap), TileOrigins(1080, 360, DefaultTileOverlap)
	in := make([]float32, 3*640*360)
	out := make([]float32, 3*1280*720)
	for i := range out {
		out[i] = float32(i%255) / 255
	}
	sum := make([]float32, 3*3840*2160)
	for b.Loop() {
		mo := newMosaic(3840, 2160, 1280, 720, 2, DefaultTileOverlap, xs, ys, sum)
		for j, y := range ys {
			for i, x := range xs {
				c.load(in, frame, x, y, 640, 360)
				mo.add(c, out, i, j)
			}
		}
	}
}
