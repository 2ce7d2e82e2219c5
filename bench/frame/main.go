// Command frame measures a per-frame model at 1080p: seconds per frame
// through the inference package's FrameModel (tiling, conversion,
// feathering), against the bare ONNX Runtime session time on the same tiles
// and against the onnxruntime-node binding running the same model on the
// same tiles in the same run. The FrameModel and the bare session alternate
// frame by frame after warm-up frames; it prints medians and means of wall
// and process CPU time, page faults per frame, the load average before and
// after (the machine may be shared), and the pipeline overhead against the
// target of 10%.
//
//	go run ./bench/frame [-frames 6] [-warmup 3] [-threads 0] [-cpuprofile FILE] [-model ../shared/models/quicksrnetsmall-2x-360p.onnx]
//
// The node comparison needs node and `npm ci --ignore-scripts` in
// inference/testdata/node; without them it is left out and said so.
package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"image"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"
	"unsafe"

	"github.com/img2vid/img2vid/bench/internal/machine"

	"github.com/img2vid/img2vid/inference"
	ort "github.com/yalue/onnxruntime_go"
)

// The model's fixed input and the benchmark's frame.
const (
	tileW, tileH = 640, 360
	overlap      = inference.DefaultTileOverlap
)

// target is the bound on what the frame path may add to the
// model's own time.
const target = 0.10

// config is what the command line sets.
type config struct {
	model, frame, lib, script, cpuProfile string
	frames, warmup, threads               int
}

func main() {
	var c config
	flag.StringVar(&c.model, "model", "../shared/models/quicksrnetsmall-2x-360p.onnx", "fixed-size 2x frame model (input image [1,3,360,640])")
	flag.StringVar(&c.frame, "frame", "../shared/data/aquarium/frame_000.jpg", "a 1920x1080 image")
	flag.IntVar(&c.frames, "frames", 6, "timed frames per contender")
	flag.IntVar(&c.warmup, "warmup", 3, "untimed frames per contender first: the first runs set up ONNX Runtime's buffers and grow the Go heap to its steady size")
	flag.IntVar(&c.threads, "threads", 0, "intra-op threads per session (0: one per core)")
	flag.StringVar(&c.lib, "ort-lib", os.Getenv("ONNXRUNTIME_LIB"), "ONNX Runtime library (default: searched)")
	flag.StringVar(&c.script, "node-script", "inference/testdata/node/run.js", "the onnxruntime-node runner")
	flag.StringVar(&c.cpuProfile, "cpuprofile", "", "write a CPU profile of the timed frames to this file")
	flag.Parse()
	if c.frames < 1 || c.warmup < 0 {
		fmt.Fprintln(os.Stderr, "bench/frame: -frames must be at least 1 and -warmup at least 0")
		os.Exit(2)
	}
	if err := run(c); err != nil {
		fmt.Fprintln(os.Stderr, "bench/frame:", err)
		os.Exit(1)
	}
}

