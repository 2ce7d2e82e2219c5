package inference

import (
	"fmt"
	"io/fs"
	"slices"

	"github.com/img2vid/img2vid"
	ort "github.com/yalue/onnxruntime_go"
)

// yoloxStrides are the grid strides of YOLOX's output rows, in order.
var yoloxStrides = []int{8, 16, 32}

// readLabels reads a detect manifest's labels file from fsys when it names
// one, and checks its class filter against the labels.
func (m *Manifest) readLabels(fsys fs.FS) error {
	if m.LabelsFile != "" {
		data, err := fs.ReadFile(fsys, m.LabelsFile)
		if err != nil {
			return fieldErr("labels_file", "reading %s beside the manifest: %v", m.LabelsFile, err)
		}
		m.Labels = parseLabels(data)
		if err := checkLabels(m.LabelsFile+": line", m.Labels); err != nil {
			return err
		}
	}
	for i, c := range m.Classes {
		if !slices.Contains(m.Labels, c) {
			return fieldErr(fmt.Sprintf("classes[%d]", i), "%q is not one of the labels", c)
		}
	}
	return nil
}

// checkDetect matches a detect manifest against the model's real input
// and output: one image input of fixed size, one output whose shape fits
// the decoder, as many classes as labels.
func checkDetect(m Manifest, ins, outs []ort.InputOutputInfo) (*spec, error) {
	s := &spec{Manifest: m}
	pick := func(field string, infos []ort.InputOutputInfo, want []string) (ort.InputOutputInfo, error) {
		if len(want) == 0 {
			if len(infos) != 1 {
				var names []string
				for _, x := range infos {
					names = append(names, fmt.Sprintf("%q %v", x.Name, x.Dimensions))
				}
				return ort.InputOutputInfo{}, fieldErr(field, "a detect model takes 1, the model has %d (%v); name the one to use", len(infos), names)
			}
			return infos[0], nil
		}
		j := slices.IndexFunc(infos, func(x ort.InputOutputInfo) bool { return x.Name == want[0] })
		if j < 0 {
			return ort.InputOutputInfo{}, fieldErr(field+"[0]", "the model has no tensor named %q", want[0])
		}
		return infos[j], nil
	}
	in, err := pick("inputs", ins, m.Inputs)
	if err != nil {
		return nil, err
	}
	out, err := pick("outputs", outs, m.Outputs)
	if err != nil {
		return nil, err
	}
	s.inputs, s.output = []string{in.Name}, out.Name
	if err := s.checkFrame("inputs[0]", in); err != nil {
		return nil, err
	}
	_, ha, wa := s.layout()
	h, w := in.Dimensions[ha], in.Dimensions[wa]
	if h <= 0 || w <= 0 {
		return nil, fieldErr("inputs[0]", "%q has shape %v; a detect model needs a fixed height and width (export it with a fixed input size)", in.Name, in.Dimensions)
	}
	s.tileW, s.tileH = int(w), int(h)
	s.batched = in.Dimensions[0] < 0 && out.Dimensions[0] < 0

	if err := checkTensor("outputs[0]", out, 3); err != nil {
		return nil, fmt.Errorf("%w (decoder %s wants [batch, rows, values] or [batch, values, rows])", err, m.Decoder)
	}
	d := out.Dimensions
	if b := d[0]; b != 1 && b >= 0 {
		return nil, fieldErr("outputs[0]", "%q has batch size %d, want 1 or a free batch dimension", out.Name, b)
	}
	rows, vals := d[1], d[2]
	if m.Decoder == DecoderYOLOv8 {
		rows, vals = d[2], d[1]
	}
	lead := int64(5) // cx, cy, w, h, objectness
	if m.Decoder == DecoderYOLOv8 {
		lead = 4
	}
	if vals < 0 {
		return nil, fieldErr("outputs[0]", "%q has shape %v: the number of values per box is free, so the classes cannot be counted; decoder %s needs it fixed", out.Name, d, m.Decoder)
	}
	if vals <= lead {
		return nil, fieldErr("decoder", "%s wants %d box values and at least one class score per row, %q has %d (shape %v)%s", m.Decoder, lead, out.Name, vals, d, layoutHint(m.Decoder, d))
	}
	if m.Decoder == DecoderYOLOX {
		want := int64(0)
		for _, st := range yoloxStrides {
			if s.tileW%st != 0 || s.tileH%st != 0 {
				return nil, fieldErr("decoder", "yolox needs an input size that is a multiple of 32, %q is %dx%d", in.Name, s.tileW, s.tileH)
			}
			want += int64(s.tileW/st) * int64(s.tileH/st)
		}
		if rows >= 0 && rows != want {
			return nil, fieldErr("decoder", "yolox on a %dx%d input gives %d rows (strides 8, 16, 32), %q has %d (shape %v)%s", s.tileW, s.tileH, want, out.Name, rows, d, layoutHint(m.Decoder, d))
		}
	}
	s.classes = int(vals - lead)
	s.rows = int(max(rows, 0))
	if len(m.Labels) != s.classes {
		return nil, fieldErr(labelsField(m), "the model has %d classes (%q is %v for decoder %s), the manifest gives %d labels", s.classes, out.Name, d, m.Decoder, len(m.Labels))
	}
	return s, nil
}

// layoutHint suggests the other layout when the output's shape reads
// better that way: YOLOv8's [1, 84, 8400] taken for YOLOv5's, or back.
func layoutHint(decoder string, d []int64) string {
	if d[1] < 0 || d[2] < 0 {
		return ""
	}
	if decoder == DecoderYOLOv8 && d[1] > d[2] {
		return "; the shape looks like [batch, rows, values]: decoder yolov5 or yolox?"
	}
	if decoder != DecoderYOLOv8 && d[1] < d[2] {
		return "; the shape looks like [batch, values, rows]: decoder yolov8?"
	}
	return ""
}

func labelsField(m Manifest) string {
	if m.LabelsFile != "" {
		return "labels_file"
	}
	return "labels"
}

// detectInfo fills the listing fields of a detect model.
func detectInfo(info *img2vid.ModelInfo, s *spec) {
	info.Labels = s.Labels
}

// lead is the number of values before the class scores in a detect
// model's output row: the box, and objectness where the layout has it.
func (s *spec) lead() int {
	if s.Decoder == DecoderYOLOv8 {
		return 4
	}
	return 5
}
