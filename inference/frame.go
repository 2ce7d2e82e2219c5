package inference

import (
	"context"
	"fmt"
	"image"

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
func (m *frameModel) Apply(ctx context.Context, in *image.NRGBA) (*image.NRGBA, error) {
	w, h := in.Rect.Dx(), in.Rect.Dy()
	if w == 0 || h == 0 {
		return nil, img2vid.Errorf(img2vid.EINVALID, "model %s: the frame is empty (%dx%d)", m.spec.Name, w, h)
	}
	sc := m.spec.Scale
	t := m.plan(w, h)
	wx := make([][]float32, len(t.xs))
	for i := range t.xs {
		wx[i] = featherWeights(t.xs, i, t.tw, sc)
	}
	wy := make([][]float32, len(t.ys))
	for i := range t.ys {
		wy[i] = featherWeights(t.ys, i, t.th, sc)
	}
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
	inItem, outItem := 3*t.tw*t.th, 3*t.tw*t.th*sc*sc
	inBuf := make([]float32, batch*inItem)
	outBuf := make([]float32, batch*outItem)
	acc := newBlend(w*sc, h*sc)
	defer acc.release()
	for start := 0; start < len(tiles); start += batch {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		group := tiles[start:min(start+batch, len(tiles))]
		n := len(group)
		for k, tl := range group {
			m.codec.load(inBuf[k*inItem:(k+1)*inItem], in, t.xs[tl.i], t.ys[tl.j], t.tw, t.th)
		}
		if err := m.runTiles(inBuf[:n*inItem], outBuf[:n*outItem], n, t.tw, t.th); err != nil {
			return nil, img2vid.Errorf(img2vid.EINTERNAL, "model %s on a %dx%d frame: %w", m.spec.Name, w, h, err)
		}
		for k, tl := range group {
			acc.add(m.codec, outBuf[k*outItem:(k+1)*outItem], t.tw*sc, t.th*sc, t.xs[tl.i]*sc, t.ys[tl.j]*sc, wx[tl.i], wy[tl.j])
		}
	}
	return acc.image(m.codec), nil
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
