package main

import (
	"image"
	"math"
	"testing"

	"github.com/img2vid/img2vid/internal/testenv"
)

func TestAreaWeights(t *testing.T) {
	for _, c := range []struct{ src, n int }{{1920, 960}, {1080, 540}, {10, 3}, {7, 7}, {3, 5}} {
		w := areaWeights(c.src, c.n)
		if len(w) != c.n {
			t.Fatalf("areaWeights(%d, %d) has %d outputs", c.src, c.n, len(w))
		}
		used := make([]float64, c.src)
		for o, taps := range w {
			var sum float64
			for _, tp := range taps {
				sum += tp.w
				used[tp.i] += tp.w * float64(c.src) / float64(c.n)
			}
			if math.Abs(sum-1) > 1e-9 {
				t.Errorf("areaWeights(%d, %d): output %d weights sum to %v, want 1", c.src, c.n, o, sum)
			}
		}
		// Every input pixel is spread over the outputs exactly once.
		for i, u := range used {
			if math.Abs(u-1) > 1e-9 {
				t.Errorf("areaWeights(%d, %d): input %d is used %v times, want 1", c.src, c.n, i, u)
			}
		}
	}
}

func TestResizeAreaHalvesByMean(t *testing.T) {
	src := image.NewNRGBA(image.Rect(0, 0, 4, 2))
	for i := range src.Pix {
		src.Pix[i] = uint8(10 * (i % 13))
	}
	got := resizeArea(src, 2, 1)
	for x := range 2 {
		for c := range 3 {
			var sum int
			for _, p := range [][2]int{{2 * x, 0}, {2*x + 1, 0}, {2 * x, 1}, {2*x + 1, 1}} {
				sum += int(src.Pix[p[1]*src.Stride+4*p[0]+c])
			}
			want := uint8(math.Round(float64(sum) / 4))
			if g := got.Pix[4*x+c]; g != want {
				t.Errorf("pixel %d channel %d = %d, want the 2x2 mean %d", x, c, g, want)
			}
		}
	}
}

func TestPSNR(t *testing.T) {
	a := image.NewNRGBA(image.Rect(0, 0, 8, 8))
	b := image.NewNRGBA(image.Rect(0, 0, 8, 8))
	if p := psnr(a, b); !math.IsInf(p, 1) {
		t.Errorf("psnr of equal frames = %v, want +Inf", p)
	}
	for i := range b.Pix {
		if i%4 != 3 { // alpha is not compared
			b.Pix[i] = 5
		}
	}
	// Every colour sample off by 5: MSE 25.
	if p, want := psnr(a, b), 10*math.Log10(255*255/25.0); math.Abs(p-want) > 1e-9 {
		t.Errorf("psnr = %v, want %v", p, want)
	}
}

// TestThroughH264ScoresTheRecreatedFrames encodes a 2x video with the real
// ffmpeg and checks that the recreated (odd) frames are the ones scored:
// right, they come back close to the clip; black, far from it.
func TestThroughH264ScoresTheRecreatedFrames(t *testing.T) {
	testenv.NeedFFmpeg(t)
	var frames []*image.NRGBA
	for i := range 5 {
		f := image.NewNRGBA(image.Rect(0, 0, 64, 48))
		for y := range 48 {
			for x := range 64 {
				o := f.PixOffset(x, y)
				f.Pix[o], f.Pix[o+1], f.Pix[o+2], f.Pix[o+3] = uint8(3*x+10*i), uint8(4*y), uint8(100+20*i), 255
			}
		}
		frames = append(frames, f)
	}
	right, err := throughH264("ffmpeg", frames, frames)
	if err != nil {
		t.Fatal(err)
	}
	black := image.NewNRGBA(image.Rect(0, 0, 64, 48))
	wrong, err := throughH264("ffmpeg", []*image.NRGBA{frames[0], black, frames[2], black, frames[4]}, frames)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("right %.2f dB, black %.2f dB", right.psnr, wrong.psnr)
	if right.psnr < 35 || wrong.psnr > 15 {
		t.Errorf("recreated frames scored %.2f dB when right (want >= 35) and %.2f dB when black (want <= 15)", right.psnr, wrong.psnr)
	}
}

func TestMedianAndRatios(t *testing.T) {
	fps := func(s speed) float64 { return s.fps }
	odd := []speed{{fps: 9}, {fps: 2}, {fps: 5}}
	if m := median(odd, fps); m != 5 {
		t.Errorf("median of 9, 2, 5 = %v, want 5", m)
	}
	even := []speed{{fps: 4}, {fps: 1}, {fps: 3}, {fps: 10}}
	if m := median(even, fps); m != 3.5 {
		t.Errorf("median of 4, 1, 3, 10 = %v, want 3.5 (the mean of the middle two)", m)
	}
	// Ratios pair the rounds, so a round where the machine ran slow for
	// both methods keeps their ratio.
	a := []speed{{fps: 8}, {fps: 4}, {fps: 9}}
	b := []speed{{fps: 4}, {fps: 2}, {fps: 3}}
	r := ratios(a, b, fps)
	if len(r) != 3 || r[0] != 2 || r[1] != 2 || r[2] != 3 {
		t.Errorf("ratios = %v, want [2 2 3]", r)
	}
	if r := ratios(a, b[:2], fps); len(r) != 2 {
		t.Errorf("ratios over 3 and 2 rounds has %d entries, want 2", len(r))
	}
}
