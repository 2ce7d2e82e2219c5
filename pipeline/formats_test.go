package pipeline_test

import (
	"bytes"
	"image"
	"image/color"
	"image/gif"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/img2vid/img2vid/internal/testenv"
	"github.com/img2vid/img2vid/internal/testimage"
)

// referenceRGB decodes the first frame of an image file with ffmpeg's own
// decoders into packed RGB24 (alpha composited onto black).
func referenceRGB(t *testing.T, file string) []byte {
	t.Helper()
	cmd := exec.Command("ffmpeg", "-v", "error", "-i", file, "-frames:v", "1",
		"-filter_complex", "color=black,format=rgb24[bg];[bg][0:v]scale2ref[bg2][img];[bg2][img]overlay=format=auto:shortest=1,format=rgb24",
		"-f", "rawvideo", "-pix_fmt", "rgb24", "-")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ffmpeg decode %s: %v: %s", file, err, stderr.String())
	}
	return out
}

// A GIF whose first frame covers only part of its logical screen: the
// frame sits at its offset, the rest is empty (black in the video), as
// ffmpeg's GIF decoder shows it; it is not stretched to the screen.
func TestGIFFrameAtItsOffset(t *testing.T) {
	testenv.NeedFFmpeg(t)
	pal := color.Palette{color.NRGBA{0, 0, 0, 255}, color.NRGBA{230, 40, 40, 255}, color.NRGBA{40, 200, 60, 255}}
	first := image.NewPaletted(image.Rect(20, 12, 44, 28), pal)
	for i := range first.Pix {
		first.Pix[i] = 1
	}
	second := image.NewPaletted(image.Rect(0, 0, 64, 48), pal)
	for i := range second.Pix {
		second.Pix[i] = 2
	}
	var b bytes.Buffer
	g := &gif.GIF{Image: []*image.Paletted{first, second}, Delay: []int{10, 10},
		Config: image.Config{Width: 64, Height: 48, ColorModel: pal}, BackgroundIndex: 0}
	if err := gif.EncodeAll(&b, g); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "offset.gif")
	testimage.Write(t, file, b.Bytes())
	ref := referenceRGB(t, file)

	res, frames, err := convertOne(t, "offset.gif", b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if res.Width != 64 || res.Height != 48 || len(frames) != 1 {
		t.Fatalf("%dx%d, %d frames; want 64x48 and 1", res.Width, res.Height, len(frames))
	}
	if p := testimage.PSNR(testimage.ThroughVideo(t, ref, 64, 48), frames[0]); p < 35 {
		t.Errorf("frame against ffmpeg's decode of the GIF: %.1f dB, want >= 35", p)
	}
	for _, pt := range []struct {
		x, y int
		want color.NRGBA
	}{{4, 4, color.NRGBA{0, 0, 0, 255}}, {32, 20, pal[1].(color.NRGBA)}, {60, 44, color.NRGBA{0, 0, 0, 255}}} {
		if got := testimage.RGBAt(frames[0], 64, pt.x, pt.y); !near(got, pt.want, 12) {
			t.Errorf("(%d,%d) = %v, want %v", pt.x, pt.y, got, pt.want)
		}
	}
}

// near reports whether an RGB24 pixel is within tol of c in every channel.
func near(got [3]uint8, c color.NRGBA, tol int) bool {
	d := func(a, b uint8) bool { return max(int(a)-int(b), int(b)-int(a)) <= tol }
	return d(got[0], c.R) && d(got[1], c.G) && d(got[2], c.B)
}

// Lossy WebP, with and without alpha, in the video as libwebp decodes it
// (dwebp's output, committed beside the files).
func TestWebPMatchesLibwebp(t *testing.T) {
	testenv.NeedFFmpeg(t)
	for _, name := range []string{"lossy", "alpha"} {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(ingestTestdata, name+".webp"))
			if err != nil {
				t.Fatal(err)
			}
			_, frames, err := convertOne(t, name+".webp", data)
			if err != nil {
				t.Fatal(err)
			}
			ref := testimage.ThroughVideo(t, testimage.RGB24(testimage.ReadImage(t, filepath.Join(ingestTestdata, name+".ref.png"))), 96, 64)
			if p := testimage.PSNR(ref, frames[0]); p < 40 {
				t.Errorf("frame against dwebp: %.1f dB, want >= 40", p)
			}
		})
	}
}
