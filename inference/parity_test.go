package inference

import (
	"context"
	"encoding/binary"
	"fmt"
	"image"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/img2vid/img2vid/internal/testenv"
	"github.com/img2vid/img2vid/internal/testimage"
)

// nodeReference returns the node command and the script that runs a model
// through onnxruntime-node, skipping when either is absent.
func nodeReference(t testing.TB) (node, script string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		testenv.Missing(t, "node is not installed; the parity check needs it with onnxruntime-node (npm ci in inference/testdata/node)")
	}
	script, err = filepath.Abs(filepath.Join("testdata", "node", "run.js"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join("testdata", "node", "node_modules", "onnxruntime-node")); err != nil {
		testenv.Missing(t, "onnxruntime-node is not installed; run: npm ci --ignore-scripts --prefix inference/testdata/node")
	}
	return node, script
}

func writeFloats(t testing.TB, path string, v []float32) {
	t.Helper()
	b := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFloats(t testing.TB, path string) []float32 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v
}

// TestParityWithNodeBinding: the Go pipeline's output tensor for a frame
// equals that of onnxruntime-node, an independent binding, within 1e-4,
// and the frame Apply returns is that tensor in 8 bits: for the tests' own
// frame model on a generated photo, and, in the extended set, for
// QuickSRNet on a real camera frame.
func TestParityWithNodeBinding(t *testing.T) {
	t.Run("generated", func(t *testing.T) {
		dir := testimage.FrameModelDir(t)
		in := testimage.SR2xInput
		checkParity(t, dir, "sr2x", testimage.Photo(in.X, in.Y), in.X, in.Y)
	})
	t.Run("quicksrnet", func(t *testing.T) {
		dir := quickSRNetDir(t)
		img := testimage.AquariumFrame(t, 30, 0, 0).SubImage(image.Rect(500, 300, 1140, 660)).(*image.NRGBA)
		checkParity(t, dir, "sr-2x", img, 640, 360)
	})
}

// checkParity runs img, exactly the fixed w x h input of the 2x frame model
// name in dir, through the Go path and through onnxruntime-node.
func checkParity(t *testing.T, dir, name string, img *image.NRGBA, w, h int) {
	node, script := nodeReference(t)
	r := openRuntime(t, dir)
	fm, err := r.FrameModel(name)
	if err != nil {
		t.Fatal(err)
	}
	m := fm.(*frameModel)
	file, err := filepath.EvalSymlinks(filepath.Join(dir, m.spec.File))
	if err != nil {
		t.Fatal(err)
	}
	W, H := 2*w, 2*h
	in := make([]float32, 3*w*h)
	m.codec.load(in, img, 0, 0, w, h)
	out := make([]float32, 3*W*H)
	if err := m.runTiles(in, out, 1, w, h); err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	writeFloats(t, filepath.Join(tmp, "in.f32"), in)
	cmd := exec.Command(node, script, file, m.spec.inputs[0], m.spec.output, fmt.Sprintf("1,3,%d,%d", h, w),
		filepath.Join(tmp, "in.f32"), filepath.Join(tmp, "out.f32"))
	if res, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %v\n%s", cmd, err, res)
	}
	ref := readFloats(t, filepath.Join(tmp, "out.f32"))
	if len(ref) != len(out) {
		t.Fatalf("onnxruntime-node returned %d values, Go %d", len(ref), len(out))
	}
	worst := 0.0
	for i := range out {
		worst = max(worst, math.Abs(float64(out[i]-ref[i])))
	}
	t.Logf("largest difference from onnxruntime-node over %d values: %g", len(out), worst)
	if worst > 1e-4 {
		t.Errorf("the Go output tensor differs from onnxruntime-node's by up to %g, above 1e-4", worst)
	}

	frame, err := fm.Apply(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	for y := range H {
		for x := range W {
			p := frame.Pix[frame.PixOffset(x, y):]
			for c := range 3 {
				want := math.Round(min(max(float64(ref[c*W*H+y*W+x]), 0), 1) * 255)
				if d := math.Abs(float64(p[c]) - want); d > 1 {
					t.Fatalf("pixel (%d,%d) channel %d: Apply gives %d, onnxruntime-node's tensor %v", x, y, c, p[c], want)
				}
			}
		}
	}
}
