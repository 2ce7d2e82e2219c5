// Command memory measures the peak memory of the worst job the default
// limits allow: the largest frames that pass max_memory_mb with the
// highest interpolation factor (16, with the default interpolation model
// unless -interp names another) and a frame model (a 2x super-resolution
// model), run by `img2vid convert` with GOMAXPROCS 1 and 16. The peak is the largest summed RSS of img2vid and its ffmpeg; it
// must stay under the default ceiling, and the two runs within 10 % of
// each other: a job's memory does not depend on the core count.
//
//	go run ./bench/memory [-bin bin/img2vid] [-model ../shared/models/quicksrnetsmall-2x-360p.onnx] [-interp flow2] [-side N]
package main

import (
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/img2vid/img2vid/bench/internal/machine"

	"github.com/img2vid/img2vid"
	"github.com/img2vid/img2vid/internal/proctest"
)

func main() {
	bin := flag.String("bin", "bin/img2vid", "img2vid binary to measure")
	model := flag.String("model", filepath.Join(os.Getenv("IMG2VID_TESTDATA"), "models", "quicksrnetsmall-2x-360p.onnx"), "2x frame model (empty: none)")
	interp := flag.String("interp", img2vid.DefaultInterpModel, "interpolation model")
	side := flag.Int("side", 0, "input side in pixels (0: the largest the default limits allow)")
	planOnly := flag.Bool("plan", false, "print the job and its plan, and run nothing")
	flag.Parse()

	dir, err := os.MkdirTemp("", "img2vid-bench-memory-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	scale, frameModel := 1, ""
	if *model != "" {
		abs, _ := filepath.Abs(*model)
		if err := os.Symlink(abs, filepath.Join(dir, "sr.onnx")); err != nil {
			log.Fatal(err)
		}
		manifest := `{"name": "sr", "kind": "frame", "file": "sr.onnx", "inputs": ["image"], "outputs": ["upscaled_image"]}`
		if err := os.WriteFile(filepath.Join(dir, "sr.json"), []byte(manifest), 0o644); err != nil {
			log.Fatal(err)
		}
		scale, frameModel = 2, "sr"
	}
	opts := img2vid.DefaultOptions()
	opts.Interpolate, opts.FPS, opts.FrameModel, opts.InterpModel = img2vid.MaxInterpolate, 1, frameModel, *interp
	lim := img2vid.DefaultLimits()
	plan := func(s int) (img2vid.Plan, error) {
		ims := []img2vid.Image{{Label: "a.png", Width: s, Height: s}, {Label: "b.png", Width: s, Height: s}}
		models := []img2vid.ModelInfo{{Name: *interp, Kind: img2vid.KindInterpolate, Available: true}, {Name: "sr", Kind: img2vid.KindFrame, Scale: scale, Available: true}}
		return img2vid.MakePlan(img2vid.Job{Images: ims, Options: opts, Limits: lim, Models: models})
	}
	s := *side
	if s == 0 { // the largest even side whose plan passes every default limit
		for next := 16; ; next += 16 {
			if _, err := plan(next); err != nil {
				break
			}
			s = next
		}
	}
	p, err := plan(s)
	if err != nil {
		log.Fatalf("side %d: %v", s, err)
	}
	// Two different images of smooth texture, so flow really warps and no
	// pair is held as a scene cut.
	a, b := filepath.Join(dir, "a.png"), filepath.Join(dir, "b.png")
	writePNG(a, s, 0)
	writePNG(b, s, 3)

	fmt.Printf("machine: %d CPUs, %s; %s\n", runtime.NumCPU(), machine.CPUModel(), time.Now().Format("2006-01-02"))
	fmt.Printf("job: 2 images of %dx%d, frame model %q (x%d) -> frames of %dx%d, interpolate %d with %s -> %d frames\n",
		s, s, frameModel, scale, p.Width, p.Height, opts.Interpolate, *interp, p.Frames)
	fmt.Printf("plan: peak %d MiB (read-ahead %d, held %d, interpolation %d, encoder %d, process %d); ceiling max_memory_mb=%d\n\n",
		p.Memory.Peak>>20, p.Memory.ReadAhead>>20, p.Memory.Held>>20, p.Memory.Interpolation>>20, p.Memory.Encoder>>20, p.Memory.Base>>20, lim.MemoryMB)
	if *planOnly {
		return
	}
	fmt.Printf("%-11s %12s %10s\n", "GOMAXPROCS", "peak memory", "wall")
	peaks := map[int]int64{}
	for _, procs := range []int{1, 16} {
		out := filepath.Join(dir, "out.mp4")
		cmd := exec.Command(*bin, "convert", "--interpolate", "16", "--interp-model", *interp, "--fps", "1", "--device", "cpu",
			"--models-dir", dir, "--log-level", "warn", a, b, out)
		if frameModel != "" {
			cmd.Args = append(cmd.Args[:2], append([]string{"--frame-model", frameModel}, cmd.Args[2:]...)...)
		}
		cmd.Env = append(os.Environ(), fmt.Sprintf("GOMAXPROCS=%d", procs))
		var stderr strings.Builder
		cmd.Stderr = &stderr
		start := time.Now()
		if err := cmd.Start(); err != nil {
			log.Fatal(err)
		}
		stop := proctest.TreeRSS(cmd.Process.Pid)
		err := cmd.Wait()
		peak := stop()
		if err != nil {
			log.Fatalf("GOMAXPROCS=%d: %v\n%s", procs, err, stderr.String())
		}
		peaks[procs] = peak
		fmt.Printf("%-11d %8d MiB %9.1fs\n", procs, peak>>20, time.Since(start).Seconds())
	}
	ratio := float64(peaks[16]) / float64(peaks[1])
	fmt.Printf("\npeak 16 vs 1: %.3fx (target within 1.10x); worst peak %d MiB of the %d MiB ceiling (plan said %d MiB)\n",
		ratio, max(peaks[1], peaks[16])>>20, lim.MemoryMB, p.Memory.Peak>>20)
}

// writePNG writes a side x side image of smooth stripes, shifted by shift
// pixels.
func writePNG(path string, side, shift int) {
	img := image.NewNRGBA(image.Rect(0, 0, side, side))
	for y := range side {
		for x := range side {
			v := uint8((x + shift) * 255 / side)
			img.SetNRGBA(x, y, color.NRGBA{v, uint8(y * 255 / side), 128, 255})
		}
	}
	f, err := os.Create(path)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	if err := (&png.Encoder{CompressionLevel: png.BestSpeed}).Encode(f, img); err != nil {
		log.Fatal(err)
	}
}
