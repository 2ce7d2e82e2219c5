package inference

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/img2vid/img2vid"
)

// Manifest is the JSON file that describes a model: NAME.json beside
// NAME.onnx. Only Name, Kind and File are required; the rest has defaults
// or is read from the model itself.
type Manifest struct {
	Name        string `json:"name"`
	Kind        string `json:"kind"` // img2vid.KindFrame, img2vid.KindInterpolate or img2vid.KindDetect
	File        string `json:"file"` // the .onnx file, a plain name in the manifest's folder
	Description string `json:"description,omitempty"`
	// Inputs and Outputs name the tensors; default: the model's, in graph
	// order. An interpolate model's inputs are frame0, frame1 and t.
	Inputs  []string `json:"inputs,omitempty"`
	Outputs []string `json:"outputs,omitempty"`
	// Layout is "NCHW" (default) or "NHWC".
	Layout string `json:"layout,omitempty"`
	// Channels is the colour order, "RGB" (default) or "BGR".
	Channels string `json:"channels,omitempty"`
	// Range is the value of black and of full intensity; default [0, 1].
	Range []float64 `json:"range,omitempty"`
	// Scale is output size / input size; default read from the model, or 1
	// when the model's size is free.
	Scale int `json:"scale,omitempty"`
	// Multiple is what a free-size model needs its height and width to be a
	// multiple of; frames are padded up to it. Default 1.
	Multiple int `json:"multiple,omitempty"`
	// TileOverlap is the least overlap in input pixels between the tiles
	// of a fixed-size model; a band this wide at the middle of each
	// overlap is feathered so no seam shows. Default 16.
	TileOverlap *int `json:"tile_overlap,omitempty"`
	// SHA256 is the hex sha256 of File; checked when set.
	SHA256 string `json:"sha256,omitempty"`
	// Motion, for an interpolate model in two graphs, is the graph that
	// estimates a pair's motion once; File's graph then makes each new
	// frame from frame0, frame1, t and the motion. Without it, File's
	// graph does both, once per new frame.
	Motion *MotionGraph `json:"motion,omitempty"`

	// The fields below are for detect models only.

	// Decoder names the layout of a detect model's output: DecoderYOLOX,
	// DecoderYOLOv5 or DecoderYOLOv8. Required.
	Decoder string `json:"decoder,omitempty"`
	// Letterbox is where the frame, scaled to fit the model's input with
	// its aspect ratio kept, sits in it: LetterboxCenter (default) or
	// LetterboxTopLeft.
	Letterbox string `json:"letterbox,omitempty"`
	// Pad is the 8-bit value, in every channel, of the input around the
	// frame; default 114.
	Pad *int `json:"pad,omitempty"`
	// Labels are the class names by class index; LabelsFile names a text
	// file beside the manifest with one per line instead. One of the two
	// is required, and there must be exactly as many as the model has
	// classes.
	Labels     []string `json:"labels,omitempty"`
	LabelsFile string   `json:"labels_file,omitempty"`
	// ScoreThreshold is the least score a detection needs (default 0.25);
	// IoUThreshold the overlap above which non-maximum suppression drops
	// the lower-scored of two boxes (default 0.45). Both in [0,1], and a
	// job may set its own.
	ScoreThreshold *float64 `json:"score_threshold,omitempty"`
	IoUThreshold   *float64 `json:"iou_threshold,omitempty"`
	// Classes keeps only detections of these labels; default all. A job
	// may set its own.
	Classes []string `json:"classes,omitempty"`
	// NMS is NMSPerClass (default: boxes of different classes never
	// suppress each other) or NMSAgnostic (one pass over all boxes, as
	// YOLOX's demos do).
	NMS string `json:"nms,omitempty"`
}

// MotionGraph is an interpolate model's motion graph: frame0 and frame1
// in (the names of the manifest's first two inputs), Outputs out, which
// the model's main graph takes as inputs after frame0, frame1 and t.
type MotionGraph struct {
	File    string   `json:"file"`    // the .onnx file, a plain name in the manifest's folder
	Outputs []string `json:"outputs"` // the motion tensors, in the main graph's input order
	SHA256  string   `json:"sha256,omitempty"`
}

// Detect-model manifest values.
const (
	DecoderYOLOX          = "yolox"  // [N, rows, 5+C] raw grid rows of strides 8, 16, 32; objectness
	DecoderYOLOv5         = "yolov5" // [N, rows, 5+C] decoded cx, cy, w, h; objectness (YOLOv5, v7)
	DecoderYOLOv8         = "yolov8" // [N, 4+C, rows] decoded cx, cy, w, h; no objectness (YOLOv8 and later)
	LetterboxCenter       = "center"
	LetterboxTopLeft      = "top-left"
	NMSPerClass           = "class"
	NMSAgnostic           = "agnostic"
	DefaultPad            = 114
	DefaultScoreThreshold = 0.25
	DefaultIoUThreshold   = 0.45
)

