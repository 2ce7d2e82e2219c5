package annotate

import (
	"bufio"
	"encoding/json"
	"image"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/img2vid/img2vid"
)

func grey(w, h int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = 128
	}
	return img
}

// TestDrawBoxAndLabel: the box's border is in its class's colour, the
// inside and the outside untouched, and a label tag sits above the box.
func TestDrawBoxAndLabel(t *testing.T) {
	for _, size := range []image.Point{{320, 240}, {1920, 1080}} {
		img := grey(size.X, size.Y)
		box := [4]float64{0.25 * float64(size.X), 0.5 * float64(size.Y), 0.75 * float64(size.X), 0.9 * float64(size.Y)}
		Draw(img, []img2vid.Detection{{Class: "fish", ClassID: 3, Score: 0.87, Box: box}})
		c := Colour(3)
		at := func(x, y float64) color.NRGBA { return img.NRGBAAt(int(x), int(y)) }
		line, k := Scale(size.X, size.Y)
		for _, p := range [][2]float64{{box[0], box[1] + 30}, {box[2] - 1, box[3] - 5}, {(box[0] + box[2]) / 2, box[3] - 1}} {
			if got := at(p[0], p[1]); got != c {
				t.Errorf("%v: border pixel %v is %v, want %v", size, p, got, c)
			}
		}
		if got := at(box[0]+float64(line)+1, box[1]+float64(line)+30); got.R != 128 {
			t.Errorf("%v: inside the box %v, want untouched", size, got)
		}
		if got := at(box[0]-2, box[3]); got.R != 128 {
			t.Errorf("%v: outside the box %v, want untouched", size, got)
		}
		// The tag: 13+2 font pixels high, k times, right above the box,
		// with text (in black or white) on it.
		tagH := 15 * k
		ink := 0
		for y := int(box[1]) - tagH; y < int(box[1]); y++ {
			for x := int(box[0]); x < int(box[0])+8*7*k; x++ {
				switch p := img.NRGBAAt(x, y); {
				case p == c:
				case p == color.NRGBA{0, 0, 0, 255} || p == color.NRGBA{255, 255, 255, 255}:
					ink++
				default:
					t.Fatalf("%v: tag pixel (%d,%d) is %v", size, x, y, p)
				}
			}
		}
		if ink < 20*k*k {
			t.Errorf("%v: %d text pixels on the tag, want a readable label", size, ink)
		}
	}
}

// TestDrawClipped: boxes at and beyond the edges, empty ones, and labels
// that do not fit above draw without a panic and stay inside the frame.
func TestDrawClipped(t *testing.T) {
	img := grey(64, 48)
	Draw(img, []img2vid.Detection{
		{Class: "a", Score: 1, Box: [4]float64{0, 0, 64, 48}},
		{Class: "a-very-long-class-name", ClassID: 1, Score: 0.5, Box: [4]float64{60, 40, 64, 48}},
		{Class: "b", ClassID: 2, Score: 0.5, Box: [4]float64{10, 10, 10, 10}},
		{Class: "c", ClassID: 25, Score: 0.5, Box: [4]float64{-20, -20, 200, 300}},
	})
	if Colour(25) != Colour(5) || Colour(-1) != Colour(19) {
		t.Error("colours do not cycle through the palette")
	}
}

func TestScaleGrowsWithTheFrame(t *testing.T) {
	l1, k1 := Scale(640, 360)
	l2, k2 := Scale(3840, 2160)
	if l2 <= l1 || k2 <= k1 || l1 < 2 || k1 < 1 {
		t.Errorf("360p: line %d text %d; 2160p: line %d text %d", l1, k1, l2, k2)
	}
}

// TestBetween: matched objects move linearly; an object in only one of
// the frames, or of another class, is not drawn in between.
func TestBetween(t *testing.T) {
	a := []img2vid.Detection{
		{Class: "fish", ClassID: 0, Score: 0.9, Box: [4]float64{0, 0, 10, 10}},
		{Class: "fish", ClassID: 0, Score: 0.6, Box: [4]float64{100, 100, 120, 120}},
		{Class: "crab", ClassID: 1, Score: 0.8, Box: [4]float64{50, 0, 60, 10}},
	}
	b := []img2vid.Detection{
		{Class: "fish", ClassID: 0, Score: 0.7, Box: [4]float64{104, 100, 124, 120}}, // the second fish, moved 4 right
		{Class: "fish", ClassID: 0, Score: 0.5, Box: [4]float64{12, 0, 22, 10}},      // the first, moved 12: no overlap, but near
		{Class: "eel", ClassID: 2, Score: 0.8, Box: [4]float64{50, 0, 60, 10}},       // a new class where the crab was
	}
	got := Between(a, b, 0.25)
	want := []img2vid.Detection{
		{Class: "fish", Score: 0.8, Box: [4]float64{3, 0, 13, 10}},
		{Class: "fish", Score: 0.625, Box: [4]float64{101, 100, 121, 120}},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for i := range got {
		if got[i].Class != want[i].Class || math.Abs(got[i].Score-want[i].Score) > 1e-9 || got[i].Box != want[i].Box {
			t.Errorf("%d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	if far := Between(a[:1], []img2vid.Detection{{ClassID: 0, Box: [4]float64{200, 200, 210, 210}}}, 0.5); len(far) != 0 {
		t.Errorf("an object far away was taken for the same one: %+v", far)
	}
}

// TestLog: the summary counts frames and the most at once per class; the
// file holds one line per detection and appears only on Commit.
func TestLog(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "d.jsonl")
	l, err := NewLog(path)
	if err != nil {
		t.Fatal(err)
	}
	fish := img2vid.Detection{Class: "fish", ClassID: 4, Score: 0.5, Box: [4]float64{1, 2, 3, 4}}
	crab := img2vid.Detection{Class: "crab", ClassID: 1, Score: 0.5}
	l.Frame(0, 0, []img2vid.Detection{fish, fish, crab}, false)
	l.Frame(1, 0.1, nil, true)
	l.Frame(2, 0.2, []img2vid.Detection{fish}, true)
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("the file is there before Commit: %v", err)
	}
	if err := l.Commit(); err != nil {
		t.Fatal(err)
	}
	s := l.Summary("m")
	want := []img2vid.ClassSummary{{Class: "crab", Frames: 1, Most: 1}, {Class: "fish", Frames: 2, Most: 2}}
	if s.Model != "m" || s.Total != 4 || len(s.Classes) != 2 || s.Classes[0] != want[0] || s.Classes[1] != want[1] {
		t.Errorf("summary %+v, want total 4, %+v", s, want)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var recs []Record
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		recs = append(recs, r)
	}
	if len(recs) != 4 || recs[3].Frame != 2 || recs[3].Time != 0.2 || !recs[3].Interpolated || recs[0].Interpolated || recs[0].Box != fish.Box {
		t.Errorf("records %+v", recs)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("left in the folder: %v", entries)
	}

	// Abort leaves nothing.
	l, err = NewLog(filepath.Join(dir, "e.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	l.Frame(0, 0, []img2vid.Detection{fish}, false)
	l.Abort()
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("after Abort: %v", entries)
	}
}
