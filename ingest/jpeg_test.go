package ingest

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/img2vid/img2vid"
	"github.com/img2vid/img2vid/internal/testimage"
)

// segmentAt returns the offset of the first marker m in a JPEG, found by
// walking its segments up to the first scan (or the scan itself for SOS).
func segmentAt(t *testing.T, jpg []byte, m byte) int {
	t.Helper()
	for i := 2; i+4 <= len(jpg); {
		if jpg[i] != 0xFF {
			t.Fatalf("no marker at %d", i)
		}
		if jpg[i+1] == m {
			return i
		}
		if jpg[i+1] == markerSOS {
			break
		}
		i += 2 + int(binary.BigEndian.Uint16(jpg[i+2:]))
	}
	t.Fatalf("no marker 0x%02X", m)
	return 0
}

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPlainJPEG(t *testing.T) {
	good := testimage.JPEG(t, testimage.Quadrants(64, 48))
	gray := testimage.JPEG(t, testimage.Gray(64, 48, 90))
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	patch := func(b []byte, at int, v ...byte) []byte {
		out := bytes.Clone(b)
		copy(out[at:], v)
		return out
	}
	sof := segmentAt(t, good, markerSOF0)
	sos := segmentAt(t, good, markerSOS)
	// An Adobe APP14 segment saying "no colour transform": RGB samples.
	adobeRGB := []byte{0xFF, markerAP14, 0, 14, 'A', 'd', 'o', 'b', 'e', 0, 100, 0, 0, 0, 0, 0}
	adobeYCbCr := bytes.Clone(adobeRGB)
	adobeYCbCr[15] = 1

	progressive := readTestdata(t, "progressive.jpg")
	restart := readTestdata(t, "restart.jpg")
	// The first progressive scan after the DC scan(s): an AC scan of one
	// component; make it claim a spectral band that ends before it starts.
	acScan := bytes.Index(progressive[bytes.Index(progressive, []byte{0xFF, markerSOS})+2:], []byte{0xFF, markerSOS}) +
		bytes.Index(progressive, []byte{0xFF, markerSOS}) + 2
	badBand := patch(progressive, acScan+2+2+1+2, 5, 1) // Ss=5, Se=1
	rst := bytes.Index(restart, []byte{0xFF, markerRST0 + 1})

	cases := []struct {
		name string
		data []byte
		why  string // "" for plain
	}{
		{"baseline 4:2:0 (Go's encoder)", good, ""},
		{"gray", gray, ""},
		{"progressive (cjpeg)", progressive, ""},
		{"restart markers (cjpeg)", restart, ""},
		{"zero padding after the image", cat(good, make([]byte, 100)), ""},
		{"0xFF padding after the image", cat(good, bytes.Repeat([]byte{0xFF}, 7)), ""},
		{"Adobe marker saying YCbCr", cat(good[:2], adobeYCbCr, good[2:]), ""},
		{"two images back to back", cat(good, good), "data after its end-of-image marker"},
		{"a small image, then a big one", cat(good, testimage.JPEG(t, testimage.Quadrants(640, 480))), "data after its end-of-image marker"},
		{"text after the image", cat(good, []byte("\r\n")), "data after its end-of-image marker"},
		{"RGB by Adobe marker", cat(good[:2], adobeRGB, good[2:]), "Adobe colour transform 0"},
		{"RGB by component ids", patch(good, sof+2+2+6, 'R', 0x22, 0, 'G', 0x11, 1, 'B'), "component ids 82, 71, 66"},
		{"RGB (cjpeg -rgb)", readTestdata(t, "rgb.jpg"), "component ids 82, 71, 66"},
		{"arithmetic coding (cjpeg -arithmetic)", readTestdata(t, "arithmetic.jpg"), "arithmetic coding"},
		{"12-bit samples", patch(good, sof+4, 12), "12-bit samples"},
		{"CMYK", testimage.CMYKJPEG(), "4 components"},
		{"no scan", cat(good[:sos], []byte{0xFF, markerEOI}), "no image data"},
		{"truncated", good[:len(good)-100], "ends before its end-of-image marker"},
		{"bad progressive band", badBand, "bad progressive scan parameters"},
		{"restart marker missing", cat(restart[:rst], restart[rst+2:]), "corrupt JPEG data"},
		{"not a JPEG", testimage.PNG(t, testimage.Quadrants(8, 8)), "no start-of-image marker"},
		// Steps far coarser than the coefficients were coded for: blocks
		// no 8-bit picture makes, where ffmpeg's 16-bit transform wraps.
		{"blocks beyond 8 bits", patch(good, segmentAt(t, good, markerDQT)+5, bytes.Repeat([]byte{255}, 64)...), "no 8-bit picture makes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := PlainJPEG(c.data)
			switch {
			case c.why == "" && err != nil:
				t.Errorf("not plain: %v", err)
			case c.why != "" && err == nil:
				t.Errorf("plain, want not plain: %s", c.why)
			case c.why != "" && !strings.Contains(err.Error(), c.why):
				t.Errorf("not plain because %q, want %q", err, c.why)
			}
		})
	}
}