// Manifest defaults.
const (
	LayoutNCHW         = "NCHW"
	LayoutNHWC         = "NHWC"
	ChannelsRGB        = "RGB"
	ChannelsBGR        = "BGR"
	DefaultTileOverlap = 16
	maxMultiple        = 1024
	maxScale           = 16
)

// ManifestError says what is wrong with one field of a model's manifest, or
// with how the manifest matches the model.
type ManifestError struct {
	Source string // the manifest file, when known
	Field  string // the JSON field at fault, such as "inputs[0]" or "sha256"
	Reason string
}

// Error returns "SOURCE: FIELD: REASON".
func (e *ManifestError) Error() string {
	var b strings.Builder
	if e.Source != "" {
		b.WriteString(e.Source + ": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Reason)
	return b.String()
}

func fieldErr(field, format string, args ...any) error {
	return &ManifestError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// manifestFields are the JSON names of Manifest's fields.
var manifestFields = []string{"name", "kind", "file", "description", "inputs", "outputs", "layout", "channels", "range", "scale", "multiple", "tile_overlap", "sha256", "motion",
	"decoder", "letterbox", "pad", "labels", "labels_file", "score_threshold", "iou_threshold", "classes", "nms"}

var (
	namePattern   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	sha256Pattern = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// ParseManifest reads a manifest strictly: unknown fields, wrong types,
// trailing data and out-of-range values are errors naming the field. The
// result has its defaults filled in.
func ParseManifest(data []byte) (Manifest, error) {
	// encoding/json matches field names regardless of case; a manifest
	// is checked for exact names first, so "Scale" is not taken for "scale".
	var fields map[string]json.RawMessage
	if json.Unmarshal(data, &fields) == nil {
		for k := range fields {
			if !slices.Contains(manifestFields, k) {
				return Manifest{}, fieldErr(strconv.Quote(k), "unknown field (known: %s)", strings.Join(manifestFields, ", "))
			}
		}
	}
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return Manifest{}, jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Manifest{}, fieldErr("json", "bad JSON: something follows the manifest object")
	}
	if err := m.fill(); err != nil {
		return Manifest{}, err
	}
	return m, nil
}

// jsonError turns encoding/json's errors into ones that name the field.
func jsonError(err error) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return fieldErr("json", "bad JSON: the file is empty")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fieldErr("json", "bad JSON: the file ends inside the object")
	case errors.As(err, &syntax):
		return fieldErr("json", "bad JSON at byte %d: %v", syntax.Offset, syntax)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return fieldErr("json", "bad JSON: the manifest must be an object, got %s", typ.Value)
		}
		return fieldErr(typ.Field, "want %s, got a JSON %s", jsonTypeName(typ.Type.Kind().String()), typ.Value)
	}
	return fieldErr("json", "bad JSON: %v", err)
}

func jsonTypeName(kind string) string {
	switch kind {
	case "int", "float64":
		return "a number"
	case "slice":
		return "an array"
	case "string":
		return "a string"
	}
	return kind
}

