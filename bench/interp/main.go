// Command interp measures the quality and speed of frame interpolation on a
// real clip, in one run on one machine, at two spacings: 2x, every other
// frame held out and recreated at t=0.5 from its neighbours, and 4x, only
// every 4th frame kept and the three between recreated at t=0.25, 0.5 and
// 0.75 (4x the motion per pair), and for speed also 16x (every 16th frame
// kept, fifteen frames made per pair, where a model that estimates the
// motion once per pair runs only its synthesis per frame). Each method (the named built-in models,
// repeating the previous frame, ffmpeg's motion-compensated minterpolate)
// gets its mean PSNR and SSIM against the held-out frames at both
// spacings, and its frames per second and CPU time per frame at 2x. Speed
// is timed apart from the scoring, in rounds: each round runs every method
// once over the whole 2x clip, in an order that reverses from one round to
// the next, so that a drift in the machine's speed (a shared VM's is tens
// of percent within minutes) lands on every method alike. The table gives
// each method's median over the rounds, and its ratios to minterpolate are
// the medians of the ratios within each round, with their range. With
// ffmpeg, each method's 2x video (kept and recreated frames in order) is
// also encoded as img2vid's default video is (H.264, x264 veryfast, CRF
// 23, yuv420p) and decoded, and its recreated frames scored again: what a
// viewer of the default output sees, where the encoder's own loss narrows
// the gaps.
//
// It also times what a user waits for: each model's session start-up
// (its first load in the process), and, cold, a whole
// `img2vid convert --interpolate 2` of the clip at -cold-width from
// process start to finished file, beside ffmpeg making the same video
// with minterpolate from the same files, each run in its own process.
//
//	go run ./bench/interp [-data DIR] [-width 960] [-lib PATH] [-threads 2] [-models flow3,flow2,flow,blend] [-rounds 5] [-img2vid bin/img2vid] [-cold-width 640]
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
	"time"

	"github.com/img2vid/img2vid/bench/internal/machine"

	"github.com/img2vid/img2vid"
	"github.com/img2vid/img2vid/inference"
	"github.com/img2vid/img2vid/internal/repo"
	"github.com/img2vid/img2vid/video"
)

// minterpolateFilter is ffmpeg's own motion-compensated interpolation at its
// best settings, making rate times its input's frame rate. minterpolate
// takes YUV only: yuv444p keeps full chroma so that the comparison measures
// the interpolation, not chroma subsampling.
func minterpolateFilter(rate int) string {
	return fmt.Sprintf("format=yuv444p,minterpolate=fps=%d:mi_mode=mci:mc_mode=aobmc:me_mode=bidir:vsbmc=1,format=rgb24", rate)
}

// spacings are the measured cases: keep every step-th frame, recreate the
// ones between. Quality is scored at every spacing but the last, whose
// 15 frames per pair are for speed (three pairs of the 50-frame clip).
var spacings = []int{2, 4, 16}

func main() {
	data := flag.String("data", "", "folder of the clip's frames, in name order (default: ../shared/data/aquarium beside the repository)")
	width := flag.Int("width", 960, "width the frames are resized to (by area), keeping the aspect ratio")
	lib := flag.String("lib", os.Getenv("ONNXRUNTIME_LIB"), "ONNX Runtime shared library or its folder (default: $ONNXRUNTIME_LIB, then the usual places)")
	threads := flag.Int("threads", 2, "ONNX Runtime intra-op threads")
	device := flag.String("device", "cpu", "execution provider: cpu, cuda or auto")
	modelNames := flag.String("models", "flow3,flow2,flow,blend", "comma-separated interpolation models to measure")
	modelsDir := flag.String("models-dir", "", "folder of extra models (NAME.json beside its .onnx) to measure besides the built-in ones")
	ffmpeg := flag.String("ffmpeg", "ffmpeg", "ffmpeg executable; empty skips minterpolate")
	rounds := flag.Int("rounds", 5, "timing rounds, each running every method once over the 2x clip")
	img2vidBin := flag.String("img2vid", "bin/img2vid", "img2vid executable for the cold runs; empty skips them")
	coldWidth := flag.Int("cold-width", 640, "width of the frames the cold runs convert")
	flag.Parse()
	if *rounds < 1 {
		fmt.Fprintln(os.Stderr, "interp: -rounds must be at least 1")
		os.Exit(2)
	}
	names := strings.Split(*modelNames, ",")
	if *data == "" {
		shared, err := repo.Shared()
		if err != nil {
			fmt.Fprintf(os.Stderr, "interp: %v; pass -data\n", err)
			os.Exit(2)
		}
		*data = filepath.Join(shared, "data", "aquarium")
	}
	if err := run(*data, *width, *lib, *threads, *device, *modelsDir, names, *ffmpeg, *rounds); err != nil {
		fmt.Fprintln(os.Stderr, "interp:", err)
		os.Exit(1)
	}
	if *img2vidBin != "" && *ffmpeg != "" {
		if err := cold(*data, *coldWidth, *img2vidBin, *ffmpeg, *modelsDir, names, *rounds); err != nil {
			fmt.Fprintln(os.Stderr, "interp, cold runs:", err)
			os.Exit(1)
		}
	}
}

