package pipeline_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/img2vid/img2vid"
	"github.com/img2vid/img2vid/internal/testenv"
	"github.com/img2vid/img2vid/internal/testimage"
)

var mutations = flag.Int("mutations", 60, "damaged JPEGs TestMutatedJPEGs makes and converts")

// Damaged JPEGs (a fixed seed's mutations of valid ones), every other one
// converted alone, so that a same-size upright JPEG would go to ffmpeg
// whole, the rest beside a PNG, so that img2vid decodes it: every video
// shows what libjpeg decodes, or the job is refused naming the file.
// Never a frame of garbage that no reference decoder would produce.
func TestMutatedJPEGs(t *testing.T) {
	testenv.NeedFFmpeg(t)
	if _, err := exec.LookPath("djpeg"); err != nil {
		testenv.Missing(t, "djpeg not installed (Debian's libjpeg-turbo-progs; scripts/setup.sh test installs it)")
	}
	var bases [][]byte
	for _, name := range []string{"progressive.jpg", "restart.jpg"} {
		b, err := os.ReadFile(filepath.Join(ingestTestdata, name))
		if err != nil {
			t.Fatal(err)
		}
		bases = append(bases, b)
	}
	detail := testimage.ReadImage(t, filepath.Join(ingestTestdata, "progressive.ref.png"))
	bases = append(bases, testimage.JPEG(t, detail), testimage.JPEG(t, testimage.Gray(96, 64, 120)))

	beside := testimage.PNG(t, testimage.Quadrants(96, 64))
	rng := rand.New(rand.NewPCG(15, 11))
	var refused, matched, kinds = 0, 0, map[string]int{}
	for i := range *mutations {
		base := bases[i%len(bases)]
		data, how := mutate(rng, base)
		name := fmt.Sprintf("m%03d.jpg", i)
		var others [][]byte
		if i%2 == 1 {
			others = append(others, beside)
			how += ", beside a PNG"
		}
		res, frames, err := convertOne(t, name, data, others...)
		if err != nil {
			if c := img2vid.ErrorCode(err); c != img2vid.EINVALID && c != img2vid.ETOOLARGE || !strings.Contains(err.Error(), name) {
				t.Errorf("%s (%s): refused with %v (%s), want an input error naming the file", name, how, err, c)
				keep(t, name, data)
			}
			refused++
			kinds[firstWords(err.Error(), name)]++
			continue
		}
		ref, w, h, warned := djpeg(t, data)
		if ref == nil {
			t.Errorf("%s (%s): converted, but libjpeg cannot decode it", name, how)
			keep(t, name, data)
			continue
		}
		if res.Width != w+w%2 || res.Height != h+h%2 {
			t.Errorf("%s (%s): a %dx%d video, libjpeg decodes %dx%d", name, how, res.Width, res.Height, w, h)
			continue
		}
		// An odd side is padded by one: compare the image's own area.
		p := testimage.PSNR(testimage.ThroughVideo(t, pad(ref, w, h), res.Width, res.Height), pad(crop(frames[0], res.Width, w, h), w, h))
		if p < 30 {
			t.Errorf("%s (%s): frame against libjpeg's decode (warnings: %v): %.1f dB", name, how, warned, p)
			keep(t, name, data)
			continue
		}
		matched++
	}
	t.Logf("%d damaged JPEGs: %d videos matching libjpeg's decode, %d refused naming the file; refusals: %v", *mutations, matched, refused, kinds)
}

