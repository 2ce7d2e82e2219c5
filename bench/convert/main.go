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
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/img2vid/img2vid/bench/internal/machine"
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
			ffWall = append(ffWall, wall(ff))
			ourWall = append(ourWall, wall(ours))
		}
		for r := 0; r < 3; r++ {
			ffPeak = append(ffPeak, peak(ff))
			ourPeak = append(ourPeak, peak(ours))
		}
		fw, fp, ow, op := median(ffWall), median(ffPeak), median(ourWall), median(ourPeak)
		fmt.Printf("%-7d %-14s %9.2fs %9.0f MiB\n", set.n, "ffmpeg CLI", fw.Seconds(), mib(fp))
		fmt.Printf("%-7d %-14s %9.2fs %9.0f MiB\n", set.n, "img2vid", ow.Seconds(), mib(op))
		fmt.Printf("%-7d %-14s %9.2fx %+9.0f MiB   (targets: <= 1.10x, <= +50 MiB)\n", set.n, "img2vid/ffmpeg", ow.Seconds()/fw.Seconds(), mib(op-fp))
		if set.n == 50 {
			peak50 = op
		} else {
			fmt.Printf("img2vid peak memory, 500 frames vs 50: %.3fx (target: within 1.10x)\n", float64(op)/float64(peak50))
		}
	}
}

// wall runs argv and returns its wall time.
func wall(argv []string) time.Duration {
	cmd, stderr := command(argv)
	start := time.Now()
	if err := cmd.Run(); err != nil {
		log.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, stderr.String())
	}
	return time.Since(start)
}

// peak runs argv and returns the peak of the summed resident memory of it
// and its descendants, sampled every 5 ms.
func peak(argv []string) int64 {
	cmd, stderr := command(argv)
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var top int64
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			if err != nil {
				log.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, stderr.String())
			}
			return top
		case <-tick.C:
			top = max(top, treeRSS(cmd.Process.Pid))
		}
	}
}

// command prepares argv with its stderr kept for the error message.
func command(argv []string) (*exec.Cmd, *strings.Builder) {
	cmd := exec.Command(argv[0], argv[1:]...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	return cmd, &stderr
}

// treeRSS sums VmRSS over pid and its descendants, in bytes.
func treeRSS(pid int) int64 {
	var total int64
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			kb, _ := strconv.ParseInt(strings.Fields(line)[1], 10, 64)
			total += kb << 10
		}
	}
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, t := range tasks {
		b, _ := os.ReadFile(t)
		for _, c := range strings.Fields(string(b)) {
			if cp, err := strconv.Atoi(c); err == nil {
				total += treeRSS(cp)
			}
		}
	}
	return total
}

func median[T int64 | time.Duration](v []T) T {
	s := append([]T(nil), v...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
