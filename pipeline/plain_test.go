package pipeline_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/img2vid/img2vid"
	"github.com/img2vid/img2vid/internal/testenv"
	"github.com/img2vid/img2vid/internal/testimage"
	"github.com/img2vid/img2vid/pipeline"
)

// ingestTestdata is where the committed test images and their reference
// decodes (libjpeg's djpeg, libwebp's dwebp) are; its README says how
// they were made.
const ingestTestdata = "../ingest/testdata"

// convertOne converts the one file data, named name, to an MP4 at the
// best quality and returns the result, the decoded frames and the error.
// Any others are converted after it, as PNGs.
func convertOne(t *testing.T, name string, data []byte, others ...[]byte) (img2vid.Result, [][]byte, error) {
	t.Helper()
	dir := t.TempDir()
	in := filepath.Join(dir, name)
	testimage.Write(t, in, data)
	inputs := []string{in}
	for i, o := range others {
		inputs = append(inputs, filepath.Join(dir, fmt.Sprintf("other%d.png", i)))
		testimage.Write(t, inputs[len(inputs)-1], o)
	}
	out := filepath.Join(dir, "v.mp4")
	opts := img2vid.DefaultOptions()
	opts.Quality = 0
	res, err := convert(t, &pipeline.Pipeline{}, inputs, out, opts)
	if err != nil {
		if _, serr := os.Stat(out); serr == nil {
			t.Errorf("%s: refused, yet a video was left at %s", name, out)
		}
		return res, nil, err
	}
	return res, testimage.DecodeVideo(t, out, res.Width, res.Height), nil
}

// Each file alone: every image the same size and upright, the case where
// the files would go to ffmpeg whole. What comes out matches libjpeg's
// decode of the file, or the job is refused naming the file.
func TestJPEGAloneMatchesReference(t *testing.T) {
	testenv.NeedFFmpeg(t)
	for _, name := range []string{"progressive", "restart", "rgb"} {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(ingestTestdata, name+".jpg"))
			if err != nil {
				t.Fatal(err)
			}
			res, frames, err := convertOne(t, name+".jpg", data)
			if err != nil {
				t.Fatal(err)
			}
			if len(frames) != 1 || res.Frames != 1 {
				t.Fatalf("%d frames (result says %d), want 1", len(frames), res.Frames)
			}
			// Decoders differ a little in chroma upsampling and rounding;
			// a wrong colour conversion costs 10 dB or more.
			ref := testimage.ThroughVideo(t, testimage.RGB24(testimage.ReadImage(t, filepath.Join(ingestTestdata, name+".ref.png"))), 96, 64)
			p := testimage.PSNR(ref, frames[0])
			t.Logf("frame against djpeg: %.1f dB", p)
			if p < 35 {
				t.Errorf("frame against djpeg: %.1f dB, want >= 35", p)
			}
		})
	}
}

// A file of many JPEGs back to back is one image: the first. ffmpeg,
// given it whole, would make a frame of each, past every limit.
func TestConcatenatedJPEGsAreOneImage(t *testing.T) {
	testenv.NeedFFmpeg(t)
	small := testimage.JPEG(t, testimage.Quadrants(64, 48))
	data := bytes.Repeat(small, 200)
	data = append(data, testimage.JPEG(t, testimage.Noise(1024, 768, 3))...)
	res, frames, err := convertOne(t, "many.jpg", data)
	if err != nil {
		t.Fatal(err)
	}
	if res.Frames != 1 || len(frames) != 1 || res.Width != 64 || res.Height != 48 {
		t.Fatalf("%dx%d with %d frames (%d in the file), want 64x48 and 1", res.Width, res.Height, res.Frames, len(frames))
	}
	if p := testimage.PSNR(testimage.ThroughVideo(t, testimage.RGB24(testimage.Quadrants(64, 48)), 64, 48), frames[0]); p < 35 {
		t.Errorf("frame against the first image: %.1f dB", p)
	}
}

// Broken structure that ffmpeg would paint as coloured blocks or flat
// green is refused, naming the file, alone as beside other images.
func TestBrokenJPEGStructureRefused(t *testing.T) {
	testenv.NeedFFmpeg(t)
	good := testimage.JPEG(t, testimage.Quadrants(96, 64))
	sos := bytes.Index(good, []byte{0xFF, 0xDA})
	noScan := append(bytes.Clone(good[:sos]), 0xFF, 0xD9)
	prog, err := os.ReadFile(filepath.Join(ingestTestdata, "progressive.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	// Every AC scan (one component, Ss > 0) claims the band 5..1.
	badBand := bytes.Clone(prog)
	for i := 0; ; {
		k := bytes.Index(badBand[i:], []byte{0xFF, 0xDA})
		if k < 0 {
			break
		}
		i += k
		n := int(binary.BigEndian.Uint16(badBand[i+2:]))
		if badBand[i+4] == 1 && badBand[i+7] > 0 {
			badBand[i+7], badBand[i+8] = 5, 1
		}
		i += 2 + n
	}
	for _, c := range []struct{ name, says string }{{"noscan.jpg", "noscan.jpg: not a readable image"}, {"band.jpg", "band.jpg: cannot decode jpeg"}} {
		data := map[string][]byte{"noscan.jpg": noScan, "band.jpg": badBand}[c.name]
		t.Run(c.name, func(t *testing.T) {
			_, _, err := convertOne(t, c.name, data)
			if img2vid.ErrorCode(err) != img2vid.EINVALID || !strings.Contains(err.Error(), c.says) {
				t.Errorf("got %v, want a refusal saying %q", err, c.says)
			}
		})
	}
}

// run runs a command, failing the test with its output if it fails.
func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

// A JPEG whose markers are plain but whose blocks no 8-bit picture makes
// (quantisation steps far coarser than its coefficients were coded for)
// is refused naming it, alone or beside another image: ffmpeg's 16-bit
// transform wraps on such blocks, libjpeg's range limit wraps elsewhere
// and Go's decoder clamps, so no frame of it could be called right.
func TestJPEGBeyond8BitsRefused(t *testing.T) {
	testenv.NeedFFmpeg(t)
	data := testimage.JPEG(t, testimage.Quadrants(64, 48))
	dqt := bytes.Index(data, []byte{0xFF, 0xDB})
	copy(data[dqt+5:], bytes.Repeat([]byte{255}, 64)) // every luma step 255
	for _, others := range [][][]byte{nil, {testimage.PNG(t, testimage.Quadrants(64, 48))}} {
		_, _, err := convertOne(t, "coarse.jpg", data, others...)
		if img2vid.ErrorCode(err) != img2vid.EINVALID || !strings.Contains(err.Error(), "coarse.jpg: cannot decode jpeg: corrupt JPEG data: a block no 8-bit picture makes") {
			t.Errorf("with %d other images: got %v, want a refusal naming coarse.jpg", len(others), err)
		}
	}
}