// fill checks each field on its own and sets the defaults.
func (m *Manifest) fill() error {
	switch {
	case m.Name == "":
		return fieldErr("name", "missing (the model's name, as --frame-model or interp_model give it)")
	case !namePattern.MatchString(m.Name):
		return fieldErr("name", "%q must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", m.Name)
	case m.Kind == "":
		return fieldErr("kind", "missing (want %q, %q or %q)", img2vid.KindFrame, img2vid.KindInterpolate, img2vid.KindDetect)
	case m.Kind != img2vid.KindFrame && m.Kind != img2vid.KindInterpolate && m.Kind != img2vid.KindDetect:
		return fieldErr("kind", "want %q, %q or %q, got %q", img2vid.KindFrame, img2vid.KindInterpolate, img2vid.KindDetect, m.Kind)
	case m.File == "":
		return fieldErr("file", "missing (the .onnx file beside the manifest)")
	case !plainName(m.File):
		return fieldErr("file", "%q must be a plain file name in the manifest's folder", m.File)
	}
	if len(m.Inputs) == 0 {
		m.Inputs = nil // [] and a missing list mean the same: the model's own
	}
	if len(m.Outputs) == 0 {
		m.Outputs = nil
	}
	wantIn := 1
	if m.Kind == img2vid.KindInterpolate {
		wantIn = 3
	}
	if len(m.Inputs) != 0 && len(m.Inputs) != wantIn {
		return fieldErr("inputs", "kind %s takes %d inputs, the manifest names %d", m.Kind, wantIn, len(m.Inputs))
	}
	if len(m.Outputs) > 1 {
		return fieldErr("outputs", "kind %s takes 1 output, the manifest names %d", m.Kind, len(m.Outputs))
	}
	for field, names := range map[string][]string{"inputs": m.Inputs, "outputs": m.Outputs} {
		for i, n := range names {
			if n == "" {
				return fieldErr(fmt.Sprintf("%s[%d]", field, i), "empty tensor name")
			}
		}
	}
	switch m.Layout {
	case "":
		m.Layout = LayoutNCHW
	case LayoutNCHW, LayoutNHWC:
	default:
		return fieldErr("layout", "want %q or %q, got %q", LayoutNCHW, LayoutNHWC, m.Layout)
	}
	switch m.Channels {
	case "":
		m.Channels = ChannelsRGB
	case ChannelsRGB, ChannelsBGR:
	default:
		return fieldErr("channels", "want %q or %q, got %q", ChannelsRGB, ChannelsBGR, m.Channels)
	}
	if m.Range == nil {
		m.Range = []float64{0, 1}
	}
	if len(m.Range) != 2 {
		return fieldErr("range", "want [black, white], two numbers, got %d", len(m.Range))
	}
	if lo, hi := m.Range[0], m.Range[1]; !(hi > lo) || math.IsInf(lo, 0) || math.IsInf(hi, 0) {
		return fieldErr("range", "want two finite numbers with black below white, got [%v, %v]", lo, hi)
	}
	if m.Scale < 0 || m.Scale > maxScale {
		return fieldErr("scale", "want 1 to %d, got %d", maxScale, m.Scale)
	}
	if m.Kind == img2vid.KindInterpolate && m.Scale > 1 {
		return fieldErr("scale", "an interpolate model keeps the frame size, got %d", m.Scale)
	}
	if m.Kind == img2vid.KindDetect {
		if err := m.fillDetect(); err != nil {
			return err
		}
	} else if f := m.detectField(); f != "" {
		return fieldErr(f, "only a detect model takes it (this one is of kind %s)", m.Kind)
	}
	if m.Multiple == 0 {
		m.Multiple = 1
	}
	if m.Multiple < 1 || m.Multiple > maxMultiple {
		return fieldErr("multiple", "want 1 to %d, got %d", maxMultiple, m.Multiple)
	}
	if m.TileOverlap == nil {
		o := DefaultTileOverlap
		m.TileOverlap = &o
	}
	if *m.TileOverlap < 0 {
		return fieldErr("tile_overlap", "want 0 or more pixels, got %d", *m.TileOverlap)
	}
	m.SHA256 = strings.ToLower(m.SHA256)
	if m.SHA256 != "" && !sha256Pattern.MatchString(m.SHA256) {
		return fieldErr("sha256", "want 64 hex digits, got %q", m.SHA256)
	}
	return m.fillMotion()
}

