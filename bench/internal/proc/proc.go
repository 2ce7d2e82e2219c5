// Package proc runs the commands a bench compares and measures what a
// user waits for and what the machine gives: the wall time from start to
// exit, and the peak resident memory of the whole process tree.
package proc

import (
	"log"
	"os/exec"
	"sort"
	"strings"
	"time"

	"github.com/img2vid/img2vid/internal/proctest"
)

// Wall runs argv and returns its wall time; a failure ends the bench.
func Wall(argv []string) time.Duration {
	cmd, stderr := command(argv)
	start := time.Now()
	if err := cmd.Run(); err != nil {
		log.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, stderr.String())
	}
	return time.Since(start)
}

// Peak runs argv and returns the peak of the summed resident memory of it
// and its descendants (proctest.TreeRSS, sampled every 5 ms). Sampling
// takes CPU from what is measured, so time it in runs of its own (Wall).
func Peak(argv []string) int64 {
	cmd, stderr := command(argv)
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	stop := proctest.TreeRSS(cmd.Process.Pid)
	err := cmd.Wait()
	peak := stop()
	if err != nil {
		log.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, stderr.String())
	}
	return peak
}

// command prepares argv with its stderr kept for the error message.
func command(argv []string) (*exec.Cmd, *strings.Builder) {
	cmd := exec.Command(argv[0], argv[1:]...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	return cmd, &stderr
}

// Median is the middle of v.
func Median[T int64 | time.Duration](v []T) T {
	s := append([]T(nil), v...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// MiB is b in mebibytes.
func MiB(b int64) float64 { return float64(b) / (1 << 20) }