func run(c config) error {
	frame, err := machine.DecodeJPEG(c.frame)
	if err != nil {
		return err
	}
	if frame.Rect.Dx() != 1920 || frame.Rect.Dy() != 1080 {
		return fmt.Errorf("%s is %dx%d, want 1920x1080", c.frame, frame.Rect.Dx(), frame.Rect.Dy())
	}
	modelPath, err := filepath.Abs(c.model)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "bench-frame-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := os.Symlink(modelPath, filepath.Join(dir, "sr.onnx")); err != nil {
		return err
	}
	manifest := `{"name": "sr", "kind": "frame", "file": "sr.onnx", "inputs": ["image"], "outputs": ["upscaled_image"]}`
	if err := os.WriteFile(filepath.Join(dir, "sr.json"), []byte(manifest), 0o644); err != nil {
		return err
	}
	rt, err := inference.Open(inference.Config{Library: c.lib, Device: inference.DeviceCPU, Threads: c.threads, ModelsDir: dir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	defer rt.Close()
	fm, err := rt.FrameModel("sr")
	if err != nil {
		return err
	}
	info := rt.Info()
	xs, ys := inference.TileOrigins(1920, tileW, overlap), inference.TileOrigins(1080, tileH, overlap)
	tiles := len(xs) * len(ys)
	fmt.Printf("model %s, 1920x1080 -> 3840x2160, %d tiles of %dx%d (overlap %d)\n", filepath.Base(c.model), tiles, tileW, tileH, overlap)
	fmt.Printf("ONNX Runtime %s (%s) on %s, %d CPUs, threads %d, %d timed frames after %d warm-up, %s\n",
		info.Version, info.Provider, info.Library, runtime.NumCPU(), c.threads, c.frames, c.warmup, time.Now().Format("2006-01-02"))

	// The same tiles as tensors for the bare session.
	// The harness's own buffers (the tiles, and the bare session's outputs
	// below: 220 MB) live outside the Go heap: inside it they would double
	// the heap the collector paces itself by, so FrameModel.Apply would take
	// fresh memory from the system for every frame where a program of its
	// own size reuses freed memory.
	in, err := offHeap(tiles * 3 * tileW * tileH)
	if err != nil {
		return err
	}
	defer unmap(in)
	k := 0
	for _, y := range ys {
		for _, x := range xs {
			fill(in[k*3*tileW*tileH:(k+1)*3*tileW*tileH], frame, x, y)
			k++
		}
	}
	bare, err := newBareSession(modelPath, in, tiles, c.threads)
	if err != nil {
		return err
	}
	defer bare.close()
	// Warm-up frames first, then the two alternate, in turns of the order,
	// so that a change in the machine's load hits both alike; medians keep
	// a frame slowed by a neighbour's burst from moving the result, and the
	// means are printed beside them.
	load0 := machine.LoadAvg()
	if c.cpuProfile != "" {
		f, err := os.Create(c.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	var pipe, base samples
	for i := range c.warmup + c.frames {
		apply := func() error {
			m, err := measure(func() (time.Duration, error) {
				start := time.Now()
				_, err := fm.Apply(context.Background(), frame)
				return time.Since(start), err
			})
			if i >= c.warmup {
				pipe.add(m)
			}
			return err
		}
		session := func() error {
			m, err := measure(bare.pass)
			if i >= c.warmup {
				base.add(m)
			}
			return err
		}
		order := []func() error{apply, session}
		if i%2 == 1 {
			order[0], order[1] = session, apply
		}
		for _, f := range order {
			if err := f(); err != nil {
				return err
			}
		}
	}
	bare.close()
	load1 := machine.LoadAvg()
	fmt.Printf("load average before %s, after %s (%d CPUs shared with whatever else runs)\n", load0, load1, runtime.NumCPU())
	fmt.Printf("%-28s %19s %19s %12s\n", "seconds per frame", "wall: median mean", "CPU: median mean", "page faults")
	for _, r := range []struct {
		name string
		s    samples
	}{{"FrameModel.Apply", pipe}, {"bare session, same tiles", base}} {
		fmt.Printf("%-28s %9.3f %9.3f %9.3f %9.3f %12.0f\n", r.name, r.s.wall.Median(), r.s.wall.Mean(), r.s.cpu.Median(), r.s.cpu.Mean(), r.s.faults.Mean())
	}
	over := pipe.wall.Median()/base.wall.Median() - 1
	verdict := "meets"
	if over > target {
		verdict = "MISSES"
	}
	fmt.Printf("pipeline overhead: %+.1f%% on the median wall time (%s the target <= %+.0f%%); on the mean %+.1f%%; on CPU time %+.1f%% (median) %+.1f%% (mean)\n",
		100*over, verdict, 100*target, 100*(pipe.wall.Mean()/base.wall.Mean()-1),
		100*(pipe.cpu.Median()/base.cpu.Median()-1), 100*(pipe.cpu.Mean()/base.cpu.Mean()-1))
	fmt.Printf("per-frame wall times: FrameModel.Apply %s; bare session %s\n", pipe.wall, base.wall)
	fmt.Printf("per-frame page faults: FrameModel.Apply %s\n", pipe.faults)

	node, err := nodeSeconds(c.script, modelPath, in, c.frames, dir)
	if err != nil {
		fmt.Printf("onnxruntime-node: not measured: %v\n", err)
		return nil
	}
	fmt.Printf("%-28s %8.3f s/frame\n", "onnxruntime-node, same tiles", node)
	fmt.Printf("FrameModel.Apply / onnxruntime-node: %.2f; bare Go session / onnxruntime-node: %.2f\n", pipe.wall.Median()/node, base.wall.Median()/node)
	return nil
}

// sample is one contender's wall time, process CPU time and minor page
// faults (each a fresh page of memory touched) on one frame.
type sample struct{ wall, cpu, faults float64 }

// measure runs f, which returns the wall time that counts, and adds the
// CPU time the whole process spent meanwhile: the model's threads and the
// Go side alike, and far less swayed by other programs than wall time.
func measure(f func() (time.Duration, error)) (sample, error) {
	var r0, r1 syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &r0); err != nil {
		return sample{}, fmt.Errorf("getrusage: %w", err)
	}
	d, err := f()
	if err != nil {
		return sample{}, err
	}
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &r1); err != nil {
		return sample{}, fmt.Errorf("getrusage: %w", err)
	}
	cpu := time.Duration(r1.Utime.Nano() + r1.Stime.Nano() - r0.Utime.Nano() - r0.Stime.Nano())
	return sample{wall: d.Seconds(), cpu: cpu.Seconds(), faults: float64(r1.Minflt - r0.Minflt)}, nil
}

// samples collects one contender's frames.
type samples struct{ wall, cpu, faults machine.Series }

func (s *samples) add(m sample) {
	s.wall = append(s.wall, m.wall)
	s.cpu = append(s.cpu, m.cpu)
	s.faults = append(s.faults, m.faults)
}

// fill writes the tile at (x0, y0) as NCHW RGB in [0, 1], the model's
// input; the frame is large enough that no tile needs padding.
func fill(dst []float32, img *image.NRGBA, x0, y0 int) {
	plane := tileW * tileH
	for y := range tileH {
		for x := range tileW {
			p := img.Pix[img.PixOffset(x0+x, y0+y):]
			for c := range 3 {
				dst[c*plane+y*tileW+x] = float32(p[c]) / 255
			}
		}
	}
}

// bareSession is the model's own session with the tiles already tensors,
// so a pass times Run alone.
type bareSession struct {
	s         *ort.DynamicAdvancedSession
	ins, outs []ort.Value
	out       []float32 // the outputs' memory, off the Go heap
}

func newBareSession(model string, in []float32, tiles, threads int) (*bareSession, error) {
	opts, err := inference.SessionOptions(threads)
	if err != nil {
		return nil, err
	}
	defer opts.Destroy()
	s, err := ort.NewDynamicAdvancedSession(model, []string{"image"}, []string{"upscaled_image"}, opts)
	if err != nil {
		return nil, err
	}
	b := &bareSession{s: s}
	item := 3 * tileW * tileH
	if b.out, err = offHeap(tiles * 4 * item); err != nil {
		b.close()
		return nil, err
	}
	for k := range tiles {
		x, err := ort.NewTensor(ort.NewShape(1, 3, tileH, tileW), in[k*item:(k+1)*item])
		if err != nil {
			b.close()
			return nil, err
		}
		b.ins = append(b.ins, x)
		y, err := ort.NewTensor(ort.NewShape(1, 3, 2*tileH, 2*tileW), b.out[4*k*item:4*(k+1)*item])
		if err != nil {
			b.close()
			return nil, err
		}
		b.outs = append(b.outs, y)
	}
	return b, nil
}

// pass runs every tile once and returns the time spent in Run.
func (b *bareSession) pass() (time.Duration, error) {
	var total time.Duration
	for k := range b.ins {
		start := time.Now()
		if err := b.s.Run(b.ins[k:k+1], b.outs[k:k+1]); err != nil {
			return 0, err
		}
		total += time.Since(start)
	}
	return total, nil
}

// close destroys the tensors and the session; it may be called twice.
func (b *bareSession) close() {
	for _, v := range append(b.ins, b.outs...) {
		v.Destroy()
	}
	b.ins, b.outs = nil, nil
	if b.out != nil {
		unmap(b.out)
		b.out = nil
	}
	if b.s != nil {
		b.s.Destroy()
		b.s = nil
	}
}

// offHeap returns n float32 of zeroed memory mapped outside the Go heap;
// unmap gives it back.
func offHeap(n int) ([]float32, error) {
	b, err := syscall.Mmap(-1, 0, 4*n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		return nil, fmt.Errorf("mapping %d MB: %w", 4*n>>20, err)
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), n), nil
}

