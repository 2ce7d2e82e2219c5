package inference

import (
	"fmt"
	"slices"
	"strings"

	"github.com/img2vid/img2vid"
	ort "github.com/yalue/onnxruntime_go"
)

// spec is a manifest checked against its model, with everything the
// manifest left out read from the model.
type spec struct {
	Manifest
	inputs  []string // tensor names; for interpolate: frame0, frame1, t (and the motion, with a motion graph)
	output  string
	motion  []string  // the motion graph's inputs, frame0 and frame1; nil without one
	graph   GraphInfo // the nodes of the model's graphs, all of them
	tileW   int       // fixed input width; 0 when free
	tileH   int       // fixed input height; 0 when free
	batched bool      // the batch dimension is free, so tiles can share a run
	classes int       // a detect model's class count
	rows    int       // a detect model's output rows (boxes offered); 0 when free
}

// layout returns the axis of channels, height and width in a 4-D tensor.
func (s *spec) layout() (c, h, w int) {
	if s.Layout == LayoutNHWC {
		return 3, 1, 2
	}
	return 1, 2, 3
}

// checkModel matches the manifest m against the model's real inputs and
// outputs and returns the resolved spec, or a *ManifestError naming the
// field that does not match.
func checkModel(m Manifest, ins, outs []ort.InputOutputInfo) (*spec, error) {
	s := &spec{Manifest: m}
	names := func(infos []ort.InputOutputInfo) string {
		var n []string
		for _, i := range infos {
			n = append(n, fmt.Sprintf("%q %v", i.Name, i.Dimensions))
		}
		return strings.Join(n, ", ")
	}
	find := func(field string, infos []ort.InputOutputInfo, want []string, count int) ([]ort.InputOutputInfo, error) {
		if len(infos) != count {
			return nil, fieldErr(field, "kind %s takes %d %s, the model has %d (%s)", m.Kind, count, field, len(infos), names(infos))
		}
		if len(want) == 0 {
			return infos, nil
		}
		var got []ort.InputOutputInfo
		for i, w := range want {
			j := slices.IndexFunc(infos, func(x ort.InputOutputInfo) bool { return x.Name == w })
			if j < 0 {
				return nil, fieldErr(fmt.Sprintf("%s[%d]", field, i), "the model has no %s named %q (it has %s)", strings.TrimSuffix(field, "s"), w, names(infos))
			}
			got = append(got, infos[j])
		}
		return got, nil
	}
	nIn, wantIn := 1, m.Inputs
	if m.Kind == img2vid.KindInterpolate {
		nIn = 3
	}
	if m.Motion != nil {
		nIn += len(m.Motion.Outputs)
		wantIn = slices.Concat(m.Inputs, m.Motion.Outputs)
		s.motion = m.Inputs[:2]
	}
	in, err := find("inputs", ins, wantIn, nIn)
	if err != nil {
		return nil, err
	}
	out, err := find("outputs", outs, m.Outputs, 1)
	if err != nil {
		return nil, err
	}
	for i, x := range in {
		s.inputs = append(s.inputs, x.Name)
		field := fmt.Sprintf("inputs[%d]", i)
		if i > 2 { // the motion: the motion graph's outputs, checked with it
			continue
		}
		if i == 2 { // t
			if err := checkTensor(field, x, 1); err != nil {
				return nil, err
			}
			if d := x.Dimensions[0]; d != 1 && d >= 0 {
				return nil, fieldErr(field, "%q has shape %v, the time t must have shape [1]", x.Name, x.Dimensions)
			}
			continue
		}
		if err := s.checkFrame(field, x); err != nil {
			return nil, err
		}
	}
	s.output = out[0].Name
	if err := s.checkFrame("outputs[0]", out[0]); err != nil {
		return nil, err
	}
	if m.Kind == img2vid.KindInterpolate {
		if !slices.Equal(in[0].Dimensions, in[1].Dimensions) {
			return nil, fieldErr("inputs[1]", "frame1 %q has shape %v, frame0 %q has %v; they must match", in[1].Name, in[1].Dimensions, in[0].Name, in[0].Dimensions)
		}
	}
	return s, s.resolveSize(in[0], out[0])
}

func checkTensor(field string, x ort.InputOutputInfo, rank int) error {
	if x.OrtValueType != ort.ONNXTypeTensor {
		return fieldErr(field, "%q is a %v, want a tensor", x.Name, x.OrtValueType)
	}
	if x.DataType != ort.TensorElementDataTypeFloat {
		return fieldErr(field, "%q holds %v, want float32", x.Name, x.DataType)
	}
	if len(x.Dimensions) != rank {
		return fieldErr(field, "%q has rank %d %v, want rank %d", x.Name, len(x.Dimensions), x.Dimensions, rank)
	}
	return nil
}