// quality is a method's mean scores over the held-out frames of one spacing.
type quality struct {
	psnr float64 // dB
	ssim float64 // on luma, 1 is identical
}

// score is one method's result.
type score struct {
	method string
	q      map[int]quality // by spacing
	// speed holds, by spacing, one timing of the clip per round; none
	// where speed is not meaningful (repeating a frame).
	speed map[int][]speed
	// time runs the method once over the clip at a spacing and times it;
	// nil where speed is not measured.
	time func(step int) (speed, error)
	// session is the time the model's first load took: its sessions'
	// start-up.
	session time.Duration
	// h264 is the 2x quality after the default encode; psnr 0 when not
	// measured.
	h264 quality
	// seq2 is the 2x video before encoding: the kept frames and the
	// recreated ones between them, in order, frames[0] to frames[2*pairs].
	seq2 []*image.NRGBA
}

// heldOut lists, for one spacing, the kept frames' indices: pair k is
// frames keep[k] and keep[k+1], and the frames between are held out.
func heldOut(n, step int) []int {
	var keep []int
	for i := 0; i < n; i += step {
		keep = append(keep, i)
	}
	return keep
}

// speed is one timed run over the 2x clip.
type speed struct {
	fps float64 // interpolated frames per second
	// cpuMS is the CPU time per interpolated frame, all threads together,
	// in milliseconds. For the models it is the process's CPU time during
	// the interpolation calls alone (the Go runtime's background work in
	// those moments is counted); for minterpolate, ffmpeg's.
	cpuMS float64
}

func run(data string, width int, lib string, threads int, device, modelsDir string, modelNames []string, ffmpeg string, rounds int) error {
	frames, err := loadClip(data, width)
	if err != nil {
		return err
	}
	if len(frames) < 1+slices.Max(spacings) {
		return fmt.Errorf("%s: need at least %d frames to hold out %d in a row, found %d", data, 1+slices.Max(spacings), slices.Max(spacings)-1, len(frames))
	}
	size := frames[0].Rect.Size()
	fmt.Printf("clip: %d frames from %s at %dx%d\n", len(frames), data, size.X, size.Y)
	for _, step := range spacings {
		keep := heldOut(len(frames), step)
		fmt.Printf("%dx: every %s frame kept (%d pairs), %d held-out frames recreated\n", step, ordinal(step), len(keep)-1, (len(keep)-1)*(step-1))
	}

	repeat := score{method: "repeat-previous", q: map[int]quality{}, speed: map[int][]speed{}}
	keep2 := heldOut(len(frames), 2)
	for _, i := range keep2[:len(keep2)-1] {
		repeat.seq2 = append(repeat.seq2, frames[i], frames[i])
	}
	repeat.seq2 = append(repeat.seq2, frames[keep2[len(keep2)-1]])
	for _, step := range spacings {
		var q quality
		n := 0
		for _, i := range heldOut(len(frames), step) {
			for j := 1; j < step && i+step < len(frames); j++ {
				q.psnr += psnr(frames[i], frames[i+j])
				q.ssim += ssim(frames[i], frames[i+j])
				n++
			}
		}
		repeat.q[step] = quality{q.psnr / float64(n), q.ssim / float64(n)}
	}
	scores := []score{repeat}

	rt, err := inference.Open(inference.Config{Library: lib, Device: device, Threads: threads, ModelsDir: modelsDir,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))})
	if err != nil {
		return fmt.Errorf("opening ONNX Runtime: %w", err)
	}
	defer rt.Close()
	info := rt.Info()
	fmt.Printf("runtime: ONNX Runtime %s (%s), provider %s, %d threads\n", info.Version, info.Library, info.Provider, threads)
	for _, name := range modelNames {
		s, err := measureModel(rt, strings.TrimSpace(name), frames)
		if err != nil {
			return err
		}
		scores = append(scores, s)
	}
	if ffmpeg != "" {
		s, err := measureMinterpolate(ffmpeg, frames)
		if err != nil {
			return err
		}
		scores = append(scores, s)
		for i := range scores {
			if scores[i].h264, err = throughH264(ffmpeg, scores[i].seq2, frames); err != nil {
				return fmt.Errorf("%s: %w", scores[i].method, err)
			}
			scores[i].seq2 = nil
		}
	}

	if err := timeRounds(scores, rounds); err != nil {
		return err
	}
	report(scores, ffmpeg != "", rounds)
	return nil
}

