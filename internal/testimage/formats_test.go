package testimage

import (
	"bytes"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"testing"
)

func TestCMYKJPEGIsCMYKQuadrants(t *testing.T) {
	img, err := jpeg.Decode(bytes.NewReader(CMYKJPEG()))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := img.(*image.CMYK); !ok || img.Bounds() != image.Rect(0, 0, 64, 32) {
		t.Fatalf("decoded a %T of %v, want a 64x32 *image.CMYK", img, img.Bounds())
	}
	for _, p := range []struct{ x, y int }{{8, 4}, {56, 4}, {8, 28}, {56, 28}} {
		got := color.NRGBAModel.Convert(img.At(p.x, p.y)).(color.NRGBA)
		want := QuadrantColor(p.x < 32, p.y < 16)
		if d := max(absDiff(got.R, want.R), absDiff(got.G, want.G), absDiff(got.B, want.B)); d > 24 {
			t.Errorf("(%d,%d) = %v, want %v", p.x, p.y, got, want)
		}
	}
}

func absDiff(a, b uint8) int { return max(int(a)-int(b), int(b)-int(a)) }

func TestBadCRCBreaksOnlyThePixels(t *testing.T) {
	bad := BadCRC(t, PNG(t, Solid(8, 8, color.NRGBA{1, 2, 3, 255})))
	if _, err := png.DecodeConfig(bytes.NewReader(bad)); err != nil {
		t.Errorf("header of the broken PNG: %v, want it readable", err)
	}
	if _, err := png.Decode(bytes.NewReader(bad)); err == nil {
		t.Error("the broken PNG decoded")
	}
}

func TestFormatsHaveTheirColourModels(t *testing.T) {
	red := color.NRGBA{255, 0, 0, 255}
	for name, data := range map[string][]byte{
		"gray":     PNG(t, Gray(4, 4, 90)),
		"16-bit":   PNG(t, Deep(4, 4, red)),
		"paletted": PNG(t, Paletted(4, 4, red)),
	} {
		cfg, err := png.DecodeConfig(bytes.NewReader(data))
		want := map[string]color.Model{"gray": color.GrayModel, "16-bit": color.RGBA64Model, "paletted": nil}[name]
		if err != nil {
			t.Errorf("%s: %v", name, err)
		} else if _, pal := cfg.ColorModel.(color.Palette); name == "paletted" && !pal || want != nil && cfg.ColorModel != want {
			t.Errorf("%s: colour model %T", name, cfg.ColorModel)
		}
	}
	g, err := gif.DecodeAll(bytes.NewReader(AnimatedGIF(t, 4, 4, red, color.NRGBA{0, 0, 255, 255})))
	if err != nil || len(g.Image) != 2 {
		t.Fatalf("animated GIF: %v, %d frames", err, len(g.Image))
	}
}