// checkFrame checks a 4-D image tensor: batch 1 or free, 3 channels.
func (s *spec) checkFrame(field string, x ort.InputOutputInfo) error {
	if err := checkTensor(field, x, 4); err != nil {
		return fmt.Errorf("%w (%s: batch, channels, height, width)", err, s.Layout)
	}
	c, _, _ := s.layout()
	if d := x.Dimensions[c]; d != 3 && d >= 0 {
		return fieldErr(field, "%q has %d channels on axis %d of %v, want 3 (layout %s)", x.Name, d, c, x.Dimensions, s.Layout)
	}
	if d := x.Dimensions[0]; d != 1 && d >= 0 {
		return fieldErr(field, "%q has batch size %d, want 1 or a free batch dimension", x.Name, d)
	}
	return nil
}

// resolveSize reads the fixed input size and the scale.
func (s *spec) resolveSize(in, out ort.InputOutputInfo) error {
	_, ha, wa := s.layout()
	ih, iw := in.Dimensions[ha], in.Dimensions[wa]
	oh, ow := out.Dimensions[ha], out.Dimensions[wa]
	s.batched = in.Dimensions[0] < 0 && out.Dimensions[0] < 0
	if (ih < 0) != (iw < 0) {
		return fieldErr("inputs[0]", "%q fixes one side and frees the other %v; both or neither must be fixed", in.Name, in.Dimensions)
	}
	if ih < 0 {
		if s.Scale == 0 {
			s.Scale = 1
		}
		return nil
	}
	s.tileW, s.tileH = int(iw), int(ih)
	if oh < 0 || ow < 0 || ow%iw != 0 || oh%ih != 0 || ow/iw != oh/ih {
		return fieldErr("outputs[0]", "%q is %dx%d for a %dx%d input; want the same whole multiple of both sides", out.Name, ow, oh, iw, ih)
	}
	scale := int(ow / iw)
	if s.Scale != 0 && s.Scale != scale {
		return fieldErr("scale", "the manifest says %d, the model scales by %d (%dx%d -> %dx%d)", s.Scale, scale, iw, ih, ow, oh)
	}
	s.Scale = scale
	if s.Kind == img2vid.KindInterpolate && scale != 1 {
		return fieldErr("outputs[0]", "an interpolate model keeps the frame size, %q scales it by %d", out.Name, scale)
	}
	if o := *s.TileOverlap; 2*o >= s.tileW || 2*o >= s.tileH {
		return fieldErr("tile_overlap", "%d is too large for %dx%d tiles (at most %d)", o, s.tileW, s.tileH, (min(s.tileW, s.tileH)-1)/2)
	}
	return nil
}

// checkMotion matches a motion graph's inputs and outputs with the
// manifest: frame0 and frame1 in, shaped as the main graph's, and the
// manifest's motion outputs out, each a float32 tensor of the same rank
// as the main graph's input of that name.
func (s *spec) checkMotion(main, ins, outs []ort.InputOutputInfo) error {
	g := s.Motion
	if len(ins) != 2 {
		return fieldErr("motion.file", "%s takes %d inputs, a motion graph takes 2 (frame0, frame1)", g.File, len(ins))
	}
	for i, name := range s.motion {
		j := slices.IndexFunc(ins, func(x ort.InputOutputInfo) bool { return x.Name == name })
		if j < 0 {
			return fieldErr("motion.file", "%s has no input named %q", g.File, name)
		}
		if err := s.checkFrame(fmt.Sprintf("motion inputs[%d]", i), ins[j]); err != nil {
			return err
		}
	}
	if len(outs) != len(g.Outputs) {
		return fieldErr("motion.outputs", "%s has %d outputs, the manifest names %d", g.File, len(outs), len(g.Outputs))
	}
	for i, name := range g.Outputs {
		field := fmt.Sprintf("motion.outputs[%d]", i)
		j := slices.IndexFunc(outs, func(x ort.InputOutputInfo) bool { return x.Name == name })
		if j < 0 {
			return fieldErr(field, "%s has no output named %q", g.File, name)
		}
		k := slices.IndexFunc(main, func(x ort.InputOutputInfo) bool { return x.Name == name })
		if err := checkTensor(field, outs[j], len(main[k].Dimensions)); err != nil {
			return err
		}
	}
	return nil
}