// timeRounds times every method that has a time, rounds times at each
// spacing, in an order reversed every other round.
func timeRounds(scores []score, rounds int) error {
	var timed []int
	for i, s := range scores {
		if s.time != nil {
			timed = append(timed, i)
		}
	}
	fmt.Printf("timing: %d rounds over the clip at each of %v\n", rounds, spacings)
	for r := range rounds {
		order := slices.Clone(timed)
		if r%2 == 1 {
			slices.Reverse(order)
		}
		for _, step := range spacings {
			for _, i := range order {
				sp, err := scores[i].time(step)
				if err != nil {
					return fmt.Errorf("%s, %dx, timing round %d: %w", scores[i].method, step, r+1, err)
				}
				scores[i].speed[step] = append(scores[i].speed[step], sp)
			}
		}
	}

	return nil
}

// report prints the quality table, the speed table and each model's
// ratios to minterpolate (the last method) when it ran.
func report(scores []score, withFFmpeg bool, rounds int) {
	fmt.Printf("\n%-18s %9s %7s %9s %7s %9s %7s %10s\n", "method", "2x PSNR", "SSIM", "4x PSNR", "SSIM", "2x H.264", "SSIM", "session s")
	for _, s := range scores {
		h264, h264SSIM, session := "-", "-", "-"
		if s.h264.psnr > 0 {
			h264, h264SSIM = fmt.Sprintf("%.2f", s.h264.psnr), fmt.Sprintf("%.4f", s.h264.ssim)
		}
		if s.session > 0 {
			session = fmt.Sprintf("%.3f", s.session.Seconds())
		}
		fmt.Printf("%-18s %9.2f %7.4f %9.2f %7.4f %9s %7s %10s\n", s.method, s.q[2].psnr, s.q[2].ssim, s.q[4].psnr, s.q[4].ssim, h264, h264SSIM, session)
	}
	fmt.Printf("\nwarm speed, median of %d rounds: frames/s (CPU ms per frame)\n%-18s", rounds, "method")
	for _, step := range spacings {
		fmt.Printf(" %20s", fmt.Sprintf("%dx", step))
	}
	fmt.Println()
	for _, s := range scores {
		if len(s.speed[2]) == 0 {
			continue
		}
		fmt.Printf("%-18s", s.method)
		for _, step := range spacings {
			fmt.Printf(" %20s", fmt.Sprintf("%.2f (%.0f)", median(s.speed[step], func(p speed) float64 { return p.fps }),
				median(s.speed[step], func(p speed) float64 { return p.cpuMS })))
		}
		fmt.Println()
	}
	if last := scores[len(scores)-1]; withFFmpeg && len(last.speed[2]) > 0 {
		fmt.Println()
		for _, s := range scores[1 : len(scores)-1] {
			fmt.Printf("%s against minterpolate: 2x %+.2f dB, 4x %+.2f dB, 2x through H.264 %+.2f dB", s.method,
				s.q[2].psnr-last.q[2].psnr, s.q[4].psnr-last.q[4].psnr, s.h264.psnr-last.h264.psnr)
			for _, step := range spacings {
				fps := ratios(s.speed[step], last.speed[step], func(p speed) float64 { return p.fps })
				cpu := ratios(s.speed[step], last.speed[step], func(p speed) float64 { return p.cpuMS })
				fmt.Printf("; %dx %.2fx the frames/s (rounds %.2f-%.2f) at %.2fx the CPU time per frame", step,
					median(fps, id), slices.Min(fps), slices.Max(fps), median(cpu, id))
			}
			fmt.Println()
		}
	}
}

