// Package proctest lets tests see the processes they start, to prove that
// none (an ffmpeg, say) is left behind.
package proctest

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Children lists, sorted, the processes this process started and has not
// yet reaped.
func Children(t testing.TB) []int {
	t.Helper()
	files, err := filepath.Glob("/proc/self/task/*/children")
	if err != nil || len(files) == 0 {
		t.Fatalf("cannot list child processes in /proc: %v", err)
	}
	var pids []int
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // the thread ended meanwhile
		}
		for _, s := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(s); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	slices.Sort(pids)
	return pids
}

// TreeRSS samples the resident memory of the process pid and every
// process below it (a server and its ffmpeg) every few milliseconds until
// stop is called, which returns the largest sum seen, in bytes.
func TreeRSS(pid int) (stop func() int64) {
	done := make(chan struct{})
	peak := make(chan int64, 1)
	go func() {
		var most int64
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			most = max(most, treeRSS(pid))
			select {
			case <-done:
				peak <- most
				return
			case <-tick.C:
			}
		}
	}()
	return func() int64 {
		close(done)
		return <-peak
	}
}

// treeRSS is the summed VmRSS of pid and its descendants, in bytes. A
// child still running its parent's program is left out: Go starts a
// process with vfork, and until it execs it shares its parent's memory,
// whose RSS it reports too (a server of 800 MiB read as 1.6 GiB for the
// moment its ffmpeg started).
func treeRSS(pid int) int64 {
	total := rssOf(pid)
	exe := exeOf(pid)
	files, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/children")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, s := range strings.Fields(string(b)) {
			if child, err := strconv.Atoi(s); err == nil && (exe == "" || exeOf(child) != exe) {
				total += treeRSS(child)
			}
		}
	}
	return total
}

// exeOf is the program process pid runs, "" when it cannot be read.
func exeOf(pid int) string {
	exe, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
	return exe
}

// rssOf is the VmRSS of one process in bytes, 0 once it is gone.
func rssOf(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