// mutate returns a damaged copy of a valid JPEG and how it was damaged.
func mutate(rng *rand.Rand, b []byte) ([]byte, string) {
	out := bytes.Clone(b)
	sos := bytes.Index(out, []byte{0xFF, 0xDA})
	switch k := rng.IntN(6); k {
	case 0: // a few bytes changed anywhere
		n := 1 + rng.IntN(4)
		for range n {
			out[2+rng.IntN(len(out)-2)] = byte(rng.IntN(256))
		}
		return out, fmt.Sprintf("%d bytes changed", n)
	case 1: // a byte changed in the headers: tables, frame, scan
		at := 2 + rng.IntN(sos+12-2)
		out[at] = byte(rng.IntN(256))
		return out, fmt.Sprintf("header byte %d changed", at)
	case 2: // cut, then an end-of-image marker
		at := 2 + rng.IntN(len(out)-4)
		return append(out[:at], 0xFF, 0xD9), fmt.Sprintf("cut at %d of %d", at, len(b))
	case 3: // a marker dropped into the scan data
		at := sos + 20 + rng.IntN(len(out)-sos-22)
		m := []byte{0xD0 + byte(rng.IntN(8)), 0xD8, 0xD9, 0xDA, 0xC4, 0xFF}[rng.IntN(6)]
		return append(out[:at:at], append([]byte{0xFF, m}, out[at:]...)...), fmt.Sprintf("marker 0x%02X inserted at %d", m, at)
	case 4: // a run of bytes cut out of the scan data
		at := sos + 20 + rng.IntN(len(out)-sos-40)
		n := 1 + rng.IntN(16)
		return append(out[:at:at], out[at+n:]...), fmt.Sprintf("%d bytes cut at %d", n, at)
	default: // random bytes after the image
		tail := make([]byte, 1+rng.IntN(64))
		for i := range tail {
			tail[i] = byte(rng.IntN(256))
		}
		return append(out, tail...), fmt.Sprintf("%d bytes after the image", len(tail))
	}
}

// djpeg decodes a JPEG with libjpeg, without its smoothing upsampler (as
// Go's decoder and ffmpeg's frames do), returning packed RGB24 and the
// size, or nil when libjpeg cannot decode it; warned says it warned.
func djpeg(t *testing.T, data []byte) (rgb []byte, w, h int, warned bool) {
	t.Helper()
	cmd := exec.Command("djpeg", "-nosmooth", "-pnm")
	cmd.Stdin = bytes.NewReader(data)
	out, err := cmd.Output()
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 2 {
		warned, err = true, nil
	}
	if err != nil || len(out) == 0 {
		return nil, 0, 0, warned
	}
	rgb, w, h = pnm(t, out)
	return rgb, w, h, warned
}

// pnm reads the binary PPM (colour) or PGM (gray) that djpeg writes into
// packed RGB24.
func pnm(t *testing.T, b []byte) ([]byte, int, int) {
	t.Helper()
	var magic string
	var w, h, maxval int
	r := bytes.NewReader(b)
	if _, err := fmt.Fscan(r, &magic, &w, &h, &maxval); err != nil || maxval != 255 {
		t.Fatalf("djpeg wrote no 8-bit PNM: %v", err)
	}
	r.ReadByte() // the one whitespace byte before the samples
	px := b[len(b)-r.Len():]
	switch {
	case magic == "P6" && len(px) == 3*w*h:
		return px, w, h
	case magic == "P5" && len(px) == w*h:
		rgb := make([]byte, 0, 3*w*h)
		for _, v := range px {
			rgb = append(rgb, v, v, v)
		}
		return rgb, w, h
	}
	t.Fatalf("djpeg wrote a %s of %d bytes for %dx%d", magic, len(px), w, h)
	return nil, 0, 0
}

// keep saves a file that failed the check beside the test log, to look at.
func keep(t *testing.T, name string, data []byte) {
	dir := os.Getenv("IMG2VID_KEEP")
	if dir == "" {
		return
	}
	os.WriteFile(filepath.Join(dir, name), data, 0o644)
}

// firstWords shortens a refusal to its kind: the message without the file
// name, up to its first colon.
func firstWords(msg, name string) string {
	msg = strings.TrimPrefix(msg, name+": ")
	if i := strings.IndexAny(msg, ":("); i > 0 {
		msg = msg[:i]
	}
	return strings.TrimSpace(msg)
}