func id(v float64) float64 { return v }

// times are the t of the frames made between two kept frames at a spacing.
func times(step int) []float32 {
	ts := make([]float32, step-1)
	for j := range ts {
		ts[j] = float32(j+1) / float32(step)
	}
	return ts
}

// median is the median of f over xs (the mean of the middle two for an
// even count).
func median[T any](xs []T, f func(T) float64) float64 {
	v := make([]float64, len(xs))
	for i, x := range xs {
		v[i] = f(x)
	}
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// ratios is f of a over f of b, round by round: each method's speed against
// another's measured minutes apart at most.
func ratios(a, b []speed, f func(speed) float64) []float64 {
	out := make([]float64, min(len(a), len(b)))
	for i := range out {
		out[i] = f(a[i]) / f(b[i])
	}
	return out
}

func ordinal(n int) string {
	if n == 2 {
		return "2nd"
	}
	return fmt.Sprintf("%dth", n)
}

// measureModel recreates every held-out frame with the named model through
// the same Interpolator users get, one call per pair with every t of the
// pair, and scores them; its time runs the 2x clip again, timing the
// interpolation calls alone.
func measureModel(rt *inference.Runtime, name string, frames []*image.NRGBA) (score, error) {
	start := time.Now()
	m, err := rt.Interpolator(name)
	if err != nil {
		return score{}, fmt.Errorf("loading model %s: %w", name, err)
	}
	ctx := context.Background()
	s := score{method: name, q: map[int]quality{}, speed: map[int][]speed{}, session: time.Since(start)}
	for _, step := range spacings {
		ts := times(step)
		keep := heldOut(len(frames), step)
		var q quality
		for k := 0; k+1 < len(keep); k++ {
			i := keep[k]
			out, err := img2vid.InterpolateAll(ctx, m, frames[i], frames[i+step], ts)
			if err != nil {
				return score{}, fmt.Errorf("model %s, frames %d and %d: %w", name, i, i+step, err)
			}
			for j, o := range out {
				q.psnr += psnr(o, frames[i+j+1])
				q.ssim += ssim(o, frames[i+j+1])
			}
			if step == 2 {
				s.seq2 = append(s.seq2, frames[i], out[0])
			}
		}
		n := float64((len(keep) - 1) * (step - 1))
		s.q[step] = quality{q.psnr / n, q.ssim / n}
		if step == 2 {
			s.seq2 = append(s.seq2, frames[keep[len(keep)-1]])
		}
	}
	// The scoring above has let ONNX Runtime settle its allocations for
	// this size, so no timed call pays for them.
	s.time = func(step int) (speed, error) {
		keep, ts := heldOut(len(frames), step), times(step)
		var busy, cpu time.Duration
		for k := 0; k+1 < len(keep); k++ {
			i := keep[k]
			start, cpu0 := time.Now(), machine.CPUTime()
			_, err := img2vid.InterpolateAll(ctx, m, frames[i], frames[i+step], ts)
			busy += time.Since(start)
			cpu += machine.CPUTime() - cpu0
			if err != nil {
				return speed{}, fmt.Errorf("frames %d and %d: %w", i, i+step, err)
			}
		}
		n := float64((len(keep) - 1) * len(ts))
		return speed{fps: n / busy.Seconds(), cpuMS: float64(cpu.Milliseconds()) / n}, nil
	}
	return s, nil
}

// measureMinterpolate runs minterpolate at each spacing and scores it; its
// time is another run at 2x.
func measureMinterpolate(ffmpeg string, frames []*image.NRGBA) (score, error) {
	s := score{method: "minterpolate mci", q: map[int]quality{}, speed: map[int][]speed{}}
	for _, step := range spacings {
		out, _, err := runMinterpolate(ffmpeg, frames, step)
		if err != nil {
			return score{}, err
		}
		q, seq, err := scoreMinterpolate(out, frames, step)
		if err != nil {
			return score{}, err
		}
		s.q[step] = q
		if step == 2 {
			s.seq2 = seq
		}
	}
	s.time = func(step int) (speed, error) {
		_, sp, err := runMinterpolate(ffmpeg, frames, step)
		return sp, err
	}
	return s, nil
}

// runMinterpolate pipes the kept frames into ffmpeg at 1 frame/s and asks
// minterpolate for step frames/s: output frame step*k is kept frame k and
// output frame step*k+j is the one j/step of the way to kept frame k+1,
// i.e. held-out frame step*k+j. It returns ffmpeg's raw RGB output and the
// run's speed.
func runMinterpolate(ffmpeg string, frames []*image.NRGBA, step int) ([]byte, speed, error) {
	size := frames[0].Rect.Size()
	keep := heldOut(len(frames), step)
	pairs := len(keep) - 1
	var in bytes.Buffer
	for _, i := range keep {
		in.Write(rgb24(frames[i]))
	}
	// minterpolate emits a frame only once it has seen the next input, so
	// without a repeat of the last kept frame the last pair is never
	// interpolated.
	in.Write(rgb24(frames[keep[pairs]]))
	cmd := exec.Command(ffmpeg, "-hide_banner", "-loglevel", "error",
		"-f", "rawvideo", "-pix_fmt", "rgb24", "-s", fmt.Sprintf("%dx%d", size.X, size.Y), "-framerate", "1", "-i", "pipe:0",
		"-vf", minterpolateFilter(step), "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1")
	cmd.Stdin = &in
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return nil, speed{}, fmt.Errorf("ffmpeg minterpolate: %w: %s", err, tail(stderr.String()))
	}
	elapsed := time.Since(start)
	n := float64(pairs * (step - 1))
	// ffmpeg's wall time also covers reading and writing raw frames, a few
	// milliseconds per frame against the motion search's hundreds.
	cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	return out.Bytes(), speed{fps: n / elapsed.Seconds(), cpuMS: float64(cpu.Milliseconds()) / n}, nil
}

