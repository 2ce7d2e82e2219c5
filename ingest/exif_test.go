package ingest

import (
	"path/filepath"
	"testing"

	"github.com/img2vid/img2vid/internal/testimage"
)

// The orientation is found in a full-size EXIF segment, and behind another
// large segment: the header is upright, and so are the pixels.
func TestOrientationInAFullSizeEXIFSegment(t *testing.T) {
	dir := t.TempDir()
	upright := testimage.Quadrants(32, 64)
	for _, pad := range []int{0, 18, 60000} {
		path := filepath.Join(dir, "big.jpg")
		testimage.Write(t, path, testimage.FullEXIFJPEG(t, upright, 6, pad))
		h, err := ReadHeader(path, 0)
		if err != nil {
			t.Fatal(err)
		}
		if h.Orientation != 6 || h.Width != 32 || h.Height != 64 {
			t.Errorf("APP2 of %d bytes, then a full-size EXIF: header %+v, want orientation 6, 32x64 upright", pad, h)
		}
		img, h2, err := Decode(path, 0)
		if err != nil {
			t.Fatal(err)
		}
		if b := img.Bounds(); b.Dx() != h2.Width || b.Dy() != h2.Height || b.Dx() != 32 {
			t.Errorf("APP2 of %d bytes: decoded %v, header %dx%d, want 32x64", pad, b, h2.Width, h2.Height)
		}
		if got, want := img.NRGBAAt(4, 4), testimage.QuadrantColor(true, true); !near(got, want, 40) {
			t.Errorf("APP2 of %d bytes: top-left pixel %v, want %v (upright)", pad, got, want)
		}
	}
}
