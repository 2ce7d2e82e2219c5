// Command interp measures the quality and speed of frame interpolation on a
// real clip, in one run on one machine: every other frame is held out and
// recreated at t=0.5 from its neighbours, by the built-in models, by
// repeating the previous frame, and by ffmpeg's motion-compensated
// minterpolate filter. It prints the mean PSNR against the held-out frames
// and the interpolated frames per second of each.
//
//	go run ./bench/interp [-data DIR] [-width 960] [-lib PATH] [-threads 2] [-models flow,blend]
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"image"
	"image/draw"
	_ "image/jpeg" // the clip's frames
	_ "image/png"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/img2vid/img2vid/inference"
	"github.com/img2vid/img2vid/internal/repo"
)

// minterpolateFilter is ffmpeg's own motion-compensated interpolation at its
// best settings. minterpolate takes YUV only: yuv444p keeps full chroma so
// that the comparison measures the interpolation, not chroma subsampling.
const minterpolateFilter = "format=yuv444p,minterpolate=fps=2:mi_mode=mci:mc_mode=aobmc:me_mode=bidir:vsbmc=1,format=rgb24"

func main() {
	data := flag.String("data", "", "folder of the clip's frames, in name order (default: ../shared/data/aquarium beside the repository)")
	width := flag.Int("width", 960, "width the frames are resized to (by area), keeping the aspect ratio")
	lib := flag.String("lib", os.Getenv("ONNXRUNTIME_LIB"), "ONNX Runtime shared library or its folder (default: $ONNXRUNTIME_LIB, then the usual places)")
	threads := flag.Int("threads", 2, "ONNX Runtime intra-op threads")
	device := flag.String("device", "cpu", "execution provider: cpu, cuda or auto")
	modelNames := flag.String("models", "flow,blend", "comma-separated interpolation models to measure")
	modelsDir := flag.String("models-dir", "", "folder of extra models (NAME.json beside its .onnx) to measure besides the built-in ones")
	ffmpeg := flag.String("ffmpeg", "ffmpeg", "ffmpeg executable; empty skips minterpolate")
	flag.Parse()
	if err := run(*data, *width, *lib, *threads, *device, *modelsDir, strings.Split(*modelNames, ","), *ffmpeg); err != nil {
		fmt.Fprintln(os.Stderr, "interp:", err)
		os.Exit(1)
	}
}

// score is one method's result.
type score struct {
	method string
	psnr   float64 // mean over the held-out frames, dB
	fps    float64 // interpolated frames per second; 0 when not meaningful
	// cpuMS is the CPU time per interpolated frame, all threads together,
	// in milliseconds: on a busy machine a steadier measure than fps.
	cpuMS float64
}

// cpuTime is the CPU time this process has used so far, all threads.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func run(data string, width int, lib string, threads int, device, modelsDir string, modelNames []string, ffmpeg string) error {
	if data == "" {
		shared, err := repo.Shared()
		if err != nil {
			return fmt.Errorf("%w; pass -data", err)
		}
		data = filepath.Join(shared, "data", "aquarium")
	}
	frames, err := loadClip(data, width)
	if err != nil {
		return err
	}
	if len(frames) < 3 {
		return fmt.Errorf("%s: need at least 3 frames to hold one out, found %d", data, len(frames))
	}
	// Frame k+1 is held out and recreated from frames k and k+2, k even.
	pairs := (len(frames) - 1) / 2
	size := frames[0].Rect.Size()
	fmt.Printf("clip: %d frames from %s at %dx%d; %d held-out frames recreated at t=0.5\n",
		len(frames), data, size.X, size.Y, pairs)

	var scores []score
	var sum float64
	for k := 0; k < pairs; k++ {
		sum += psnr(frames[2*k], frames[2*k+1])
	}
	scores = append(scores, score{method: "repeat-previous", psnr: sum / float64(pairs)})

	rt, err := inference.Open(inference.Config{Library: lib, Device: device, Threads: threads, ModelsDir: modelsDir,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))})
	if err != nil {
		return fmt.Errorf("opening ONNX Runtime: %w", err)
	}
	defer rt.Close()
	info := rt.Info()
	fmt.Printf("runtime: ONNX Runtime %s (%s), provider %s, %d threads\n", info.Version, info.Library, info.Provider, threads)
	for _, name := range modelNames {
		s, err := measureModel(rt, strings.TrimSpace(name), frames, pairs)
		if err != nil {
			return err
		}
		scores = append(scores, s)
	}
	if ffmpeg != "" {
		s, err := measureMinterpolate(ffmpeg, frames, pairs)
		if err != nil {
			return err
		}
		scores = append(scores, s)
	}

	fmt.Printf("\n%-18s %9s %10s %14s\n", "method", "PSNR dB", "frames/s", "CPU ms/frame")
	for _, s := range scores {
		fps, cpu := "-", "-"
		if s.fps > 0 {
			fps = fmt.Sprintf("%.2f", s.fps)
			cpu = fmt.Sprintf("%.0f", s.cpuMS)
		}
		fmt.Printf("%-18s %9.2f %10s %14s\n", s.method, s.psnr, fps, cpu)
	}
	if last := scores[len(scores)-1]; ffmpeg != "" && last.fps > 0 {
		fmt.Println()
		for _, s := range scores[1 : len(scores)-1] {
			fmt.Printf("%s: %+.2f dB, %.2fx the frames/s and %.2fx the CPU time per frame of minterpolate\n",
				s.method, s.psnr-last.psnr, s.fps/last.fps, s.cpuMS/last.cpuMS)
		}
	}
	return nil
}

