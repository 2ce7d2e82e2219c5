package ingest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/img2vid/img2vid"
	"github.com/img2vid/img2vid/internal/testimage"
)

// FuzzDecode: any bytes either decode into an image that places onto a
// canvas, or fail with a coded error; nothing panics or allocates what a
// forged header claims.
func FuzzDecode(f *testing.F) {
	f.Add(testimage.JPEG(f, testimage.Quadrants(16, 8)))
	f.Add(testimage.OrientedJPEG(f, testimage.Quadrants(16, 8), 6))
	f.Add(testimage.PNG(f, testimage.Quadrants(9, 7)))
	f.Add(testimage.PNGHeaderOnly(50000, 50000))
	f.Add([]byte("GIF89a"))
	dir := fuzzDir(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "in")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		// 64x64 at most: pixels are the cost of an exec, and a forged size
		// above the limit must be refused from the header alone.
		img, _, err := Decode(p, 1<<12)
		if err != nil {
			if c := img2vid.ErrorCode(err); c != img2vid.EINVALID && c != img2vid.ETOOLARGE {
				t.Fatalf("error %v has code %s", err, c)
			}
			return
		}
		out := Canvas{Width: 33, Height: 17, Fit: img2vid.FitContain}.Place(img)
		if out.Rect.Dx() != 34 || out.Rect.Dy() != 18 {
			t.Fatalf("placed frame %v, want 34x18", out.Rect)
		}
	})
}

// fuzzDir is where FuzzDecode writes each input: a folder on tmpfs
// (/dev/shm) where the machine has one, since a disk write per exec would
// bound the fuzzer to a few hundred execs a second, else the test's own.
func fuzzDir(f *testing.F) string {
	if dir, err := os.MkdirTemp("/dev/shm", "img2vid-fuzz-"); err == nil {
		f.Cleanup(func() { os.RemoveAll(dir) })
		return dir
	}
	return f.TempDir()
}
