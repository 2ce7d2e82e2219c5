package inference

import (
	"crypto/sha256"
	"encoding/hex"
	"image"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/img2vid/img2vid/internal/testenv"
	"github.com/img2vid/img2vid/internal/testimage"
)

// needShared returns the path of a file in the extended test data
// (testimage.SharedDir), failing the test when that folder lacks it.
func needShared(t testing.TB, rel string) string {
	t.Helper()
	p := filepath.Join(testimage.SharedDir(t), rel)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("extended test data: %v", err)
	}
	return p
}

// openRuntime opens the real ONNX Runtime on the CPU, skipping the test
// when the library is not installed. ONNXRUNTIME_LIB is read here, as the
// command line does, never inside the package.
func openRuntime(t testing.TB, modelsDir string) *Runtime {
	t.Helper()
	if _, err := FindLibrary(DefaultLibrarySearch(os.Getenv("ONNXRUNTIME_LIB"))); err != nil {
		testenv.Missing(t, "ONNX Runtime is not installed (run scripts/setup.sh run): %v", err)
	}
	r, err := Open(Config{
		Library:   os.Getenv("ONNXRUNTIME_LIB"),
		Device:    DeviceCPU,
		ModelsDir: modelsDir,
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return r
}

const quickSRNet = "models/quicksrnetsmall-2x-360p.onnx"

// quickSRNetDir makes a models folder holding QuickSRNet (linked, not
// copied) and a manifest that names only the required fields and the
// checksum, so the rest must be read from the model.
func quickSRNetDir(t testing.TB) string {
	t.Helper()
	src := needShared(t, quickSRNet)
	dir := t.TempDir()
	if err := os.Symlink(src, filepath.Join(dir, "sr-2x.onnx")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "sr-2x.json"), `{"name": "sr-2x", "kind": "frame", "file": "sr-2x.onnx",
 "description": "QuickSRNet-Small 2x", "sha256": "`+fileSHA256(t, src)+`"}`)
	return dir
}

func writeFile(t testing.TB, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func fileSHA256(t testing.TB, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// downscale2 halves an image by averaging each 2x2 block (area filter).
func downscale2(src *image.NRGBA) *image.NRGBA {
	w, h := src.Rect.Dx()/2, src.Rect.Dy()/2
	dst := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			for c := range 3 {
				s := 0
				for _, o := range []int{src.PixOffset(2*x, 2*y), src.PixOffset(2*x+1, 2*y), src.PixOffset(2*x, 2*y+1), src.PixOffset(2*x+1, 2*y+1)} {
					s += int(src.Pix[o+c])
				}
				dst.Pix[dst.PixOffset(x, y)+c] = uint8((s + 2) / 4)
			}
			dst.Pix[dst.PixOffset(x, y)+3] = 255
		}
	}
	return dst
}

// psnr is the peak signal-to-noise ratio of b against a over RGB, in dB.
func psnr(t testing.TB, a, b *image.NRGBA) float64 {
	t.Helper()
	if a.Rect.Size() != b.Rect.Size() {
		t.Fatalf("psnr: sizes differ, %v and %v", a.Rect.Size(), b.Rect.Size())
	}
	var se float64
	n := 0
	for y := range a.Rect.Dy() {
		for x := range a.Rect.Dx() {
			i, j := a.PixOffset(x, y), b.PixOffset(x, y)
			for c := range 3 {
				d := float64(a.Pix[i+c]) - float64(b.Pix[j+c])
				se += d * d
				n++
			}
		}
	}
	return 10 * math.Log10(255*255/(se/float64(n)))
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
