package ingest

import (
	"image"
	"image/color"
	"image/color/palette"
	"image/gif"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"

	"github.com/img2vid/img2vid"
	"github.com/img2vid/img2vid/internal/testimage"
)

// near reports whether two colours differ by at most tol per channel (JPEG
// is lossy).
func near(a, b color.NRGBA, tol int) bool {
	d := func(x, y uint8) bool { v := int(x) - int(y); return v <= tol && v >= -tol }
	return d(a.R, b.R) && d(a.G, b.G) && d(a.B, b.B)
}

func TestDecodeOrientation(t *testing.T) {
	dir := t.TempDir()
	upright := testimage.Quadrants(64, 32)
	for o := 1; o <= 8; o++ {
		path := filepath.Join(dir, "o.jpg")
		testimage.Write(t, path, testimage.OrientedJPEG(t, upright, o))
		img, h, err := Decode(path, 0)
		if err != nil {
			t.Fatalf("orientation %d: %v", o, err)
		}
		if h.Orientation != o || h.Width != 64 || h.Height != 32 {
			t.Errorf("orientation %d: header %+v, want orientation %d and 64x32 upright", o, h, o)
		}
		if img.Rect.Dx() != 64 || img.Rect.Dy() != 32 {
			t.Fatalf("orientation %d: decoded %v, want 64x32", o, img.Rect)
		}
		for _, p := range []struct {
			x, y      int
			left, top bool
		}{{8, 8, true, true}, {56, 8, false, true}, {8, 24, true, false}, {56, 24, false, false}} {
			if got, want := img.NRGBAAt(p.x, p.y), testimage.QuadrantColor(p.left, p.top); !near(got, want, 40) {
				t.Errorf("orientation %d: pixel (%d,%d) = %v, want %v", o, p.x, p.y, got, want)
			}
		}
	}
}

func TestDecodeFormats(t *testing.T) {
	dir := t.TempDir()
	want := color.NRGBA{200, 40, 40, 255}
	src := testimage.Solid(32, 24, want)
	write := func(name string, enc func(f *os.File) error) string {
		p := filepath.Join(dir, name)
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := enc(f); err != nil {
			t.Fatal(err)
		}
		f.Close()
		return p
	}
	gray := image.NewGray(image.Rect(0, 0, 32, 24))
	for i := range gray.Pix {
		gray.Pix[i] = 90
	}
	deep := image.NewNRGBA64(image.Rect(0, 0, 32, 24))
	for y := 0; y < 24; y++ {
		for x := 0; x < 32; x++ {
			deep.SetNRGBA64(x, y, color.NRGBA64{200 * 257, 40 * 257, 40 * 257, 0xFFFF})
		}
	}
	pal := image.NewPaletted(image.Rect(0, 0, 32, 24), palette.Plan9)
	for i := range pal.Pix {
		pal.Pix[i] = uint8(pal.Palette.Index(want))
	}
	palWant := color.NRGBAModel.Convert(pal.Palette[pal.Pix[0]]).(color.NRGBA)
	second := image.NewPaletted(image.Rect(0, 0, 32, 24), palette.Plan9)

	cases := []struct {
		name string
		path string
		want color.NRGBA
	}{
		{"jpeg", write("a.jpg", func(f *os.File) error { _, err := f.Write(testimage.JPEG(t, src)); return err }), want},
		{"png", write("a.png", func(f *os.File) error { _, err := f.Write(testimage.PNG(t, src)); return err }), want},
		{"png gray", write("g.png", func(f *os.File) error { _, err := f.Write(testimage.PNG(t, gray)); return err }), color.NRGBA{90, 90, 90, 255}},
		{"png 16-bit", write("d.png", func(f *os.File) error { _, err := f.Write(testimage.PNG(t, deep)); return err }), want},
		{"png paletted", write("p.png", func(f *os.File) error { _, err := f.Write(testimage.PNG(t, pal)); return err }), palWant},
		{"gif animated: first frame", write("a.gif", func(f *os.File) error {
			return gif.EncodeAll(f, &gif.GIF{Image: []*image.Paletted{pal, second}, Delay: []int{10, 10}})
		}), palWant},
		{"bmp", write("a.bmp", func(f *os.File) error { return bmp.Encode(f, src) }), want},
		{"tiff", write("a.tiff", func(f *os.File) error { return tiff.Encode(f, src, nil) }), want},
	}
	if ffmpeg, err := exec.LookPath("ffmpeg"); err == nil {
		p := filepath.Join(dir, "a.webp")
		out, err := exec.Command(ffmpeg, "-v", "error", "-f", "lavfi", "-i", "color=c=0xC82828:s=32x24", "-frames:v", "1", "-lossless", "1", p).CombinedOutput()
		if err != nil {
			t.Fatalf("make webp: %v: %s", err, out)
		}
		cases = append(cases, struct {
			name string
			path string
			want color.NRGBA
		}{"webp", p, want})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			img, _, err := Decode(c.path, 0)
			if err != nil {
				t.Fatal(err)
			}
			if img.Rect.Dx() != 32 || img.Rect.Dy() != 24 {
				t.Fatalf("size %v", img.Rect)
			}
			if got := img.NRGBAAt(16, 12); !near(got, c.want, 6) {
				t.Errorf("pixel = %v, want %v", got, c.want)
			}
		})
	}
}