// scoreMinterpolate scores runMinterpolate's output at one spacing. The
// kept frames coming back unchanged proves the alignment. It also returns
// the video of kept and recreated frames in order (the kept ones as they
// went in).
func scoreMinterpolate(out []byte, frames []*image.NRGBA, step int) (quality, []*image.NRGBA, error) {
	size := frames[0].Rect.Size()
	keep := heldOut(len(frames), step)
	pairs := len(keep) - 1
	frameBytes := 3 * size.X * size.Y
	if got := len(out) / frameBytes; got < step*pairs+1 {
		return quality{}, nil, fmt.Errorf("ffmpeg minterpolate at %dx returned %d frames, want at least %d", step, got, step*pairs+1)
	}
	frame := func(i int) *image.NRGBA {
		return fromRGB24(out[i*frameBytes:(i+1)*frameBytes], size.X, size.Y)
	}
	var q quality
	var seq []*image.NRGBA
	for k := 0; k < pairs; k++ {
		// Only the RGB -> YUV 4:4:4 -> RGB round trip separates a kept
		// frame from its copy; anything under 40 dB means the output is
		// shifted in time.
		if p := psnr(frame(step*k), frames[keep[k]]); p < 40 {
			return quality{}, nil, fmt.Errorf("ffmpeg minterpolate output frame %d differs from input frame %d (%.1f dB): frames are misaligned", step*k, keep[k], p)
		}
		seq = append(seq, frames[keep[k]])
		for j := 1; j < step; j++ {
			o := frame(step*k + j)
			q.psnr += psnr(o, frames[keep[k]+j])
			q.ssim += ssim(o, frames[keep[k]+j])
			seq = append(seq, o)
		}
	}
	seq = append(seq, frames[keep[pairs]])
	n := float64(pairs * (step - 1))
	return quality{q.psnr / n, q.ssim / n}, seq, nil
}

