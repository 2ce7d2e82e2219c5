// Command slideshow measures an img2vid slideshow against ffmpeg's own
// filters doing the same job, in one run on one machine: the 50 aquarium
// frames at 1920x1080, each shown for a second, with a half-second
// crossfade into the next, at 30 frames/s, the same x264 preset and CRF.
// ffmpeg's command chains one xfade per pair of looped stills. Reported:
// wall time from start to finished file and peak memory of each (the whole
// process tree), and their ratios.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/img2vid/img2vid/bench/internal/machine"
	"github.com/img2vid/img2vid/bench/internal/proc"
)

func main() {
	data := flag.String("data", "", "folder of frame_NNN.jpg images (default $IMG2VID_TESTDATA/data/aquarium)")
	bin := flag.String("bin", "bin/img2vid", "img2vid binary to measure")
	runs := flag.Int("runs", 3, "runs of each command; the median is reported")
	images := flag.Int("images", 50, "images in the slideshow (the first N)")
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
	fmt.Printf("job: %d images, 1920x1080, %.1f s each, %.1f s crossfade, %d fps, libx264 -preset %s -crf %d; median of %d runs\n\n",
		len(frames), each, fade, fps, preset, crf, *runs)
	var ffWall, ourWall []time.Duration
	for range *runs { // alternate, so drift hits both alike
		ffWall = append(ffWall, proc.Wall(ff))
		ourWall = append(ourWall, proc.Wall(ours))
	}
	ffPeak, ourPeak := proc.Peak(ff), proc.Peak(ours)
	fw, ow := proc.Median(ffWall), proc.Median(ourWall)
	fmt.Printf("%-22s %9s %12s\n", "command", "wall", "peak memory")
	fmt.Printf("%-22s %8.2fs %9.0f MiB\n", "ffmpeg xfade", fw.Seconds(), proc.MiB(ffPeak))
	fmt.Printf("%-22s %8.2fs %9.0f MiB\n", "img2vid --transition", ow.Seconds(), proc.MiB(ourPeak))
	fmt.Printf("%-22s %8.2fx %8.2fx   (speed target: img2vid at least ffmpeg's, ratio <= 1)\n", "img2vid / ffmpeg", ow.Seconds()/fw.Seconds(), float64(ourPeak)/float64(ffPeak))
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
