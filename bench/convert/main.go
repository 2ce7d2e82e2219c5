// Command convert measures `img2vid convert` against the ffmpeg command line
// doing the same job with the same codec settings, in one run on one
// machine: wall time and peak memory of each (the whole process tree), and
// their ratios, for the 50 aquarium frames and for 500 (the 50 repeated).
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
	"time"

	"github.com/img2vid/img2vid/bench/internal/machine"
	"github.com/img2vid/img2vid/bench/internal/proc"
)

func main() {
	data := flag.String("data", "../shared/data/aquarium", "folder of frame_NNN.jpg images")
	bin := flag.String("bin", "bin/img2vid", "img2vid binary to measure")
	runs := flag.Int("runs", 5, "runs of each command; the median is reported")
	preset := flag.String("preset", "veryfast", "x264 preset for both")
	crf := flag.Int("crf", 23, "x264 CRF for both")
	flag.Parse()

	tmp, err := os.MkdirTemp("", "img2vid-bench-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	frames50, err := filepath.Glob(filepath.Join(*data, "frame_*.jpg"))
	if err != nil || len(frames50) == 0 {
		log.Fatalf("no frame_*.jpg in %s", *data)
	}
	sort.Strings(frames50)
	// 500 frames: the 50 repeated ten times, as links named in sequence.
	dir500 := filepath.Join(tmp, "500")
	os.Mkdir(dir500, 0o755)
	for i := 0; i < 500; i++ {
		abs, _ := filepath.Abs(frames50[i%len(frames50)])
		if err := os.Symlink(abs, filepath.Join(dir500, fmt.Sprintf("frame_%03d.jpg", i))); err != nil {
			log.Fatal(err)
		}
	}

	fmt.Printf("machine: %d CPUs, %s; %s\n", runtime.NumCPU(), machine.CPUModel(), time.Now().Format("2006-01-02"))
	fmt.Printf("settings: libx264 -preset %s -crf %d, yuv420p, 5 fps; median of %d runs; peak = largest summed RSS of the process tree, from 3 separate runs\n\n", *preset, *crf, *runs)
	fmt.Printf("%-7s %-14s %10s %12s\n", "frames", "command", "wall", "peak memory")
	var peak50 int64
	for _, set := range []struct {
		n   int
		dir string
	}{{50, *data}, {500, dir500}} {
		out := filepath.Join(tmp, "out.mp4")
		ff := []string{"ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-framerate", "5", "-i", filepath.Join(set.dir, "frame_%03d.jpg"),
			"-c:v", "libx264", "-preset", *preset, "-crf", strconv.Itoa(*crf), "-pix_fmt", "yuv420p", "-movflags", "+faststart", out}
		ours := []string{*bin, "convert", "--fps", "5", "--preset", *preset, "--quality", strconv.Itoa(*crf), "--log-level", "warn", set.dir, out}
		// Wall time and memory come from separate runs: sampling /proc every
		// few milliseconds takes CPU from the command measured, and more of
		// it from a tree of two processes than from one.
		var ffWall, ourWall []time.Duration
		var ffPeak, ourPeak []int64
		for r := 0; r < *runs; r++ { // alternate, so drift hits both alike
			ffWall = append(ffWall, proc.Wall(ff))
			ourWall = append(ourWall, proc.Wall(ours))
		}
		for r := 0; r < 3; r++ {
			ffPeak = append(ffPeak, proc.Peak(ff))
			ourPeak = append(ourPeak, proc.Peak(ours))
		}
		fw, fp, ow, op := proc.Median(ffWall), proc.Median(ffPeak), proc.Median(ourWall), proc.Median(ourPeak)
		fmt.Printf("%-7d %-14s %9.2fs %9.0f MiB\n", set.n, "ffmpeg CLI", fw.Seconds(), proc.MiB(fp))
		fmt.Printf("%-7d %-14s %9.2fs %9.0f MiB\n", set.n, "img2vid", ow.Seconds(), proc.MiB(op))
		fmt.Printf("%-7d %-14s %9.2fx %+9.0f MiB   (targets: <= 1.10x, <= +50 MiB)\n", set.n, "img2vid/ffmpeg", ow.Seconds()/fw.Seconds(), proc.MiB(op-fp))
		if set.n == 50 {
			peak50 = op
		} else {
			fmt.Printf("img2vid peak memory, 500 frames vs 50: %.3fx (target: within 1.10x)\n", float64(op)/float64(peak50))
		}
	}
}
