package testimage

import (
	"image"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/img2vid/img2vid/internal/repo"
)

// SR2xInput is the fixed input size (width, height) of the tests' frame
// model, models/testdata/frame/sr2x.onnx; it outputs twice each side.
var SR2xInput = image.Pt(96, 64)

// The model's per-channel gain and offset (models/gen_models.py, Sharp2x).
var (
	sr2xGain = [3]float64{1.0, 0.9, 0.8}
	sr2xBias = [3]float64{0.0, 0.05, 0.1}
)

// FrameModelDir returns a new models folder holding the tests' frame model,
// sr2x.onnx and its manifest (name "sr2x", kind frame, only the required
// fields and the checksum), copied from models/testdata/frame.
func FrameModelDir(t testing.TB) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(repo.Root(wd), "models", "testdata", "frame")
	dir := t.TempDir()
	for _, name := range []string{"sr2x.onnx", "sr2x.json"} {
		data, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		Write(t, filepath.Join(dir, name), data)
	}
	return dir
}

// SR2x computes what the tests' frame model makes of img run whole, in
// float64, independently of ONNX Runtime: bilinear 2x (half-pixel centres,
// edges clamped), a 3x3 sharpening kernel with zero padding, then a gain
// and offset per channel, clamped to 0..1 and rounded to 8 bits.
func SR2x(img *image.NRGBA) *image.NRGBA {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	W, H := 2*w, 2*h
	up := make([]float64, 3*W*H)
	src := func(d, n int) (int, int, float64) {
		s := max(0, (float64(d)+0.5)/2-0.5)
		i := int(s)
		return i, min(i+1, n-1), s - float64(i)
	}
	at := func(x, y, c int) float64 {
		return float64(img.Pix[img.PixOffset(img.Rect.Min.X+x, img.Rect.Min.Y+y)+c]) / 255
	}
	for Y := range H {
		y0, y1, fy := src(Y, h)
		for X := range W {
			x0, x1, fx := src(X, w)
			for c := range 3 {
				top := at(x0, y0, c)*(1-fx) + at(x1, y0, c)*fx
				bottom := at(x0, y1, c)*(1-fx) + at(x1, y1, c)*fx
				up[(c*H+Y)*W+X] = top*(1-fy) + bottom*fy
			}
		}
	}
	get := func(c, x, y int) float64 {
		if x < 0 || y < 0 || x >= W || y >= H {
			return 0 // zero padding
		}
		return up[(c*H+y)*W+x]
	}
	out := image.NewNRGBA(image.Rect(0, 0, W, H))
	for Y := range H {
		for X := range W {
			o := out.PixOffset(X, Y)
			for c := range 3 {
				v := 1.8*get(c, X, Y) - 0.2*(get(c, X-1, Y)+get(c, X+1, Y)+get(c, X, Y-1)+get(c, X, Y+1))
				v = math.Max(0, math.Min(1, v*sr2xGain[c]+sr2xBias[c]))
				out.Pix[o+c] = uint8(math.Round(v * 255))
			}
			out.Pix[o+3] = 255
		}
	}
	return out
}