// throughH264 encodes seq, a 2x video (seq[i] stands for frames[i]; the odd
// ones are recreated), with the encoder and the default options img2vid's
// own videos get, decodes it again and scores the odd frames against the
// clip's.
func throughH264(ffmpeg string, seq, frames []*image.NRGBA) (quality, error) {
	size := seq[0].Rect.Size()
	if size.X%2 != 0 || size.Y%2 != 0 {
		return quality{}, fmt.Errorf("the default encode needs even sides, the clip is %dx%d (choose another -width)", size.X, size.Y)
	}
	dir, err := os.MkdirTemp("", "interp-h264-")
	if err != nil {
		return quality{}, err
	}
	defer os.RemoveAll(dir)
	def := img2vid.DefaultOptions()
	file := filepath.Join(dir, "2x.mp4")
	enc, err := video.Start(context.Background(), ffmpeg, video.Spec{Input: video.InputRaw, Width: size.X, Height: size.Y,
		FPS: 2 * def.FPS, Format: img2vid.FormatMP4, Quality: def.Quality, Preset: def.Preset, Output: file}, nil)
	if err != nil {
		return quality{}, err
	}
	for _, f := range seq {
		if err := enc.WriteFrame(f); err != nil {
			enc.Abort()
			return quality{}, fmt.Errorf("encoding: %w", err)
		}
	}
	if err := enc.Close(); err != nil {
		return quality{}, fmt.Errorf("encoding: %w", err)
	}
	cmd := exec.Command(ffmpeg, "-hide_banner", "-loglevel", "error", "-i", file, "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1")
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return quality{}, fmt.Errorf("decoding %s: %w: %s", file, err, tail(stderr.String()))
	}
	frameBytes := 3 * size.X * size.Y
	if got := out.Len() / frameBytes; got != len(seq) {
		return quality{}, fmt.Errorf("decoding %s: %d frames, want the %d encoded", file, got, len(seq))
	}
	var q quality
	n := 0
	for i := 1; i < len(seq); i += 2 {
		o := fromRGB24(out.Bytes()[i*frameBytes:(i+1)*frameBytes], size.X, size.Y)
		q.psnr += psnr(o, frames[i])
		q.ssim += ssim(o, frames[i])
		n++
	}
	return quality{q.psnr / float64(n), q.ssim / float64(n)}, nil
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

// ssim is the mean structural similarity of a and b on Rec. 601 luma (8-bit
// scale), with the usual 11x11 Gaussian window of sigma 1.5 and constants
// (0.01*255)^2 and (0.03*255)^2, over the positions where the window fits.
func ssim(a, b *image.NRGBA) float64 {
	w, h := a.Rect.Dx(), a.Rect.Dy()
	ya, yb := lumaPlane(a), lumaPlane(b)
	prod := func(p, q []float64) []float64 {
		out := make([]float64, len(p))
		for i := range p {
			out[i] = p[i] * q[i]
		}
		return out
	}
	ma, mb := gaussValid(ya, w, h), gaussValid(yb, w, h)
	saa, sbb, sab := gaussValid(prod(ya, ya), w, h), gaussValid(prod(yb, yb), w, h), gaussValid(prod(ya, yb), w, h)
	const c1, c2 = (0.01 * 255) * (0.01 * 255), (0.03 * 255) * (0.03 * 255)
	var sum float64
	for i := range ma {
		va, vb, cov := saa[i]-ma[i]*ma[i], sbb[i]-mb[i]*mb[i], sab[i]-ma[i]*mb[i]
		sum += (2*ma[i]*mb[i] + c1) * (2*cov + c2) / ((ma[i]*ma[i] + mb[i]*mb[i] + c1) * (va + vb + c2))
	}
	return sum / float64(len(ma))
}

func lumaPlane(img *image.NRGBA) []float64 {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	out := make([]float64, w*h)
	for y := 0; y < h; y++ {
		row := img.Pix[y*img.Stride:]
		for x := 0; x < w; x++ {
			out[y*w+x] = 0.299*float64(row[4*x]) + 0.587*float64(row[4*x+1]) + 0.114*float64(row[4*x+2])
		}
	}
	return out
}

// gaussValid filters p (w x h) with the 11x11 Gaussian of sigma 1.5,
// separably, keeping only the (w-10) x (h-10) positions where it fits.
func gaussValid(p []float64, w, h int) []float64 {
	const r = 5
	var k [2*r + 1]float64
	var total float64
	for i := range k {
		d := float64(i - r)
		k[i] = math.Exp(-d * d / (2 * 1.5 * 1.5))
		total += k[i]
	}
	for i := range k {
		k[i] /= total
	}
	ow, oh := w-2*r, h-2*r
	rows := make([]float64, ow*h)
	for y := 0; y < h; y++ {
		for x := 0; x < ow; x++ {
			var s float64
			for i, c := range k {
				s += c * p[y*w+x+i]
			}
			rows[y*ow+x] = s
		}
	}
	out := make([]float64, ow*oh)
	for y := 0; y < oh; y++ {
		for x := 0; x < ow; x++ {
			var s float64
			for i, c := range k {
				s += c * rows[(y+i)*ow+x]
			}
			out[y*ow+x] = s
		}
	}
	return out
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
