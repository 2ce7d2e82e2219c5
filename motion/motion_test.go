package motion

import (
	"image"
	"image/color"
	"math"
	"testing"
)

// A path zooms from the whole frame to a window zoom times smaller around
// the focus (kept inside the frame), or back; sampled at any number of
// frames, its windows move evenly: no second difference, where windows
// rounded to whole pixels jitter by about half a pixel a frame squared.
func TestPathIsSmoothAndEndsAtTheFocus(t *testing.T) {
	from, to := Path(1920, 1080, 1.25, 1400, 300, image.Rectangle{}, false)
	if from != (Window{0, 0, 1920, 1080}) {
		t.Errorf("zoom in starts at %+v, want the whole frame", from)
	}
	if to.W != 1536 || to.H != 864 {
		t.Errorf("zoom in ends at %+v, want a 1536x864 window", to)
	}
	if cx, cy := to.X+to.W/2, to.Y+to.H/2; cx != 1152 || cy != 432 { // the focus, as near as the frame allows
		t.Errorf("zoom in ends centred at %v,%v, want 1152,432 (the focus 1400,300 clamped into the frame)", cx, cy)
	}
	var smooth, rounded []Window
	for i := range 90 {
		w := Lerp(from, to, float64(i)/89)
		smooth = append(smooth, w)
		rounded = append(rounded, Window{math.Round(w.X), math.Round(w.Y), math.Round(w.W), math.Round(w.H)})
	}
	if j := Jitter(smooth); j > 0.05 {
		t.Errorf("jitter %v px/frame², want below 0.05", j)
	}
	if j := Jitter(rounded); j < 0.45 {
		t.Errorf("whole-pixel windows jitter %v px/frame²; the measure should see their shake", j)
	}
	if a, b := Path(1920, 1080, 1.25, 960, 540, image.Rectangle{}, true); b != (Window{0, 0, 1920, 1080}) || a.W != 1536 {
		t.Errorf("zoom out from %+v to %+v, want from the close window to the whole frame", a, b)
	}
	// A subject larger than the close window widens it to keep it whole.
	_, to = Path(1000, 500, 2, 500, 250, image.Rect(100, 100, 900, 300), false)
	if to.W < 880 || to.X > 100 || to.X+to.W < 900 {
		t.Errorf("window %+v does not hold the subject 100..900", to)
	}
}

// Render of the whole frame gives the frame back; of a window, the
// window's pixels scaled to fill the output, at sub-pixel positions.
func TestRender(t *testing.T) {
	src := image.NewNRGBA(image.Rect(0, 0, 64, 32))
	for y := range 32 {
		for x := range 64 {
			src.SetNRGBA(x, y, color.NRGBA{uint8(4 * x), uint8(8 * y), 100, 255})
		}
	}
	dst := image.NewNRGBA(src.Rect)
	Render(dst, src, Window{0, 0, 64, 32})
	for i := range dst.Pix {
		if dst.Pix[i] != src.Pix[i] {
			t.Fatalf("the whole window differs at byte %d: %d, want %d", i, dst.Pix[i], src.Pix[i])
		}
	}
	// The right half, doubled: output column x shows source column 32 + x/2.
	Render(dst, src, Window{32, 0, 32, 32})
	for _, x := range []int{1, 20, 41} {
		want := 4 * (32 + (float64(x)+0.5)/2 - 0.5)
		if got := float64(dst.NRGBAAt(x, 10).R); math.Abs(got-want) > 1 {
			t.Errorf("column %d: red %v, want %v", x, got, want)
		}
	}
	// A window moved by a quarter pixel moves the picture by a quarter pixel.
	Render(dst, src, Window{10.25, 0, 32, 32})
	if got := float64(dst.NRGBAAt(0, 0).R); math.Abs(got-4*(10.25+0.25-0.5+0.5*0)) > 1.5 {
		t.Errorf("a quarter-pixel move: red %v at column 0", got)
	}
}
