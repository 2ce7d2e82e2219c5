package testimage

import (
	"bytes"
	"fmt"
	"image"
	_ "image/png" // ReadImage reads the reference decodes
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// DecodeVideo decodes every frame of a video with the ffmpeg on PATH into
// packed RGB24 bytes of w x h, for checks of what the video really shows.
// The colour conversion interpolates chroma and rounds accurately (ffmpeg's
// default conversion alone costs about 10 dB on sharp colour edges), so
// frames can be compared closely with a reference decode.
func DecodeVideo(t testing.TB, file string, w, h int) [][]byte {
	t.Helper()
	cmd := exec.Command("ffmpeg", "-v", "error", "-i", file, "-sws_flags", "bicubic+accurate_rnd+full_chroma_int",
		"-f", "rawvideo", "-pix_fmt", "rgb24", "-")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("decode %s: %v: %s", file, err, stderr.String())
	}
	size := 3 * w * h
	if len(out)%size != 0 {
		t.Fatalf("decode %s: %d bytes is not a whole number of %dx%d frames", file, len(out), w, h)
	}
	var frames [][]byte
	for i := 0; i < len(out); i += size {
		frames = append(frames, out[i:i+size])
	}
	return frames
}

// RGBAt returns the colour at (x, y) of a packed RGB24 frame w pixels wide.
func RGBAt(frame []byte, w, x, y int) [3]uint8 {
	i := 3 * (y*w + x)
	return [3]uint8{frame[i], frame[i+1], frame[i+2]}
}

// RGB24 returns img's pixels as packed RGB24 bytes, alpha composited onto
// black, as a video frame holds them.
func RGB24(img image.Image) []byte {
	b := img.Bounds()
	out := make([]byte, 0, 3*b.Dx()*b.Dy())
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA() // premultiplied: onto black
			out = append(out, uint8(r>>8), uint8(g>>8), uint8(bl>>8))
		}
	}
	return out
}

// PSNR is the peak signal-to-noise ratio of b against a, two frames of the
// same size in the same packed layout, in dB; +Inf when they are equal.
func PSNR(a, b []byte) float64 {
	if len(a) != len(b) || len(a) == 0 {
		return 0
	}
	var sum float64
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		sum += d * d
	}
	if sum == 0 {
		return math.Inf(1)
	}
	return 10 * math.Log10(255*255*float64(len(a))/sum)
}

// ReadImage decodes the image file at path with Go's decoders.
func ReadImage(t testing.TB, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	return img
}

// ThroughVideo returns what a w x h RGB24 frame looks like after the trip
// every frame makes: converted to yuv420p and encoded losslessly by
// libx264 (as a video at quality 0 is), then decoded as DecodeVideo does.
// Comparing a video's frame with a reference decode sent through the same
// trip measures the decoding alone, not the colour format.
func ThroughVideo(t testing.TB, rgb []byte, w, h int) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "ref.mp4")
	cmd := exec.Command("ffmpeg", "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", fmt.Sprintf("%dx%d", w, h),
		"-i", "-", "-c:v", "libx264", "-crf", "0", "-pix_fmt", "yuv420p", "-y", out)
	cmd.Stdin = bytes.NewReader(rgb)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("encode the reference: %v: %s", err, b)
	}
	return DecodeVideo(t, out, w, h)[0]
}
