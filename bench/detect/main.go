// Command detect measures a detect model at 1080p: seconds per frame
// through the inference package's Detector (letterbox of the 1920x1080
// frame into the model's input, the run, decoding, non-maximum
// suppression, boxes mapped back) against the bare ONNX Runtime session
// run on an input of the same shape, and what drawing the boxes on a copy
// of the frame adds, as a job does. The contenders alternate frame by
// frame after warm-up frames; it prints medians and means of wall and
// process CPU time (the model's threads and the Go side alike, and far
// less swayed than wall time by other programs on a shared machine) and
// the overhead against the target of 10%.
//
//	go run ./bench/detect [-frames 40] [-warmup 5] [-threads 1] [-model ../shared/models/yolox-nano.onnx]
package main

import (
	"context"
	"flag"
	"fmt"
	"image"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/img2vid/img2vid/bench/internal/machine"

	"github.com/img2vid/img2vid"
	"github.com/img2vid/img2vid/annotate"
	"github.com/img2vid/img2vid/inference"
	ort "github.com/yalue/onnxruntime_go"
)

// target is the bound on what the detect path may add to the model's own
// time.
const target = 0.10

// The model's input: YOLOX-Nano's fixed 416x416, 80 classes.
const (
	side    = 416
	rows    = 3549
	classes = 80
)

func main() {
	shared := os.Getenv("IMG2VID_TESTDATA")
	if shared == "" {
		shared = "../shared"
	}
	model := flag.String("model", filepath.Join(shared, "models", "yolox-nano.onnx"), "YOLOX-Nano (input images [1,3,416,416], output [1,3549,85])")
	frameFile := flag.String("frame", filepath.Join(shared, "data", "aquarium", "frame_000.jpg"), "a 1920x1080 image")
	frames := flag.Int("frames", 40, "timed frames per contender")
	warmup := flag.Int("warmup", 5, "untimed frames per contender first")
	threads := flag.Int("threads", 1, "intra-op threads per session (YOLOX-Nano runs fastest on 1; 0: one per core)")
	lib := flag.String("ort-lib", os.Getenv("ONNXRUNTIME_LIB"), "ONNX Runtime library (default: searched)")
	flag.Parse()
	if *frames < 1 || *warmup < 0 {
		fmt.Fprintln(os.Stderr, "bench/detect: -frames must be at least 1 and -warmup at least 0")
		os.Exit(2)
	}
	if err := run(*model, *frameFile, *lib, *frames, *warmup, *threads); err != nil {
		fmt.Fprintln(os.Stderr, "bench/detect:", err)
		os.Exit(1)
	}
}

