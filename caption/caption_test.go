package caption

import (
	"image"
	"testing"
)

// grey is a w x h frame of one grey level.
func grey(w, h int, v uint8) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < len(img.Pix); i += 4 {
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = v, v, v, 255
	}
	return img
}

// changed is the bounding box of the pixels that differ between a and b.
func changed(a, b *image.NRGBA) image.Rectangle {
	var r image.Rectangle
	for y := range a.Rect.Dy() {
		for x := range a.Rect.Dx() {
			if a.NRGBAAt(x, y) != b.NRGBAAt(x, y) {
				r = r.Union(image.Rect(x, y, x+1, y+1))
			}
		}
	}
	return r
}

// A caption is drawn centred in the bottom of the safe area, inside its
// side margins; it has white text and a dark outline, so it reads on a
// white frame and a black one alike; a non-Latin (Cyrillic, Greek) text
// is drawn with its own letters; a long one wraps to two lines, cut
// with an ellipsis.
func TestCaptionInTheSafeArea(t *testing.T) {
	for _, text := range []string{"Aquarium, 2026", "Привет, мир", "Καλημέρα"} {
		if !has(text) {
			t.Errorf("the caption font lacks letters of %q", text)
		}
		for _, bg := range []uint8{0, 255} {
			frame := grey(1280, 720, bg)
			o, err := Render(1280, 720, text)
			if err != nil {
				t.Fatal(err)
			}
			o.Draw(frame)
			r := changed(grey(1280, 720, bg), frame)
			if r.Empty() {
				t.Fatalf("%q on %d: nothing drawn", text, bg)
			}
			h, w := 720.0, 1280.0
			bottom, side := int(h*bottomMargin), int(w*sideMargin)
			if r.Max.Y > 720-bottom || r.Min.Y < 720/2 {
				t.Errorf("%q drawn at rows %d..%d, want in the bottom half above the %d-row margin", text, r.Min.Y, r.Max.Y, bottom)
			}
			if r.Min.X < side-10 || r.Max.X > 1280-side+10 {
				t.Errorf("%q drawn at columns %d..%d, outside the side margins", text, r.Min.X, r.Max.X)
			}
			if mid := (r.Min.X + r.Max.X) / 2; mid < 630 || mid > 650 {
				t.Errorf("%q centred at column %d, want 640", text, mid)
			}
			// Both light and dark are drawn, whatever the ground.
			var light, dark bool
			for y := r.Min.Y; y < r.Max.Y; y++ {
				for x := r.Min.X; x < r.Max.X; x++ {
					c := frame.NRGBAAt(x, y)
					light = light || c.R > 230
					dark = dark || c.R < 60
				}
			}
			if !light || !dark {
				t.Errorf("%q on %d: light %v, dark %v; want white text with a dark outline", text, bg, light, dark)
			}
		}
	}
	long, err := Render(640, 360, "a caption long enough that it cannot fit on one line of a small frame and not even on two lines of it, so it is cut")
	if err != nil {
		t.Fatal(err)
	}
	f, _ := face(max(10, int(360*sizeOfShort)))
	if lines := long.img.Rect.Dy() / f.Metrics().Height.Ceil(); lines != MaxLines {
		t.Errorf("a long caption takes %d lines, want %d", lines, MaxLines)
	}
	if o, err := Render(640, 360, "   "); o != nil || err != nil {
		t.Errorf("a blank caption: %v, %v; want nothing", o, err)
	}
	var none *Overlay
	none.Draw(grey(4, 4, 0)) // a nil overlay draws nothing, and does not panic
}

// has reports whether the caption font draws every character of text
// (spaces aside): Latin, Greek and Cyrillic it does; a character it lacks
// would be an empty box.
func has(text string) bool {
	f, err := face(12)
	if err != nil {
		return false
	}
	for _, r := range text {
		if r == ' ' {
			continue
		}
		if _, ok := f.GlyphAdvance(r); !ok {
			return false
		}
	}
	return true
}
