package transition

import (
	"image"
	"image/color"
	"testing"

	"github.com/img2vid/img2vid"
)

// solid is a w x h frame of one colour.
func solid(w, h int, c color.NRGBA) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < len(img.Pix); i += 4 {
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = c.R, c.G, c.B, c.A
	}
	return img
}

// Each kind's frame is what it should be at known points of the way: a
// crossfade the weighted mix, a fade through black black at the middle,
// a wipe and a slide split at the column p gives.
func TestDraw(t *testing.T) {
	a, b := solid(100, 4, color.NRGBA{200, 100, 0, 255}), solid(100, 4, color.NRGBA{0, 50, 250, 255})
	dst := image.NewNRGBA(a.Rect)
	for _, tt := range []struct {
		kind string
		p    float64
		x    int
		want color.NRGBA
	}{
		{img2vid.TransitionCrossfade, 0, 50, color.NRGBA{200, 100, 0, 255}},
		{img2vid.TransitionCrossfade, 0.25, 50, color.NRGBA{150, 88, 63, 255}},
		{img2vid.TransitionCrossfade, 0.5, 10, color.NRGBA{100, 75, 125, 255}},
		{img2vid.TransitionCrossfade, 1, 50, color.NRGBA{0, 50, 250, 255}},
		{img2vid.TransitionFadeBlack, 0.25, 50, color.NRGBA{100, 50, 0, 255}},
		{img2vid.TransitionFadeBlack, 0.5, 50, color.NRGBA{0, 0, 0, 255}},
		{img2vid.TransitionFadeBlack, 0.75, 50, color.NRGBA{0, 25, 125, 255}},
		{img2vid.TransitionWipe, 0.3, 29, color.NRGBA{0, 50, 250, 255}},
		{img2vid.TransitionWipe, 0.3, 30, color.NRGBA{200, 100, 0, 255}},
		{img2vid.TransitionSlide, 0.3, 69, color.NRGBA{200, 100, 0, 255}},
		{img2vid.TransitionSlide, 0.3, 70, color.NRGBA{0, 50, 250, 255}},
	} {
		if err := Draw(dst, a, b, tt.kind, tt.p); err != nil {
			t.Fatal(err)
		}
		for y := range 4 {
			if got := dst.NRGBAAt(tt.x, y); got != tt.want {
				t.Errorf("%s at %v, pixel (%d,%d): %v, want %v", tt.kind, tt.p, tt.x, y, got, tt.want)
			}
		}
	}
	// A slide moves the first image's content left: its column 40 shows at 10.
	striped := image.NewNRGBA(a.Rect)
	for x := range 100 {
		for y := range 4 {
			striped.SetNRGBA(x, y, color.NRGBA{uint8(x), 0, 0, 255})
		}
	}
	if err := Draw(dst, striped, b, img2vid.TransitionSlide, 0.3); err != nil {
		t.Fatal(err)
	}
	if got := dst.NRGBAAt(10, 0).R; got != 40 {
		t.Errorf("slide at 0.3: column 10 shows the first image's column %d, want 40", got)
	}
	if err := Draw(dst, a, solid(10, 4, color.NRGBA{}), img2vid.TransitionCrossfade, 0.5); err == nil {
		t.Error("frames of different sizes were drawn")
	}
	if err := Draw(dst, a, b, "spin", 0.5); err == nil {
		t.Error("an unknown kind was drawn")
	}
}
