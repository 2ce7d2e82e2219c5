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
	// Interpolate returns one frame for each time in ts (each strictly
	// between 0 and 1) on the way from a to b. a and b have the same size,
	// and so has every frame returned.
	Interpolate(ctx context.Context, a, b *image.NRGBA, ts []float32) ([]*image.NRGBA, error)
}

// Models resolves model names to ready-to-run models. An unknown name is an
// ENOTFOUND error; a model that exists but cannot be loaded is EUNAVAILABLE.
type Models interface {
	FrameModel(name string) (FrameModel, error)
	Interpolator(name string) (Interpolator, error)
}

// Model kinds, as written in a model's manifest.
const (
	KindFrame       = "frame"       // one frame in, one frame out (maybe scaled)
	KindInterpolate = "interpolate" // two frames and a time t in, the frame at t out
)

// ModelInfo describes one model the registry knows of, loadable or not.
type ModelInfo struct {
	Name        string `json:"name"`
	Kind        string `json:"kind"`
	Description string `json:"description,omitempty"`
	Builtin     bool   `json:"builtin"`
	Scale       int    `json:"scale,omitempty"` // output size / input size, frame models only
	Available   bool   `json:"available"`
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