func TestDecodeBadInput(t *testing.T) {
	dir := t.TempDir()
	good := testimage.JPEG(t, testimage.Quadrants(512, 512))
	cases := []struct {
		name, file string
		data       []byte
		code, text string
	}{
		{"text named .jpg", "notes.jpg", []byte("hello, not an image"), img2vid.EINVALID, "notes.jpg: not a readable image"},
		{"zero bytes", "empty.png", nil, img2vid.EINVALID, "empty.png: not a readable image"},
		{"truncated jpeg", "cut.jpg", good[:len(good)-200], img2vid.EINVALID, "cut.jpg: cannot decode jpeg"},
		{"bomb header", "bomb.png", testimage.PNGHeaderOnly(50000, 50000), img2vid.ETOOLARGE, "bomb.png: 50000x50000 is 2500000000 pixels; the limit is max_pixels=50000000"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(dir, c.file)
			testimage.Write(t, p, c.data)
			_, _, err := Decode(p, img2vid.DefaultLimits().Pixels)
			if img2vid.ErrorCode(err) != c.code || !strings.Contains(err.Error(), c.text) {
				t.Errorf("got %v (%s), want code %s and a message containing %q", err, img2vid.ErrorCode(err), c.code, c.text)
			}
		})
	}
	if _, _, err := Decode(filepath.Join(dir, "absent.jpg"), 0); img2vid.ErrorCode(err) != img2vid.ENOTFOUND {
		t.Errorf("missing file: %v", err)
	}
}

// Cameras often put tens of KB of metadata (thumbnails, maker notes) before
// the orientation tag; ReadHeader, which the pipeline plans with, must
// find it as Decode does.
func TestOrientationBehindLargeMetadata(t *testing.T) {
	upright := testimage.Quadrants(64, 32)
	jpg := testimage.OrientedJPEG(t, upright, 6) // SOI, APP1 (EXIF), ...
	// A 20 KB APP2 segment between SOI and the EXIF block.
	pad := append([]byte{0xFF, 0xE2, 0x50, 0x02}, make([]byte, 0x5000)...)
	withPad := append(append(append([]byte{}, jpg[:2]...), pad...), jpg[2:]...)
	p := filepath.Join(t.TempDir(), "camera.jpg")
	testimage.Write(t, p, withPad)
	h, err := ReadHeader(p, 0)
	if err != nil {
		t.Fatal(err)
	}
	if h.Orientation != 6 || h.Width != 64 || h.Height != 32 {
		t.Errorf("ReadHeader = %+v, want orientation 6 and 64x32 upright", h)
	}
	_, dh, err := Decode(p, 0)
	if err != nil || dh != h {
		t.Errorf("Decode's header %+v (%v) differs from ReadHeader's %+v", dh, err, h)
	}
}

// The header tells a plan what decoding will cost before a pixel is
// decoded: a 1-bit TIFF of a few KB that is 35 megapixels allocates no
// more than its header says.
func TestDecodeBytesBoundsDecoding(t *testing.T) {
	p := filepath.Join(t.TempDir(), "scan.tif")
	data := testimage.BilevelTIFF(t, 4956, 7014)
	testimage.Write(t, p, data)
	h, err := ReadHeader(p, 0)
	if err != nil {
		t.Fatal(err)
	}
	if h.PixelBytes != 1 {
		t.Errorf("PixelBytes = %d, want 1 (8-bit gray)", h.PixelBytes)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	img, _, err := Decode(p, 0)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if c := img.NRGBAAt(4000, 6000); c.R != 255 || c.A != 255 {
		t.Errorf("pixel %v, want white", c)
	}
	allocated := int64(after.TotalAlloc - before.TotalAlloc)
	t.Logf("%d-byte file, %dx%d: header says %d MB, decoding allocated %d MB in all", len(data), h.Width, h.Height, h.DecodeBytes()>>20, allocated>>20)
	if allocated > h.DecodeBytes()+h.DecodeBytes()/20 {
		t.Errorf("decoding allocated %d bytes, the header planned %d", allocated, h.DecodeBytes())
	}
}
