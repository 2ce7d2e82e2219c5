// Command slideshow measures img2vid slideshows against ffmpeg's own
// filters doing the same jobs, in one run on one machine, on the 50
// aquarium frames at 1920x1080 and 30 frames/s with the same x264 preset
// and CRF: each image shown for a second with a half-second crossfade
// into the next (ffmpeg: one xfade per pair of looped stills), and each
// image a second of Ken Burns zoom to 1.15x (ffmpeg: zoompan on each,
// concatenated). Reported: wall time from start to finished file and peak
// memory of each (the whole process tree), their ratios, and the jitter
// of the zoom's window: img2vid's path as it samples it, beside the same
// path rounded to whole pixels, as zoompan crops.
package main

import (
	"flag"
	"fmt"
	"image"
	"log"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/img2vid/img2vid/bench/internal/machine"
	"github.com/img2vid/img2vid/bench/internal/proc"
	"github.com/img2vid/img2vid/motion"
)

func main() {
	data := flag.String("data", "", "folder of frame_NNN.jpg images (default $IMG2VID_TESTDATA/data/aquarium)")
	bin := flag.String("bin", "bin/img2vid", "img2vid binary to measure")
	runs := flag.Int("runs", 3, "runs of each command; the median is reported")
	images := flag.Int("images", 50, "images in the slideshow (the first N)")
	which := flag.String("jobs", "crossfade,kenburns", "the jobs to compare, comma separated")
	flag.Parse()
	if *data == "" {
		*data = filepath.Join(os.Getenv("IMG2VID_TESTDATA"), "data", "aquarium")
	}
	frames, err := filepath.Glob(filepath.Join(*data, "frame_*.jpg"))
	if err != nil || len(frames) == 0 {
		log.Fatalf("no frame_*.jpg in %s", *data)
	}
	sort.Strings(frames)
	frames = frames[:min(*images, len(frames))]
	tmp, err := os.MkdirTemp("", "img2vid-slideshow-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)

	const each, fade, fps, preset, crf = 1.0, 0.5, 30, "veryfast", 23
	out := filepath.Join(tmp, "show.mp4")
	ours := append([]string{*bin, "convert", "--log-level", "warn", "--overwrite", "--size", "1920x1080", "--duration", "1s",
		"--transition", "crossfade", "--transition-duration", "500ms", "--fps-out", strconv.Itoa(fps),
		"--preset", preset, "--quality", strconv.Itoa(crf), "--keep-order"}, frames...)
	ours = append(ours, out)
	ff := xfade(frames, out, each, fade, fps, preset, crf)

	fmt.Printf("machine: %d CPUs, %s; %s\n", runtime.NumCPU(), machine.CPUModel(), time.Now().Format("2006-01-02"))
	fmt.Printf("jobs: %d images, 1920x1080, %.1f s each, %d fps, libx264 -preset %s -crf %d; median of %d runs\n\n",
		len(frames), each, fps, preset, crf, *runs)
	fmt.Printf("%-26s %9s %12s\n", "command", "wall", "peak memory")
	if strings.Contains(*which, "crossfade") {
		compare("crossfade %.1f s", fade, ff, ours, *runs)
	}

	kb := append([]string{*bin, "convert", "--log-level", "warn", "--overwrite", "--size", "1920x1080", "--duration", "1s",
		"--motion", "kenburns", "--motion-zoom", "1.15", "--motion-direction", "in", "--fps-out", strconv.Itoa(fps),
		"--preset", preset, "--quality", strconv.Itoa(crf), "--keep-order"}, frames...)
	kb = append(kb, out)
	if strings.Contains(*which, "kenburns") {
		compare("Ken Burns to %.2fx", 1.15, zoompan(frames, out, 1.15, fps, preset, crf), kb, *runs)
	}

	// The zoom's window over one image's 30 frames: as img2vid samples it,
	// and rounded to whole pixels as a crop must be.
	from, to := motion.Path(1920, 1080, 1.15, 960, 540, image.Rectangle{}, false)
	var smooth, whole []motion.Window
	for i := range fps {
		w := motion.Lerp(from, to, float64(i)/float64(fps-1))
		smooth = append(smooth, w)
		whole = append(whole, motion.Window{X: math.Floor(w.X), Y: math.Floor(w.Y), W: math.Round(w.W), H: math.Round(w.H)})
	}
	fmt.Printf("\nKen Burns window jitter (largest second difference of position and size): img2vid %.3f px/frame², whole-pixel crops %.3f px/frame² (target < 0.05)\n",
		motion.Jitter(smooth), motion.Jitter(whole))
}

// compare times and measures ffmpeg's command and img2vid's, alternating
// runs so that drift hits both alike, and prints them and their ratio.
func compare(what string, v float64, ff, ours []string, runs int) {
	var ffWall, ourWall []time.Duration
	for range runs {
		ffWall = append(ffWall, proc.Wall(ff))
		ourWall = append(ourWall, proc.Wall(ours))
	}
	ffPeak, ourPeak := proc.Peak(ff), proc.Peak(ours)
	fw, ow := proc.Median(ffWall), proc.Median(ourWall)
	name := fmt.Sprintf(what, v)
	fmt.Printf("%-26s %8.2fs %9.0f MiB\n", "ffmpeg, "+name, fw.Seconds(), proc.MiB(ffPeak))
	fmt.Printf("%-26s %8.2fs %9.0f MiB\n", "img2vid, "+name, ow.Seconds(), proc.MiB(ourPeak))
	fmt.Printf("%-26s %8.2fx %8.2fx   (target: time ratio <= 1)\n", "img2vid / ffmpeg", ow.Seconds()/fw.Seconds(), float64(ourPeak)/float64(ffPeak))
}

// zoompan is the ffmpeg command line of the Ken Burns slideshow: each
// image letterboxed to 1920x1080 and zoomed by zoompan from 1 to zoom over
// fps frames around the centre, the images concatenated.
func zoompan(frames []string, out string, zoom float64, fps int, preset string, crf int) []string {
	args := []string{"ffmpeg", "-hide_banner", "-loglevel", "error", "-y"}
	var g strings.Builder
	for i, f := range frames {
		args = append(args, "-i", f)
		fmt.Fprintf(&g, "[%d:v]scale=1920:1080:force_original_aspect_ratio=decrease,pad=1920:1080:(ow-iw)/2:(oh-ih)/2,setsar=1,"+
			"zoompan=z='1+%g*on/%d':x='iw/2-(iw/zoom/2)':y='ih/2-(ih/zoom/2)':d=%d:s=1920x1080:fps=%d,format=yuv420p[z%d];", i, zoom-1, fps-1, fps, fps, i)
	}
	for i := range frames {
		fmt.Fprintf(&g, "[z%d]", i)
	}
	fmt.Fprintf(&g, "concat=n=%d:v=1:a=0[v]", len(frames))
	return append(args, "-filter_complex", g.String(), "-map", "[v]",
		"-c:v", "libx264", "-preset", preset, "-crf", strconv.Itoa(crf), "-pix_fmt", "yuv420p", "-movflags", "+faststart", out)
}

// xfade is the ffmpeg command line of the same slideshow: each image a
// looped still scaled to 1920x1080 (letterboxed, as img2vid's contain
// fit), each pair joined by an xfade of fade seconds. Every still but the
// last lasts each+fade, since an xfade overlaps its two inputs, so the
// video lasts len(frames) x each seconds, as img2vid's does.
func xfade(frames []string, out string, each, fade float64, fps int, preset string, crf int) []string {
	args := []string{"ffmpeg", "-hide_banner", "-loglevel", "error", "-y"}
	for i, f := range frames {
		d := each + fade
		if i == len(frames)-1 {
			d = each
		}
		args = append(args, "-loop", "1", "-framerate", strconv.Itoa(fps), "-t", fmt.Sprint(d), "-i", f)
	}
	var g strings.Builder
	for i := range frames {
		fmt.Fprintf(&g, "[%d:v]scale=1920:1080:force_original_aspect_ratio=decrease,pad=1920:1080:(ow-iw)/2:(oh-ih)/2,setsar=1,format=yuv420p[s%d];", i, i)
	}
	last := "s0"
	for i := 1; i < len(frames); i++ {
		fmt.Fprintf(&g, "[%s][s%d]xfade=transition=fade:duration=%g:offset=%g[x%d];", last, i, fade, float64(i)*each, i)
		last = fmt.Sprintf("x%d", i)
	}
	graph := strings.TrimSuffix(g.String(), ";")
	return append(args, "-filter_complex", graph, "-map", "["+last+"]", "-r", strconv.Itoa(fps),
		"-c:v", "libx264", "-preset", preset, "-crf", strconv.Itoa(crf), "-pix_fmt", "yuv420p", "-movflags", "+faststart", out)
}