// The Go project's image test files (GOROOT/src/image/testdata) and
// golang.org/x/image's (from the module cache): each converted alone, and
// the frame compared with an independent decode: libjpeg's for JPEG,
// libwebp's for WebP, libtiff's for TIFF, for a BMP the PNG its authors
// made of it, ffmpeg's own decoders for the rest (ffmpeg 5.1 misreads
// tiled TIFFs and some BMPs). Every file is a matching video or a refusal
// naming it.
func TestGoImageCorpus(t *testing.T) {
	testenv.NeedFFmpeg(t)
	for _, tool := range []string{"djpeg", "dwebp", "tiff2rgba"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.Missing(t, "%s not installed (scripts/setup.sh test installs it)", tool)
		}
	}
	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Fatal(err)
	}
	xdir, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "golang.org/x/image").Output()
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, dir := range []string{filepath.Join(strings.TrimSpace(string(goroot)), "src", "image", "testdata"), filepath.Join(strings.TrimSpace(string(xdir)), "testdata")} {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			switch strings.ToLower(filepath.Ext(e.Name())) {
			case ".jpeg", ".jpg", ".png", ".gif", ".webp", ".tiff", ".tif", ".bmp":
				files = append(files, filepath.Join(dir, e.Name()))
			}
		}
	}
	var videos, refused, noRef int
	for _, f := range files {
		name := filepath.Base(f)
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		res, frames, err := convertOne(t, name, data)
		if err != nil {
			if c := img2vid.ErrorCode(err); c != img2vid.EINVALID && c != img2vid.ETOOLARGE || !strings.Contains(err.Error(), name) {
				t.Errorf("%s: refused with %v (%s), want an input error naming the file", name, err, c)
			}
			t.Logf("refused: %v", err)
			refused++
			continue
		}
		ref, w, h := reference(t, f, data)
		if ref == nil {
			noRef++
			t.Logf("%s: converted; no reference decoder reads it", name)
			continue
		}
		if w != res.Width || h != res.Height {
			// An odd side is padded by one: compare the image's own area.
			if res.Width != w+w%2 || res.Height != h+h%2 {
				t.Errorf("%s: a %dx%d video of a %dx%d image", name, res.Width, res.Height, w, h)
				continue
			}
			frames[0] = crop(frames[0], res.Width, w, h)
		}
		p := testimage.PSNR(testimage.ThroughVideo(t, pad(ref, w, h), w+w%2, h+h%2), pad(frames[0], w, h))
		if p < 30 {
			t.Errorf("%s: frame against the reference decode: %.1f dB", name, p)
		}
		videos++
	}
	t.Logf("%d files: %d videos matching their reference decode, %d refused naming the file, %d with no reference decoder", len(files), videos, refused, noRef)
}

// reference decodes a file with a decoder other than img2vid's, returning
// packed RGB24 (alpha onto black) and the size, or nil when none reads it.
func reference(t *testing.T, file string, data []byte) ([]byte, int, int) {
	switch strings.ToLower(filepath.Ext(file)) {
	case ".jpeg", ".jpg":
		rgb, w, h, _ := djpeg(t, data)
		return rgb, w, h
	case ".webp":
		out := filepath.Join(t.TempDir(), "ref.png")
		if err := exec.Command("dwebp", "-quiet", "-nodither", file, "-o", out).Run(); err != nil {
			return nil, 0, 0
		}
		img := testimage.ReadImage(t, out)
		return testimage.RGB24(img), img.Bounds().Dx(), img.Bounds().Dy()
	case ".tiff", ".tif":
		// libtiff decodes into a plain RGBA TIFF (one uncompressed strip),
		// which Go's reader only unpacks.
		out := filepath.Join(t.TempDir(), "ref.tif")
		if err := exec.Command("tiff2rgba", file, out).Run(); err != nil {
			return nil, 0, 0
		}
		img := testimage.ReadImage(t, out)
		return testimage.RGB24(img), img.Bounds().Dx(), img.Bounds().Dy()
	case ".bmp":
		if png := strings.TrimSuffix(file, filepath.Ext(file)) + ".png"; exists(png) {
			img := testimage.ReadImage(t, png)
			return testimage.RGB24(img), img.Bounds().Dx(), img.Bounds().Dy()
		}
	}
	out := filepath.Join(t.TempDir(), "ref.png")
	if err := exec.Command("ffmpeg", "-v", "error", "-i", file, "-frames:v", "1", "-pix_fmt", "rgba", "-y", out).Run(); err != nil {
		return nil, 0, 0
	}
	img := testimage.ReadImage(t, out)
	return testimage.RGB24(img), img.Bounds().Dx(), img.Bounds().Dy()
}

// crop returns the w x h top-left part of an RGB24 frame stride pixels wide.
func crop(frame []byte, stride, w, h int) []byte {
	out := make([]byte, 0, 3*w*h)
	for y := range h {
		out = append(out, frame[3*y*stride:][:3*w]...)
	}
	return out
}

// pad returns a w x h RGB24 frame padded with black to even sides, as
// the video pads it.
func pad(frame []byte, w, h int) []byte {
	pw, ph := w+w%2, h+h%2
	if pw == w && ph == h {
		return frame
	}
	out := make([]byte, 3*pw*ph)
	for y := range h {
		copy(out[3*y*pw:], frame[3*y*w:][:3*w])
	}
	return out
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
