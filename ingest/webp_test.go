package ingest

import (
	"image"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/image/webp"

	"github.com/img2vid/img2vid/internal/testimage"
)

// Lossy WebP decodes to libwebp's colours (dwebp's output, committed):
// video-range BT.601 and fancy chroma upsampling. Go's own conversion of
// the same frames (full range, chroma repeated) is far off.
func TestWebPMatchesLibwebp(t *testing.T) {
	for _, name := range []string{"lossy", "alpha"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join("testdata", name+".webp")
			img, _, err := Decode(path, 0)
			if err != nil {
				t.Fatal(err)
			}
			ref := testimage.ReadImage(t, filepath.Join("testdata", name+".ref.png"))
			if img.Rect != ref.Bounds() {
				t.Fatalf("decoded %v, libwebp %v", img.Rect, ref.Bounds())
			}
			p := testimage.PSNR(testimage.RGB24(ref), testimage.RGB24(img))
			if p < 45 {
				t.Errorf("against libwebp: %.1f dB, want >= 45", p)
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			raw, err := webp.Decode(f)
			if err != nil {
				t.Fatal(err)
			}
			goWay := testimage.PSNR(testimage.RGB24(ref), testimage.RGB24(toNRGBA(raw)))
			t.Logf("against libwebp: %.1f dB; Go's own conversion: %.1f dB", p, goWay)
			if goWay > p-10 {
				t.Errorf("Go's conversion is %.1f dB, this one %.1f: the test does not tell them apart", goWay, p)
			}
			if _, ok := raw.(*image.NRGBA); ok {
				t.Errorf("%s decoded as lossless", name)
			}
		})
	}
}
