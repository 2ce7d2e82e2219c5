package inference

import (
	"context"
	"fmt"
	"image"
	"sync"

	"github.com/img2vid/img2vid"
	ort "github.com/yalue/onnxruntime_go"
)

// maxBatch bounds the tiles sent in one run to a model whose batch
// dimension is free: enough to keep the cores busy, little enough that a
// 4K frame's tiles do not all sit in memory at once.
const maxBatch = 4

// frameModel runs a frame model on whole frames: tile by tile with
// feathered overlaps for a model of fixed input size, or on the frame
// padded to the model's multiple for a free-size one.
type frameModel struct {
	spec  *spec
	sess  *session
	codec *codec
}

var _ img2vid.FrameModel = (*frameModel)(nil)

func newFrameModel(s *spec, se *session) loadedModel {
	return &frameModel{spec: s, sess: se, codec: newCodec(s.Manifest)}
}

func (m *frameModel) kind() string { return img2vid.KindFrame }
func (m *frameModel) close() error { return m.sess.close() }

// Name is the model's registry name.
func (m *frameModel) Name() string { return m.spec.Name }

// OutputSize is the input size times the model's scale.
func (m *frameModel) OutputSize(w, h int) (int, int) { return w * m.spec.Scale, h * m.spec.Scale }

// tiling is how one frame is cut for the model.
type tiling struct {
	tw, th int   // tile size in input pixels (the model's input)
	xs, ys []int // tile origins along each axis
}

// plan cuts a w x h frame into tiles.
func (m *frameModel) plan(w, h int) tiling {
	s := m.spec
	if s.tileW == 0 {
		// Free size: the whole frame, padded to the model's multiple.
		return tiling{tw: roundUp(w, s.Multiple), th: roundUp(h, s.Multiple), xs: []int{0}, ys: []int{0}}
	}
	o := *s.TileOverlap
	return tiling{tw: s.tileW, th: s.tileH, xs: TileOrigins(w, s.tileW, o), ys: TileOrigins(h, s.tileH, o)}
}

// shape returns the tensor shape of n tiles of w x h.
func (m *frameModel) shape(n, w, h int) ort.Shape {
	if m.spec.Layout == LayoutNHWC {
		return ort.NewShape(int64(n), int64(h), int64(w), 3)
	}
	return ort.NewShape(int64(n), 3, int64(h), int64(w))
}

// Apply runs the model on one frame and returns a frame scale times larger.
//
// The tiles go through the model in groups (one tile, or a batch), in
// raster order as the mosaic needs them. While the model runs on one group
// (ONNX Runtime's threads do the work and this goroutine is free), the
// next group's tiles are turned into tensors and the previous group's
// outputs folded into the frame: the frame path's own work hides behind
// the model's, each stage on its own one of two buffers.
func (m *frameModel) Apply(ctx context.Context, in *image.NRGBA) (*image.NRGBA, error) {
	w, h := in.Rect.Dx(), in.Rect.Dy()
	if w == 0 || h == 0 {
		return nil, img2vid.Errorf(img2vid.EINVALID, "model %s: the frame is empty (%dx%d)", m.spec.Name, w, h)
	}
	sc := m.spec.Scale
	t := m.plan(w, h)
	type tile struct{ i, j int }
	var tiles []tile
	for j := range t.ys {
		for i := range t.xs {
			tiles = append(tiles, tile{i, j})
		}
	}
	batch := 1
	if m.spec.batched {
		batch = min(maxBatch, len(tiles))
	}
	var groups [][]tile
	for start := 0; start < len(tiles); start += batch {
		groups = append(groups, tiles[start:min(start+batch, len(tiles))])
	}
	inItem, outItem := 3*t.tw*t.th, 3*t.tw*t.th*sc*sc
	buf := getScratch(batch*inItem, batch*outItem, 3*w*sc*h*sc)
	defer scratchPool.Put(buf)
	ins, outs := buf.in, buf.out
	mo := newMosaic(w*sc, h*sc, t.tw*sc, t.th*sc, sc, *m.spec.TileOverlap, t.xs, t.ys, buf.sum)
	load := func(g int) {
		for k, tl := range groups[g] {
			m.codec.load(ins[g%2][k*inItem:(k+1)*inItem], in, t.xs[tl.i], t.ys[tl.j], t.tw, t.th)
		}
	}
	blend := func(g int) {
		for k, tl := range groups[g] {
			mo.add(m.codec, outs[g%2][k*outItem:(k+1)*outItem], tl.i, tl.j)
		}
	}
	load(0)
	for g, group := range groups {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		n := len(group)
		ran := make(chan error, 1)
		go func() { ran <- m.runTiles(ins[g%2][:n*inItem], outs[g%2][:n*outItem], n, t.tw, t.th) }()
		if g+1 < len(groups) {
			load(g + 1)
		}
		if g > 0 {
			blend(g - 1)
		}
		if err := <-ran; err != nil {
			return nil, img2vid.Errorf(img2vid.EINTERNAL, "model %s on a %dx%d frame: %w", m.spec.Name, w, h, err)
		}
	}
	blend(len(groups) - 1)
	return mo.img, nil
}

// scratch is the float buffers one Apply works in: two for tile inputs and
// two for tile outputs (see Apply), and the mosaic's sums. A 1080p frame
// through a 2x model needs 125 MB of them. Fresh ones on every frame would
// be paid in page faults, dear on virtual machines (measured: 15-20 k faults
// and 0.15-0.25 s of system time per frame), and in collections, so they go
// back to a pool for the next frame.
type scratch struct {
	in, out [2][]float32
	sum     []float32
}

var scratchPool sync.Pool

// getScratch returns buffers of at least these lengths, with whatever
// values they held.
func getScratch(in, out, sum int) *scratch {
	s, _ := scratchPool.Get().(*scratch)
	if s == nil {
		s = &scratch{}
	}
	grow := func(b []float32, n int) []float32 {
		if cap(b) < n {
			return make([]float32, n)
		}
		return b[:n]
	}
	for k := range 2 {
		s.in[k], s.out[k] = grow(s.in[k], in), grow(s.out[k], out)
	}
	s.sum = grow(s.sum, sum)
	return s
}

// runTiles runs the model on n tiles of tw x th held in in, writing the
// results into out.
func (m *frameModel) runTiles(in, out []float32, n, tw, th int) error {
	x, err := ort.NewTensor(m.shape(n, tw, th), in)
	if err != nil {
		return fmt.Errorf("creating the input tensor: %w", err)
	}
	defer x.Destroy()
	sc := m.spec.Scale
	return m.sess.run([]ort.Value{x}, m.shape(n, tw*sc, th*sc), out)
}
