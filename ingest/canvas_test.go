package ingest

import (
	"image"
	"image/color"
	"testing"

	"github.com/img2vid/img2vid"
)

func TestFitRect(t *testing.T) {
	tests := []struct {
		name           string
		sw, sh, dw, dh int
		fit            string
		want           image.Rectangle
	}{
		{"same size", 640, 480, 640, 480, img2vid.FitContain, image.Rect(0, 0, 640, 480)},
		{"contain wide into 4:3 letterboxes top and bottom", 1920, 1080, 640, 480, img2vid.FitContain, image.Rect(0, 60, 640, 420)},
		{"contain tall pillarboxes", 480, 640, 640, 480, img2vid.FitContain, image.Rect(140, 0, 500, 480)},
		{"contain upscales", 320, 180, 1920, 1080, img2vid.FitContain, image.Rect(0, 0, 1920, 1080)},
		{"cover crops the sides", 1920, 1080, 640, 480, img2vid.FitCover, image.Rect(-106, 0, 747, 480)},
		{"stretch", 100, 10, 640, 480, img2vid.FitStretch, image.Rect(0, 0, 640, 480)},
		{"extreme aspect keeps a pixel", 10000, 1, 100, 100, img2vid.FitContain, image.Rect(0, 49, 100, 50)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FitRect(tt.sw, tt.sh, tt.dw, tt.dh, tt.fit); got != tt.want {
				t.Errorf("FitRect(%d,%d,%d,%d,%s) = %v, want %v", tt.sw, tt.sh, tt.dw, tt.dh, tt.fit, got, tt.want)
			}
		})
	}
}

func TestCanvasPlace(t *testing.T) {
	img := image.NewNRGBA(image.Rect(0, 0, 641, 481))
	for i := 0; i < len(img.Pix); i += 4 {
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = 200, 100, 50, 255
	}
	c := Canvas{Width: 641, Height: 481, Fit: img2vid.FitContain}
	if w, h := c.Size(); w != 642 || h != 482 {
		t.Fatalf("Size() = %dx%d, want 642x482", w, h)
	}
	out := c.Place(img)
	if out.Rect.Dx() != 642 || out.Rect.Dy() != 482 {
		t.Fatalf("placed frame is %v", out.Rect)
	}
	// The odd image is padded, not resampled: its pixels are untouched and
	// the extra column and row are black.
	if got := out.NRGBAAt(640, 480); got != (color.NRGBA{200, 100, 50, 255}) {
		t.Errorf("inside pixel = %v", got)
	}
	if got := out.NRGBAAt(641, 10); got != (color.NRGBA{0, 0, 0, 255}) {
		t.Errorf("padding column = %v, want opaque black", got)
	}
	if got := out.NRGBAAt(10, 481); got != (color.NRGBA{0, 0, 0, 255}) {
		t.Errorf("padding row = %v, want opaque black", got)
	}

	// Half-transparent white composites onto black as mid grey.
	semi := image.NewNRGBA(image.Rect(0, 0, 4, 4))
	for i := 0; i < len(semi.Pix); i += 4 {
		semi.Pix[i], semi.Pix[i+1], semi.Pix[i+2], semi.Pix[i+3] = 255, 255, 255, 128
	}
	got := Canvas{Width: 4, Height: 4, Fit: img2vid.FitContain}.Place(semi).NRGBAAt(1, 1)
	if got != (color.NRGBA{128, 128, 128, 255}) {
		t.Errorf("alpha composite = %v, want {128 128 128 255}", got)
	}
}

// The blur fit puts the whole image in the middle, as contain does, over
// a blurred and dimmed copy of it that fills the rest: no black bars.
func TestCanvasPlaceBlur(t *testing.T) {
	img := image.NewNRGBA(image.Rect(0, 0, 90, 160)) // portrait, on a landscape frame
	for y := range 160 {
		for x := range 90 {
			img.SetNRGBA(x, y, color.NRGBA{uint8(200 - y/2), uint8(x), 180, 255})
		}
	}
	frame := Canvas{Width: 320, Height: 180, Fit: img2vid.FitBlur}.Place(img)
	if b := frame.Bounds(); b.Dx() != 320 || b.Dy() != 180 {
		t.Fatalf("frame %v", b)
	}
	inner := FitRect(90, 160, 320, 180, img2vid.FitContain)
	for y := range 180 {
		for x := range 320 {
			c := frame.NRGBAAt(x, y)
			if c.A != 255 || (int(c.R)+int(c.G)+int(c.B) < 60) {
				t.Fatalf("pixel (%d,%d) is %v: a bar, not the blurred image", x, y, c)
			}
			if image.Pt(x, y).In(inner) {
				continue
			}
			// Behind the image: dimmer than the image is anywhere near.
			if c.B >= 180 {
				t.Fatalf("background pixel (%d,%d) is %v, not dimmed", x, y, c)
			}
		}
	}
	mid := frame.NRGBAAt(inner.Min.X+45, inner.Min.Y+2)
	if want := img.NRGBAAt(45, 2); absDiff(mid.R, want.R) > 12 || absDiff(mid.B, want.B) > 12 {
		t.Errorf("the image itself: %v, want about %v", mid, want)
	}
}

func absDiff(a, b uint8) int {
	if a > b {
		return int(a - b)
	}
	return int(b - a)
}