// plainName reports whether a file name the manifest gives is a plain
// name in the manifest's folder: no path, no surrounding spaces, not "." or "..".
func plainName(name string) bool {
	return name == strings.TrimSpace(name) && !strings.ContainsAny(name, `/\`) && name != "." && name != ".."
}

// fillMotion checks the motion graph of a two-graph interpolate model.
func (m *Manifest) fillMotion() error {
	g := m.Motion
	switch {
	case g == nil:
		return nil
	case m.Kind != img2vid.KindInterpolate:
		return fieldErr("motion", "only an interpolate model takes it (this one is of kind %s)", m.Kind)
	case len(m.Inputs) == 0:
		return fieldErr("inputs", "a model with a motion graph names its inputs: frame0, frame1 and t, as both graphs call them")
	case g.File == "" || !plainName(g.File):
		return fieldErr("motion.file", "%q must be a plain file name in the manifest's folder", g.File)
	case g.File == m.File:
		return fieldErr("motion.file", "%q is the main graph's file too; the motion graph is a file of its own", g.File)
	case len(g.Outputs) == 0:
		return fieldErr("motion.outputs", "missing (the motion tensors the main graph takes after frame0, frame1 and t)")
	}
	for i, n := range g.Outputs {
		if n == "" || slices.Contains(m.Inputs, n) || slices.Contains(g.Outputs[:i], n) {
			return fieldErr(fmt.Sprintf("motion.outputs[%d]", i), "%q must be a name of its own, not empty and not one of the inputs", n)
		}
	}
	g.SHA256 = strings.ToLower(g.SHA256)
	if g.SHA256 != "" && !sha256Pattern.MatchString(g.SHA256) {
		return fieldErr("motion.sha256", "want 64 hex digits, got %q", g.SHA256)
	}
	return nil
}

// detectField returns the JSON name of a detect-only field that is set,
// or "".
func (m *Manifest) detectField() string {
	switch {
	case m.Decoder != "":
		return "decoder"
	case m.Letterbox != "":
		return "letterbox"
	case m.Pad != nil:
		return "pad"
	case m.Labels != nil:
		return "labels"
	case m.LabelsFile != "":
		return "labels_file"
	case m.ScoreThreshold != nil:
		return "score_threshold"
	case m.IoUThreshold != nil:
		return "iou_threshold"
	case m.Classes != nil:
		return "classes"
	case m.NMS != "":
		return "nms"
	}
	return ""
}

// fillDetect checks a detect model's own fields and sets their defaults.
func (m *Manifest) fillDetect() error {
	switch {
	case m.Scale != 0:
		return fieldErr("scale", "a detect model does not make frames, so it has no scale")
	case m.Multiple != 0:
		return fieldErr("multiple", "a detect model takes a fixed input size, so it has no multiple")
	case m.TileOverlap != nil:
		return fieldErr("tile_overlap", "a detect model sees the whole frame, not tiles")
	}
	switch m.Decoder {
	case DecoderYOLOX, DecoderYOLOv5, DecoderYOLOv8:
	case "":
		return fieldErr("decoder", "missing (the output layout: %q, %q or %q)", DecoderYOLOX, DecoderYOLOv5, DecoderYOLOv8)
	default:
		return fieldErr("decoder", "want %q, %q or %q, got %q", DecoderYOLOX, DecoderYOLOv5, DecoderYOLOv8, m.Decoder)
	}
	switch m.Letterbox {
	case "":
		m.Letterbox = LetterboxCenter
	case LetterboxCenter, LetterboxTopLeft:
	default:
		return fieldErr("letterbox", "want %q or %q, got %q", LetterboxCenter, LetterboxTopLeft, m.Letterbox)
	}
	if m.Pad == nil {
		p := DefaultPad
		m.Pad = &p
	}
	if *m.Pad < 0 || *m.Pad > 255 {
		return fieldErr("pad", "want an 8-bit value, 0 to 255, got %d", *m.Pad)
	}
	switch {
	case m.Labels != nil && m.LabelsFile != "":
		return fieldErr("labels_file", "give the labels either in the manifest (labels) or in a file (labels_file), not both")
	case m.Labels == nil && m.LabelsFile == "":
		return fieldErr("labels", "missing (the class names by index, or labels_file naming a file beside the manifest)")
	case m.LabelsFile != "" && !plainName(m.LabelsFile):
		return fieldErr("labels_file", "%q must be a plain file name in the manifest's folder", m.LabelsFile)
	}
	if m.Labels != nil {
		if err := checkLabels("labels", m.Labels); err != nil {
			return err
		}
	}
	for field, v := range map[string]**float64{"score_threshold": &m.ScoreThreshold, "iou_threshold": &m.IoUThreshold} {
		if *v == nil {
			d := DefaultScoreThreshold
			if field == "iou_threshold" {
				d = DefaultIoUThreshold
			}
			*v = &d
		}
		if t := **v; !(t >= 0 && t <= 1) {
			return fieldErr(field, "want a number from 0 to 1, got %v", t)
		}
	}
	switch m.NMS {
	case "":
		m.NMS = NMSPerClass
	case NMSPerClass, NMSAgnostic:
	default:
		return fieldErr("nms", "want %q or %q, got %q", NMSPerClass, NMSAgnostic, m.NMS)
	}
	return nil
}

// checkLabels checks class names: none empty, none repeated.
func checkLabels(field string, labels []string) error {
	seen := make(map[string]int, len(labels))
	for i, l := range labels {
		if strings.TrimSpace(l) == "" {
			return fieldErr(fmt.Sprintf("%s[%d]", field, i), "empty class name")
		}
		if j, ok := seen[l]; ok {
			return fieldErr(fmt.Sprintf("%s[%d]", field, i), "%q repeats %s[%d]; class names must differ", l, field, j)
		}
		seen[l] = i
	}
	return nil
}

// parseLabels reads a labels file: one class name per line, surrounding
// spaces and a final newline ignored.
func parseLabels(data []byte) []string {
	text := strings.TrimRight(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n")
	if text == "" {
		return []string{}
	}
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSpace(l)
	}
	return lines
}
