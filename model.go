package img2vid

import (
	"context"
	"image"
)

// FrameModel turns one frame into another, for example a super-resolution
// model. Implementations are safe for concurrent use.
type FrameModel interface {
	// Name is the model's registry name.
	Name() string
	// OutputSize reports the size of the frame Apply returns for a w x h input.
	OutputSize(w, h int) (int, int)
	// Apply runs the model on one frame.
	Apply(ctx context.Context, in *image.NRGBA) (*image.NRGBA, error)
}

// Interpolator makes the frames between two neighbouring frames.
// Implementations are safe for concurrent use.
type Interpolator interface {
	// Name is the model's registry name.
	Name() string
	// Interpolate makes one frame for each time in ts (each strictly
	// between 0 and 1) on the way from a to b, in order, and hands each to
	// emit as soon as it is made, so that a pair's frames need not all be
	// held at once; the pair's motion is estimated once for all of them.
	// a and b have the same size, and so has every frame. An error from
	// emit stops it and is returned.
	Interpolate(ctx context.Context, a, b *image.NRGBA, ts []float32, emit func(i int, frame *image.NRGBA) error) error
}

// InterpolateAll returns m's frames at every time in ts between a and b.
func InterpolateAll(ctx context.Context, m Interpolator, a, b *image.NRGBA, ts []float32) ([]*image.NRGBA, error) {
	out := make([]*image.NRGBA, 0, len(ts))
	err := m.Interpolate(ctx, a, b, ts, func(_ int, f *image.NRGBA) error {
		out = append(out, f)
		return nil
	})
	return out, err
}

// Detector finds objects in frames. Implementations are safe for
// concurrent use.
type Detector interface {
	// Name is the model's registry name.
	Name() string
	// Labels are the model's class names, by class index.
	Labels() []string
	// Detect returns what the model finds in one frame that passes p,
	// after non-maximum suppression, best first, with boxes in the frame's
	// pixels and inside it.
	Detect(ctx context.Context, frame *image.NRGBA, p DetectParams) ([]Detection, error)
}

// DetectParams are a job's settings for a detector. A zero threshold and
// an empty class list mean the model's manifest's own.
type DetectParams struct {
	Score   float64  // least score kept, in [0,1]
	IoU     float64  // overlap above which the lower-scored of two boxes is dropped, in [0,1]
	Classes []string // keep only these class names; empty keeps all
}

// Detection is one object found in a frame.
type Detection struct {
	Class   string     `json:"class"`
	ClassID int        `json:"class_id"`
	Score   float64    `json:"score"`
	Box     [4]float64 `json:"box"` // x1, y1, x2, y2 in frame pixels, edges (a whole frame is 0, 0, width, height)
}

// Models resolves model names to ready-to-run models. An unknown name is an
// ENOTFOUND error; a model that exists but cannot be loaded is EUNAVAILABLE.
type Models interface {
	// ListModels lists every model with what a plan needs of it (kind,
	// scale, labels, the sha256 of its file), loadable or not.
	ListModels() []ModelInfo
	FrameModel(name string) (FrameModel, error)
	Interpolator(name string) (Interpolator, error)
	Detector(name string) (Detector, error)
}

// Model kinds, as written in a model's manifest.
const (
	KindFrame       = "frame"       // one frame in, one frame out (maybe scaled)
	KindInterpolate = "interpolate" // two frames and a time t in, the frame at t out
	KindDetect      = "detect"      // one frame in, boxes with classes and scores out
)

// ModelInfo describes one model the registry knows of, loadable or not.
type ModelInfo struct {
	Name        string `json:"name"`
	Kind        string `json:"kind"`
	Description string `json:"description,omitempty"`
	Builtin     bool   `json:"builtin"`
	Scale       int    `json:"scale,omitempty"` // output size / input size, frame models only
	// SHA256 is the hex sha256 of the model's file, as loaded (of a
	// two-graph interpolator, the sha256 of its two files' sums joined,
	// "MAIN+MOTION"): a plan records it, so that a job runs only with the
	// model it was planned with.
	SHA256 string `json:"sha256,omitempty"`
	// Nodes counts the nodes of the model's graphs (both of a two-graph
	// interpolator), subgraphs included: what a session's start-up and
	// every run on a GPU pay for before any arithmetic.
	Nodes int `json:"nodes,omitempty"`
	// NotOnCUDA lists the model's operators that ONNX Runtime's CUDA
	// provider has no kernel for; on a GPU they run on the CPU.
	NotOnCUDA []string `json:"not_on_cuda,omitempty"`
	// Labels are a detect model's class names, by class index.
	Labels    []string `json:"labels,omitempty"`
	Available bool     `json:"available"`
	// Reason says why an unavailable model cannot be used.
	Reason string `json:"reason,omitempty"`
}

// RuntimeInfo describes the inference runtime in use.
type RuntimeInfo struct {
	Library  string `json:"library"`  // path of the ONNX Runtime shared library
	Version  string `json:"version"`  // its version
	Provider string `json:"provider"` // execution provider really in use: "cpu" or "cuda"
	// Note says why the provider differs from the one asked for, if it does.
	Note string `json:"note,omitempty"`
}