// measureModel recreates every held-out frame with the named model through
// the same Interpolator users get, timing only the interpolation.
func measureModel(rt *inference.Runtime, name string, frames []*image.NRGBA, pairs int) (score, error) {
	m, err := rt.Interpolator(name)
	if err != nil {
		return score{}, fmt.Errorf("loading model %s: %w", name, err)
	}
	ctx := context.Background()
	half := []float32{0.5}
	// One untimed call lets ONNX Runtime settle its allocations for this size.
	if _, err := m.Interpolate(ctx, frames[0], frames[2], half); err != nil {
		return score{}, fmt.Errorf("model %s: %w", name, err)
	}
	var sum float64
	var busy time.Duration
	cpu0 := cpuTime()
	for k := 0; k < pairs; k++ {
		start := time.Now()
		out, err := m.Interpolate(ctx, frames[2*k], frames[2*k+2], half)
		busy += time.Since(start)
		if err != nil {
			return score{}, fmt.Errorf("model %s, frames %d and %d: %w", name, 2*k, 2*k+2, err)
		}
		sum += psnr(out[0], frames[2*k+1])
	}
	cpu := cpuTime() - cpu0 // also counts the PSNR, a few ms per frame
	return score{method: name, psnr: sum / float64(pairs), fps: float64(pairs) / busy.Seconds(),
		cpuMS: float64(cpu.Milliseconds()) / float64(pairs)}, nil
}

// measureMinterpolate pipes the kept (even) frames into ffmpeg at 1 frame/s
// and asks minterpolate for 2 frames/s: output frame 2k is input frame k
// and output frame 2k+1 is the one half-way to input k+1, i.e. the held-out
// frame 2k+1. The kept frames coming back unchanged proves the alignment.
func measureMinterpolate(ffmpeg string, frames []*image.NRGBA, pairs int) (score, error) {
	size := frames[0].Rect.Size()
	var in bytes.Buffer
	for k := 0; k <= pairs; k++ {
		in.Write(rgb24(frames[2*k]))
	}
	// minterpolate emits a frame only once it has seen the next input, so
	// without a repeat of the last kept frame the last pair is never
	// interpolated.
	in.Write(rgb24(frames[2*pairs]))
	cmd := exec.Command(ffmpeg, "-hide_banner", "-loglevel", "error",
		"-f", "rawvideo", "-pix_fmt", "rgb24", "-s", fmt.Sprintf("%dx%d", size.X, size.Y), "-framerate", "1", "-i", "pipe:0",
		"-vf", minterpolateFilter, "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1")
	cmd.Stdin = &in
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return score{}, fmt.Errorf("ffmpeg minterpolate: %w: %s", err, tail(stderr.String()))
	}
	elapsed := time.Since(start)
	frameBytes := 3 * size.X * size.Y
	got := out.Len() / frameBytes
	if got < 2*pairs+1 {
		return score{}, fmt.Errorf("ffmpeg minterpolate returned %d frames, want at least %d", got, 2*pairs+1)
	}
	frame := func(i int) *image.NRGBA {
		return fromRGB24(out.Bytes()[i*frameBytes:(i+1)*frameBytes], size.X, size.Y)
	}
	var sum float64
	for k := 0; k < pairs; k++ {
		// Only the RGB -> YUV 4:4:4 -> RGB round trip separates a kept
		// frame from its copy; anything under 40 dB means the output is
		// shifted in time.
		if p := psnr(frame(2*k), frames[2*k]); p < 40 {
			return score{}, fmt.Errorf("ffmpeg minterpolate output frame %d differs from input frame %d (%.1f dB): frames are misaligned", 2*k, 2*k, p)
		}
		sum += psnr(frame(2*k+1), frames[2*k+1])
	}
	// ffmpeg's wall time also covers reading and writing raw frames, a few
	// milliseconds per frame against the motion search's hundreds.
	cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	return score{method: "minterpolate mci", psnr: sum / float64(pairs), fps: float64(pairs) / elapsed.Seconds(),
		cpuMS: float64(cpu.Milliseconds()) / float64(pairs)}, nil
}

