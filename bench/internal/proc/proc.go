// Package proc runs the commands a bench compares and measures what a
// user waits for and what the machine gives: the wall time from start to
// exit, and the peak resident memory of the whole process tree.
package proc

import (
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
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
// and its descendants, sampled every 5 ms. Sampling takes CPU from what
// is measured, so time it in runs of its own (Wall).
func Peak(argv []string) int64 {
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

// Median is the middle of v.
func Median[T int64 | time.Duration](v []T) T {
	s := append([]T(nil), v...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// MiB is b in mebibytes.
func MiB(b int64) float64 { return float64(b) / (1 << 20) }
