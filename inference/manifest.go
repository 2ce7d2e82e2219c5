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
	Kind        string `json:"kind"` // img2vid.KindFrame or img2vid.KindInterpolate
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
}

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
var manifestFields = []string{"name", "kind", "file", "description", "inputs", "outputs", "layout", "channels", "range", "scale", "multiple", "tile_overlap", "sha256"}

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
		return fieldErr("kind", "missing (want %q or %q)", img2vid.KindFrame, img2vid.KindInterpolate)
	case m.Kind != img2vid.KindFrame && m.Kind != img2vid.KindInterpolate:
		return fieldErr("kind", "want %q or %q, got %q", img2vid.KindFrame, img2vid.KindInterpolate, m.Kind)
	case m.File == "":
		return fieldErr("file", "missing (the .onnx file beside the manifest)")
	case m.File != strings.TrimSpace(m.File) || strings.ContainsAny(m.File, `/\`) || m.File == "." || m.File == "..":
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
	return nil
}
