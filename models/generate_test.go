package models_test

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/img2vid/img2vid/internal/testenv"
)

// python is the interpreter gen_models.py is written for: Debian's, with
// python3-torch, python3-onnx and python3-numpy (scripts/setup.sh test
// installs them).
const python = "/usr/bin/python3"

// TestGeneratorReproduces runs gen_models.py into a temporary folder and
// compares what it writes with the committed files: every model and
// manifest (the built-in models, flow3's from the committed
// flow3.weights, and the test models) must be byte-identical; the
// reference outputs, which are torch's arithmetic and whose last bits can
// depend on the CPU's vector kernels, must agree to 1e-5.
func TestGeneratorReproduces(t *testing.T) {
	if err := exec.Command(python, "-c", "import torch, onnx, numpy").Run(); err != nil {
		testenv.Missing(t, "%s cannot import torch, onnx and numpy (scripts/setup.sh test installs python3-torch, python3-onnx, python3-numpy): %v", python, err)
	}
	out := t.TempDir()
	cmd := exec.Command(python, "gen_models.py", "--out", out)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("gen_models.py: %v\n%s", err, stderr.String())
	}
	n := 0
	err := filepath.WalkDir(out, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(out, path)
		if err != nil {
			return err
		}
		n++
		got, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		want, err := os.ReadFile(rel)
		if err != nil {
			t.Errorf("gen_models.py writes %s, which is not committed: %v", rel, err)
			return nil
		}
		if strings.HasSuffix(rel, ".f32") {
			if d := floatDiff(got, want); d > 1e-5 {
				t.Errorf("%s: regenerated values differ from the committed ones by up to %g", rel, d)
			}
			return nil
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: regenerated file (%d bytes) differs from the committed one (%d bytes); run make models and commit", rel, len(got), len(want))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range append(append([]string(nil), builtinNames...), "testdata/reference.json") {
		if !strings.Contains(name, "/") {
			name += ".onnx"
		}
		if _, err := os.Stat(filepath.Join(out, name)); err != nil {
			t.Errorf("gen_models.py did not write %s", name)
		}
	}
	t.Logf("%d files regenerated", n)
}

// floatDiff is the largest difference between two little-endian float32
// arrays, +Inf if their lengths differ.
func floatDiff(a, b []byte) float64 {
	if len(a) != len(b) || len(a)%4 != 0 {
		return math.Inf(1)
	}
	var d float64
	for i := 0; i < len(a); i += 4 {
		x := math.Float32frombits(binary.LittleEndian.Uint32(a[i:]))
		y := math.Float32frombits(binary.LittleEndian.Uint32(b[i:]))
		d = math.Max(d, math.Abs(float64(x)-float64(y)))
	}
	return d
}