// ReadHeader walks a JPEG to its end: Plain says whether the whole file
// is one plain image, whatever is beyond the first 64 KiB.
func TestReadHeaderPlain(t *testing.T) {
	dir := t.TempDir()
	noisy := testimage.JPEG(t, testimage.Noise(512, 512, 1)) // well over 64 KiB
	for _, c := range []struct {
		name  string
		data  []byte
		plain bool
	}{
		{"a.jpg", noisy, true},
		{"b.jpg", append(bytes.Clone(noisy), testimage.JPEG(t, testimage.Quadrants(16, 16))...), false},
		{"c.png", testimage.PNG(t, testimage.Quadrants(16, 16)), false},
	} {
		p := filepath.Join(dir, c.name)
		testimage.Write(t, p, c.data)
		h, err := ReadHeader(p, 0)
		if err != nil {
			t.Fatal(err)
		}
		if h.Plain != c.plain {
			t.Errorf("%s: Plain = %v, want %v", c.name, h.Plain, c.plain)
		}
	}
}

// Damage inside the Huffman-coded data, which the marker walk alone does
// not see, is refused: decoders each read past it their own way.
func TestDecodeRefusesCorruptScanData(t *testing.T) {
	good := testimage.JPEG(t, testimage.Noise(64, 48, 7))
	body := good[:len(good)-2] // without EOI
	sos := segmentAt(t, good, markerSOS)
	mid := sos + (len(body)-sos)/2
	dir := t.TempDir()
	for _, c := range []struct {
		name string
		data []byte
		says string
	}{
		{"bytes after the last block", append(append(bytes.Clone(body), 0x12, 0x34), 0xFF, markerEOI), "2 bytes of scan data after its last block"},
		{"data cut short", append(bytes.Clone(good[:mid]), 0xFF, markerEOI), "corrupt JPEG data"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(dir, "bad.jpg")
			testimage.Write(t, p, c.data)
			_, _, err := Decode(p, 0)
			if img2vid.ErrorCode(err) != img2vid.EINVALID || !strings.Contains(err.Error(), "bad.jpg: cannot decode jpeg") || !strings.Contains(err.Error(), c.says) {
				t.Errorf("got %v, want a refusal naming bad.jpg and saying %q", err, c.says)
			}
		})
	}
}

// The Go project's JPEG test images (every sampling, progressive, restart
// intervals, CMYK, RGB, gray): the decoding walk finds no damage in any
// that Go's decoder reads, and calls plain only what ffmpeg can be given.
func TestWalkGoTestdata(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(goroot(t), "src", "image", "testdata", "*.jpeg"))
	if err != nil || len(files) < 20 {
		t.Fatalf("Go's image test data: %d files (%v)", len(files), err)
	}
	plain := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		_, werr := walkJPEG(bufio.NewReader(bytes.NewReader(b)), true)
		if errors.Is(werr, errCorrupt) {
			t.Errorf("%s: %v", filepath.Base(f), werr)
		}
		if PlainJPEG(b) == nil {
			plain++
		}
	}
	// The 4:2:0/4:2:2/4:4:0/4:4:4 colour and 1x1 gray ones, baseline and
	// progressive, with and without restarts.
	if plain != 16 {
		t.Errorf("%d plain of %d, want 16", plain, len(files))
	}
}

func goroot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Fatalf("go env GOROOT: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// JPEGs that Go's decoder cannot read are refused saying what they are.
func TestUnsupportedJPEGNamed(t *testing.T) {
	good := testimage.JPEG(t, testimage.Quadrants(64, 48))
	twelve := bytes.Clone(good)
	twelve[segmentAt(t, good, markerSOF0)+4] = 12
	dir := t.TempDir()
	for _, c := range []struct {
		name string
		data []byte
		says string
	}{
		{"arith.jpg", readTestdata(t, "arithmetic.jpg"), "arith.jpg: an arithmetic-coded JPEG is not supported"},
		{"deep.jpg", twelve, "deep.jpg: a 12-bit JPEG is not supported"},
	} {
		p := filepath.Join(dir, c.name)
		testimage.Write(t, p, c.data)
		_, err := ReadHeader(p, 0)
		if img2vid.ErrorCode(err) != img2vid.EINVALID || err == nil || !strings.HasPrefix(err.Error(), c.says) {
			t.Errorf("%s: got %v, want a refusal starting %q", c.name, err, c.says)
		}
	}
}
