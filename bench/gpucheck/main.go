// Command gpucheck runs the default interpolation model on the CPU and on
// CUDA over the same 1080p frames, in one process, and reports which
// provider each really used, how far the CUDA frames are from the CPU's,
// and the frames per second of each: at 2x (one frame per pair, motion and
// synthesis) and at 16x (fifteen frames per pair, the motion once). It is
// the GPU check of docs/BENCHMARKS.md, built here and run on a GPU machine
// (scripts/gpu-check.sh prepares it), which has no Go toolchain and no
// ffmpeg: the frames are made in the program.
//
//	gpucheck [-lib DIR] [-model flow2] [-width 1920] [-height 1080] [-pairs 8] [-threads 0]
package main

import (
	"context"
	"flag"
	"fmt"
	"image"
	"log/slog"
	"math"
	"os"
	"time"

	"github.com/img2vid/img2vid"
	"github.com/img2vid/img2vid/inference"
)

func main() {
	lib := flag.String("lib", os.Getenv("ONNXRUNTIME_LIB"), "ONNX Runtime library or its folder, with the CUDA provider beside it")
	model := flag.String("model", img2vid.DefaultInterpModel, "interpolation model")
	width := flag.Int("width", 1920, "frame width")
	height := flag.Int("height", 1080, "frame height")
	pairs := flag.Int("pairs", 8, "frame pairs timed per provider")
	threads := flag.Int("threads", 0, "CPU intra-op threads (0: one per core)")
	flag.Parse()
	if err := run(*lib, *model, *width, *height, *pairs, *threads); err != nil {
		fmt.Fprintln(os.Stderr, "gpucheck:", err)
		os.Exit(1)
	}
}

// result is one provider's run.
type result struct {
	provider    string
	session     time.Duration
	fps2, fps16 float64
	frames      []*image.NRGBA // the t=0.5 frame of each pair
}

func run(lib, model string, w, h, pairs, threads int) error {
	frames := make([]*image.NRGBA, pairs+1)
	for i := range frames {
		frames[i] = scene(w, h, float64(i)*7.5, float64(i)*-3)
	}
	var results []result
	for _, device := range []string{inference.DeviceCPU, inference.DeviceCUDA} {
		r, err := measure(lib, device, model, threads, frames)
		if err != nil {
			return fmt.Errorf("%s: %w", device, err)
		}
		results = append(results, r)
		fmt.Printf("%-5s provider in use: %s; session %.2f s; 2x %.1f frames/s; 16x %.1f frames/s\n",
			device, r.provider, r.session.Seconds(), r.fps2, r.fps16)
	}
	cpu, gpu := results[0], results[1]
	if gpu.provider != inference.ProviderCUDA {
		return fmt.Errorf("CUDA was asked for, %s was used", gpu.provider)
	}
	worst, sum := 0, 0.0
	for i := range cpu.frames {
		d, mse := compare(cpu.frames[i], gpu.frames[i])
		worst = max(worst, d)
		sum += mse
	}
	psnr := 10 * math.Log10(255*255/math.Max(sum/float64(len(cpu.frames)), 1e-12))
	fmt.Printf("CUDA against CPU: largest difference %d of 255, %.1f dB; CUDA %.1fx the CPU's frames/s at 2x, %.1fx at 16x\n",
		worst, psnr, gpu.fps2/cpu.fps2, gpu.fps16/cpu.fps16)
	if psnr < 45 {
		return fmt.Errorf("the CUDA frames differ from the CPU's: %.1f dB", psnr)
	}
	return nil
}

// measure opens the runtime on device and times the model over the pairs,
// after one untimed pair that settles the providers' allocations.
func measure(lib, device, model string, threads int, frames []*image.NRGBA) (result, error) {
	rt, err := inference.Open(inference.Config{Library: lib, Device: device, Threads: threads,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))})
	if err != nil {
		return result{}, err
	}
	defer rt.Close()
	r := result{provider: rt.Info().Provider}
	start := time.Now()
	m, err := rt.Interpolator(model)
	if err != nil {
		return result{}, err
	}
	r.session = time.Since(start)
	ctx := context.Background()
	if _, err := img2vid.InterpolateAll(ctx, m, frames[0], frames[1], []float32{0.5}); err != nil {
		return result{}, err
	}
	start = time.Now()
	for i := 0; i+1 < len(frames); i++ {
		out, err := img2vid.InterpolateAll(ctx, m, frames[i], frames[i+1], []float32{0.5})
		if err != nil {
			return result{}, err
		}
		r.frames = append(r.frames, out[0])
	}
	r.fps2 = float64(len(frames)-1) / time.Since(start).Seconds()
	ts := make([]float32, 15)
	for j := range ts {
		ts[j] = float32(j+1) / 16
	}
	start = time.Now()
	for i := 0; i+1 < len(frames); i++ {
		if _, err := img2vid.InterpolateAll(ctx, m, frames[i], frames[i+1], ts); err != nil {
			return result{}, err
		}
	}
	r.fps16 = float64((len(frames)-1)*len(ts)) / time.Since(start).Seconds()
	return r, nil
}

// scene renders a smooth colour texture moved by (dx, dy) pixels.
func scene(w, h int, dx, dy float64) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			u, v := float64(x)-dx, float64(y)-dy
			i := img.PixOffset(x, y)
			img.Pix[i] = uint8(127 + 60*math.Sin(u/23) + 60*math.Sin(v/31))
			img.Pix[i+1] = uint8(127 + 60*math.Sin((u+v)/17) + 60*math.Cos(u/41))
			img.Pix[i+2] = uint8(127 + 90*math.Sin((u-v)/29))
			img.Pix[i+3] = 255
		}
	}
	return img
}

// compare returns the largest difference of two frames' 8-bit values and
// their mean squared difference.
func compare(a, b *image.NRGBA) (int, float64) {
	worst, sum, n := 0, 0.0, 0
	for i := range a.Pix {
		if i%4 == 3 {
			continue
		}
		d := int(a.Pix[i]) - int(b.Pix[i])
		worst = max(worst, d, -d)
		sum += float64(d * d)
		n++
	}
	return worst, sum / float64(n)
}
