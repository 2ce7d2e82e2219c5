package testimage

import (
	"image"
	"image/color"
	"os"
	"path/filepath"
	"testing"

	"github.com/img2vid/img2vid/internal/repo"
)

// Square is one solid square of a test frame for the detectors under
// models/testdata/detect, which find red, green and blue squares.
type Square struct {
	Class string // "red", "green" or "blue"
	Value uint8  // the intensity of its channel; the detectors' score is Value/255
	Box   image.Rectangle
}

// Squares returns a w x h frame of mid grey (which none of the detectors
// takes for a class) holding the squares.
func Squares(w, h int, squares ...Square) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < len(img.Pix); i += 4 {
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = 128, 128, 128, 255
	}
	for _, s := range squares {
		c := color.NRGBA{A: 255}
		switch s.Class {
		case "red":
			c.R = s.Value
		case "green":
			c.G = s.Value
		case "blue":
			c.B = s.Value
		}
		for y := s.Box.Min.Y; y < s.Box.Max.Y; y++ {
			for x := s.Box.Min.X; x < s.Box.Max.X; x++ {
				img.SetNRGBA(x, y, c)
			}
		}
	}
	return img
}

// DetectModels returns models/testdata/detect in the checkout: the test
// detectors models/gen_models.py makes, one per decoder layout.
func DetectModels(t testing.TB) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root := repo.Root(wd)
	if root == "" {
		t.Fatalf("no go.mod above %s", wd)
	}
	return filepath.Join(root, "models", "testdata", "detect")
}
