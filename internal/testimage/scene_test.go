package testimage

import (
	"bytes"
	"image/jpeg"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// The motion is exact: a whole-pixel shift moves every pixel by that much,
// a quarter turn of a square frame maps pixel centres onto pixel centres,
// and half a frame's motion is halfway.
func TestSceneMovesAsItSays(t *testing.T) {
	const w, h = 64, 64
	a := Scene(w, h, Motion{DX: 3, DY: -2}, 0)
	b := Scene(w, h, Motion{DX: 3, DY: -2}, 1)
	for y := 2; y < h; y++ {
		for x := 0; x < w-3; x++ {
			if a.NRGBAAt(x, y) != b.NRGBAAt(x+3, y-2) {
				t.Fatalf("shift: frame 1 at (%d,%d) = %v, want frame 0 at (%d,%d) = %v", x+3, y-2, b.NRGBAAt(x+3, y-2), x, y, a.NRGBAAt(x, y))
			}
		}
	}
	turned := Scene(w, h, Motion{Rotate: math.Pi / 2}, 1)
	for y := range h {
		for x := range w {
			// Clockwise on screen (y down): (x, y) goes to (w-1-y, x).
			if got, want := turned.NRGBAAt(w-1-y, x), a.NRGBAAt(x, y); !near(got.R, want.R) || !near(got.G, want.G) {
				t.Fatalf("turn: (%d,%d) = %v, want %v", w-1-y, x, got, want)
			}
		}
	}
	half := Scene(w, h, Motion{DX: 4}, 0.5)
	if half.NRGBAAt(20, 9) != a.NRGBAAt(18, 9) {
		t.Errorf("half a frame of a 4 px shift is not 2 px")
	}
	// Twice as big about the centre: the centre stays, the rest spreads out.
	zoomed := Scene(w, h, Motion{Zoom: 2}, 1)
	if d := zoomed.NRGBAAt(w/2, h/2); !near(d.R, a.NRGBAAt(w/2, h/2).R) {
		t.Errorf("zoom moved the centre")
	}
	if bytes.Equal(zoomed.Pix, a.Pix) {
		t.Errorf("zoom changed nothing")
	}
}

func near(a, b uint8) bool { return max(a, b)-min(a, b) <= 1 }

// The occluder covers the background where its path says, and nowhere
// once it has crossed.
func TestSceneOccluderCrosses(t *testing.T) {
	const w, h = 120, 60
	m := Motion{Occluder: true, Frames: 10}
	radius := float64(h) / 5
	// At frame 5 the disc's centre is at the middle of the frame, a third down.
	mid := Scene(w, h, m, 5)
	cx := int(-radius + (w+2*radius)*0.5)
	if c := mid.NRGBAAt(cx, h/3); c.R != 235 || c.G != 200 || c.B != 40 {
		t.Errorf("frame 5 at the disc's centre (%d,%d) = %v, want the disc's colour", cx, h/3, c)
	}
	if !bytes.Equal(Scene(w, h, m, 11).Pix, Scene(w, h, Motion{}, 0).Pix) {
		t.Errorf("frame 11: the disc has crossed but the background is still covered")
	}
}

// Scenes are photo-like: every channel spans a broad range, and neighbours
// are close but not equal.
func TestPhotoHasDetailAtEveryScale(t *testing.T) {
	img := Photo(200, 150)
	for ch := range 3 {
		lo, hi := 255, 0
		for i := ch; i < len(img.Pix); i += 4 {
			lo, hi = min(lo, int(img.Pix[i])), max(hi, int(img.Pix[i]))
		}
		if hi-lo < 100 {
			t.Errorf("channel %d spans %d-%d, want a broad range", ch, lo, hi)
		}
	}
	same := 0
	for x := 0; x+1 < 200; x++ {
		if img.NRGBAAt(x, 75) == img.NRGBAAt(x+1, 75) {
			same++
		}
	}
	if same > 20 {
		t.Errorf("%d of 199 neighbours on a row are equal: no fine texture", same)
	}
}

func TestClipWritesNumberedJPEGs(t *testing.T) {
	dir := Clip(t, 3, 48, 32, Pan)
	for k := range 3 {
		data, err := os.ReadFile(filepath.Join(dir, "frame_00"+string(rune('0'+k))+".jpg"))
		if err != nil {
			t.Fatal(err)
		}
		img, err := jpeg.Decode(bytes.NewReader(data))
		if err != nil || img.Bounds().Dx() != 48 || img.Bounds().Dy() != 32 {
			t.Errorf("frame %d: %v, %v", k, err, img.Bounds())
		}
	}
}