// loadClip decodes every image in dir, in name order, resized by area to
// width pixels wide.
func loadClip(dir string, width int) ([]*image.NRGBA, error) {
	if width < 2 {
		return nil, fmt.Errorf("width must be at least 2, got %d", width)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading the clip: %w", err)
	}
	var names []string
	for _, e := range entries {
		switch strings.ToLower(filepath.Ext(e.Name())) {
		case ".jpg", ".jpeg", ".png":
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	var frames []*image.NRGBA
	for _, name := range names {
		img, err := decode(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		b := img.Bounds()
		h := int(math.Round(float64(b.Dy()) * float64(width) / float64(b.Dx())))
		f := resizeArea(img, width, max(h, 1))
		if len(frames) > 0 && f.Rect != frames[0].Rect {
			return nil, fmt.Errorf("%s is %dx%d, unlike the clip's first frame", name, b.Dx(), b.Dy())
		}
		frames = append(frames, f)
	}
	return frames, nil
}

func decode(path string) (image.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening a frame: %w", err)
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("decoding %s: %w", path, err)
	}
	return img, nil
}

// resizeArea resamples img to w x h, each output pixel the mean of the
// source area it covers (what OpenCV calls INTER_AREA), so that a
// downscaled frame carries no aliasing for the interpolators to chase.
func resizeArea(img image.Image, w, h int) *image.NRGBA {
	src := image.NewNRGBA(img.Bounds())
	draw.Draw(src, src.Rect, img, img.Bounds().Min, draw.Src)
	sw, sh := src.Rect.Dx(), src.Rect.Dy()
	xw, yw := areaWeights(sw, w), areaWeights(sh, h)
	// Rows first, in float, then columns.
	rows := make([]float64, 3*w*sh)
	for y := 0; y < sh; y++ {
		line := src.Pix[y*src.Stride:]
		for x, ws := range xw {
			for _, c := range ws {
				for ch := 0; ch < 3; ch++ {
					rows[3*(y*w+x)+ch] += c.w * float64(line[4*c.i+ch])
				}
			}
		}
	}
	dst := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y, ws := range yw {
		for x := 0; x < w; x++ {
			var acc [3]float64
			for _, c := range ws {
				for ch := 0; ch < 3; ch++ {
					acc[ch] += c.w * rows[3*(c.i*w+x)+ch]
				}
			}
			p := dst.Pix[y*dst.Stride+4*x:]
			for ch := 0; ch < 3; ch++ {
				p[ch] = uint8(min(max(math.Round(acc[ch]), 0), 255))
			}
			p[3] = 255
		}
	}
	return dst
}

// tap is one source sample's weight in an output sample.
type tap struct {
	i int
	w float64
}

// areaWeights gives, for each of n output samples over src input samples,
// the inputs it overlaps and by how much, normalised to sum to 1.
func areaWeights(src, n int) [][]tap {
	scale := float64(src) / float64(n)
	out := make([][]tap, n)
	for o := range out {
		lo, hi := float64(o)*scale, float64(o+1)*scale
		for i := int(lo); i < src && float64(i) < hi; i++ {
			if overlap := math.Min(hi, float64(i+1)) - math.Max(lo, float64(i)); overlap > 1e-9 {
				out[o] = append(out[o], tap{i: i, w: overlap / scale})
			}
		}
	}
	return out
}

// psnr is the peak signal-to-noise ratio of a against b over R, G and B, dB.
func psnr(a, b *image.NRGBA) float64 {
	var se float64
	n := 0
	for y := 0; y < a.Rect.Dy(); y++ {
		pa, pb := a.Pix[y*a.Stride:], b.Pix[y*b.Stride:]
		for x := 0; x < 4*a.Rect.Dx(); x += 4 {
			for ch := 0; ch < 3; ch++ {
				d := float64(pa[x+ch]) - float64(pb[x+ch])
				se += d * d
			}
			n += 3
		}
	}
	if se == 0 {
		return math.Inf(1)
	}
	return 10 * math.Log10(255*255/(se/float64(n)))
}

func rgb24(img *image.NRGBA) []byte {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	out := make([]byte, 0, 3*w*h)
	for y := 0; y < h; y++ {
		row := img.Pix[y*img.Stride:]
		for x := 0; x < w; x++ {
			out = append(out, row[4*x], row[4*x+1], row[4*x+2])
		}
	}
	return out
}

func fromRGB24(b []byte, w, h int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < w*h; i++ {
		copy(img.Pix[4*i:], b[3*i:3*i+3])
		img.Pix[4*i+3] = 255
	}
	return img
}

// tail keeps the end of ffmpeg's stderr, where the reason for a failure is.
func tail(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 500 {
		s = "..." + s[len(s)-500:]
	}
	return s
}