func unmap(f []float32) {
	// Unmapping what offHeap mapped only fails for a bad address.
	_ = syscall.Munmap(unsafe.Slice((*byte)(unsafe.Pointer(&f[0])), 4*len(f)))
}

// nodeSeconds runs the same tiles through onnxruntime-node and returns its
// seconds per pass over them.
func nodeSeconds(script, model string, in []float32, frames int, dir string) (float64, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return 0, fmt.Errorf("node is not installed")
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(script), "node_modules", "onnxruntime-node")); err != nil {
		return 0, fmt.Errorf("onnxruntime-node is not installed (npm ci --ignore-scripts --prefix %s)", filepath.Dir(script))
	}
	raw := make([]byte, 4*len(in))
	for i, f := range in {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(f))
	}
	inPath, outPath := filepath.Join(dir, "tiles.f32"), filepath.Join(dir, "out.f32")
	if err := os.WriteFile(inPath, raw, 0o644); err != nil {
		return 0, err
	}
	cmd := exec.Command(node, script, model, "image", "upscaled_image", fmt.Sprintf("1,3,%d,%d", tileH, tileW), inPath, outPath, fmt.Sprint(frames+1))
	cmd.Stderr = os.Stderr
	res, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("%v: %w", cmd, err)
	}
	var r struct {
		Seconds float64 `json:"seconds_per_pass"`
		Version string  `json:"version"`
	}
	if err := json.Unmarshal(res, &r); err != nil {
		return 0, fmt.Errorf("reading the node runner's report %q: %w", res, err)
	}
	return r.Seconds, nil
}