func run(model, frameFile, lib string, frames, warmup, threads int) error {
	frame, err := machine.DecodeJPEG(frameFile)
	if err != nil {
		return err
	}
	if frame.Rect.Dx() != 1920 || frame.Rect.Dy() != 1080 {
		return fmt.Errorf("%s is %dx%d, want 1920x1080", frameFile, frame.Rect.Dx(), frame.Rect.Dy())
	}
	modelPath, err := filepath.Abs(model)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "bench-detect-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := os.Symlink(modelPath, filepath.Join(dir, "det.onnx")); err != nil {
		return err
	}
	// The timing does not depend on the names, only on their number.
	labels := make([]string, classes)
	for i := range labels {
		labels[i] = fmt.Sprintf("class%d", i)
	}
	if err := os.WriteFile(filepath.Join(dir, "labels.txt"), []byte(strings.Join(labels, "\n")), 0o644); err != nil {
		return err
	}
	manifest := `{"name": "det", "kind": "detect", "file": "det.onnx", "decoder": "yolox", "channels": "BGR", "range": [0, 255],
		"letterbox": "top-left", "labels_file": "labels.txt", "score_threshold": 0.3, "nms": "agnostic"}`
	if err := os.WriteFile(filepath.Join(dir, "det.json"), []byte(manifest), 0o644); err != nil {
		return err
	}
	rt, err := inference.Open(inference.Config{Library: lib, Device: inference.DeviceCPU, Threads: threads, ModelsDir: dir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	defer rt.Close()
	det, err := rt.Detector("det")
	if err != nil {
		return err
	}
	bare, err := newBare(modelPath, frame, threads)
	if err != nil {
		return err
	}
	defer bare.close()
	info := rt.Info()
	fmt.Printf("model %s, 1920x1080 frame letterboxed to %dx%d\n", filepath.Base(model), side, side)
	fmt.Printf("ONNX Runtime %s (%s), %d CPUs, threads %d, %d timed frames after %d warm-up, %s\n",
		info.Version, info.Provider, runtime.NumCPU(), threads, frames, warmup, time.Now().Format("2006-01-02"))

	canvas := image.NewNRGBA(frame.Rect)
	var detect, detectDraw, base, detectCPU, detectDrawCPU, baseCPU machine.Series
	var found int
	load0 := machine.LoadAvg()
	for i := range warmup + frames {
		contenders := []func() error{
			func() error {
				start, cpu0 := time.Now(), machine.CPUTime()
				dets, err := det.Detect(context.Background(), frame, img2vid.DetectParams{})
				d, cpu1 := time.Since(start), machine.CPUTime()
				found = len(dets)
				// What a job adds on top: the copy the boxes are drawn on.
				copy(canvas.Pix, frame.Pix)
				annotate.Draw(canvas, dets)
				if i >= warmup {
					detect = append(detect, d.Seconds())
					detectCPU = append(detectCPU, (cpu1 - cpu0).Seconds())
					detectDraw = append(detectDraw, time.Since(start).Seconds())
					detectDrawCPU = append(detectDrawCPU, (machine.CPUTime() - cpu0).Seconds())
				}
				return err
			},
			func() error {
				cpu0 := machine.CPUTime()
				d, err := bare.pass()
				if i >= warmup {
					base = append(base, d.Seconds())
					baseCPU = append(baseCPU, (machine.CPUTime() - cpu0).Seconds())
				}
				return err
			},
		}
		if i%2 == 1 {
			slices.Reverse(contenders)
		}
		for _, f := range contenders {
			if err := f(); err != nil {
				return err
			}
		}
	}
	fmt.Printf("load average before %s, after %s\n", load0, machine.LoadAvg())
	fmt.Printf("%-34s %21s %21s\n", "ms per frame", "wall: median mean", "CPU: median mean")
	for _, r := range []struct {
		name      string
		wall, cpu machine.Series
	}{{"bare session, same input shape", base, baseCPU}, {"Detector.Detect", detect, detectCPU}, {"Detect + draw on a copy", detectDraw, detectDrawCPU}} {
		fmt.Printf("%-34s %10.2f %10.2f %10.2f %10.2f\n", r.name, 1000*r.wall.Median(), 1000*r.wall.Mean(), 1000*r.cpu.Median(), 1000*r.cpu.Mean())
	}
	verdict := func(over float64) string {
		if over > target {
			return "MISSES"
		}
		return "meets"
	}
	wall, cpu := detect.Median()/base.Median()-1, detectCPU.Median()/baseCPU.Median()-1
	fmt.Printf("detection overhead (target <= %+.0f%%): wall %+.1f%% on the median (%s), %+.1f%% on the mean; CPU %+.1f%% on the median (%s), %+.1f%% on the mean\n",
		100*target, 100*wall, verdict(wall), 100*(detect.Mean()/base.Mean()-1), 100*cpu, verdict(cpu), 100*(detectCPU.Mean()/baseCPU.Mean()-1))
	fmt.Printf("with drawing on a copy: wall %+.1f%%, CPU %+.1f%% (medians); %d boxes per frame\n",
		100*(detectDraw.Median()/base.Median()-1), 100*(detectDrawCPU.Median()/baseCPU.Median()-1), found)
	return nil
}

// bare is the model's own session with its input already a tensor, so a
// pass times Run alone.
type bare struct {
	s       *ort.DynamicAdvancedSession
	in, out *ort.Tensor[float32]
}

// newBare makes the session and its input: the frame shrunk into the
// model's input, top-left, as the detector does (nearest pixel here: the
// model's time does not depend on the values).
func newBare(model string, frame *image.NRGBA, threads int) (*bare, error) {
	opts, err := inference.SessionOptions(threads)
	if err != nil {
		return nil, err
	}
	defer opts.Destroy()
	s, err := ort.NewDynamicAdvancedSession(model, []string{"images"}, []string{"output"}, opts)
	if err != nil {
		return nil, err
	}
	b := &bare{s: s}
	data := make([]float32, 3*side*side)
	for i := range data {
		data[i] = 114
	}
	r := float64(side) / 1920
	for y := range int(1080 * r) {
		for x := range side {
			p := frame.Pix[frame.PixOffset(int(float64(x)/r), int(float64(y)/r)):]
			for c := range 3 {
				data[(2-c)*side*side+y*side+x] = float32(p[c])
			}
		}
	}
	if b.in, err = ort.NewTensor(ort.NewShape(1, 3, side, side), data); err != nil {
		b.close()
		return nil, err
	}
	if b.out, err = ort.NewEmptyTensor[float32](ort.NewShape(1, rows, 5+classes)); err != nil {
		b.close()
		return nil, err
	}
	return b, nil
}

func (b *bare) pass() (time.Duration, error) {
	start := time.Now()
	err := b.s.Run([]ort.Value{b.in}, []ort.Value{b.out})
	return time.Since(start), err
}

func (b *bare) close() {
	for _, t := range []*ort.Tensor[float32]{b.in, b.out} {
		if t != nil {
			t.Destroy()
		}
	}
	b.in, b.out = nil, nil
	if b.s != nil {
		b.s.Destroy()
		b.s = nil
	}
}
