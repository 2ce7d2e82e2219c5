// Package models holds the interpolation models img2vid ships: ONNX graphs
// the project makes itself with gen_models.py (model weights cannot be
// downloaded at run time), each with a JSON manifest beside it that the
// inference registry validates when it loads the model.
package models

import "embed"

// Builtin holds the default models shipped inside the binary: each model's
// .onnx file and its manifest (.json), at the root of the file system.
//
//go:embed *.onnx *.json
var Builtin embed.FS
