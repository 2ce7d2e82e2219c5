package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/img2vid/img2vid/internal/testenv"
	"github.com/img2vid/img2vid/internal/testimage"
)

// TestMain lets a test run this package's main as a real process: the test
// binary re-executes itself with IMG2VID_TEST_MAIN=1.
func TestMain(m *testing.M) {
	if os.Getenv("IMG2VID_TEST_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// startServe runs `img2vid serve` as a child process on a free port and
// returns it with its base URL.
func startServe(t *testing.T, args ...string) (*exec.Cmd, string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, append([]string{"serve", "--port", "0", "--work-dir", t.TempDir(), "--device", "cpu"}, args...)...)
	cmd.Env = append(os.Environ(), "IMG2VID_TEST_MAIN=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The process's log is kept and shown if the test fails: a failure in
	// a run of several processes is explained only by what each one saw.
	var said logBuffer
	copied := make(chan struct{})
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		<-copied
		if t.Failed() {
			t.Logf("log of serve %s:\n%s", strings.Join(args, " "), said.String())
		}
	})
	urlRE := regexp.MustCompile(`running at (http://\S+)/`)
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		said.WriteLine(sc.Text())
		if m := urlRE.FindStringSubmatch(sc.Text()); m != nil {
			go func() {
				defer close(copied)
				for sc.Scan() {
					said.WriteLine(sc.Text())
				}
			}()
			return cmd, m[1]
		}
	}
	close(copied)
	t.Fatalf("serve exited before it said where it runs:\n%s", said.String())
	return nil, ""
}

// logBuffer collects a child process's log lines while the test reads it.
type logBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

// WriteLine appends one line.
func (b *logBuffer) WriteLine(line string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.WriteString(line)
	b.buf.WriteByte('\n')
}

// String returns the lines so far.
func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func postJob(t *testing.T, base string, files []string) string {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		w, _ := mw.CreateFormFile("files", filepath.Base(f))
		w.Write(data)
	}
	mw.WriteField("preset", "medium")
	mw.Close()
	resp, err := http.Post(base+"/api/jobs", mw.FormDataContentType(), &body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var job struct {
		ID string `json:"id"`
	}
	json.NewDecoder(resp.Body).Decode(&job)
	if resp.StatusCode != http.StatusAccepted || job.ID == "" {
		t.Fatalf("POST /api/jobs: %s", resp.Status)
	}
	return job.ID
}

func jobStatus(t *testing.T, base, id string) string {
	t.Helper()
	resp, err := http.Get(base + "/api/jobs/" + id)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var job struct {
		Status string `json:"status"`
	}
	json.NewDecoder(resp.Body).Decode(&job)
	return job.Status
}

// SIGTERM with a job running: the server stops taking work, gives the job
// its grace period, cancels it when that runs out, and exits 0.
func TestServeSIGTERMWithJobRunning(t *testing.T) {
	testenv.NeedFFmpeg(t)
	cmd, base := startServe(t, "--grace", "2s")
	files, _ := filepath.Glob(filepath.Join(testimage.Clip(t, 50, 640, 360, testimage.Pan), "*.jpg"))
	id := postJob(t, base, files)
	deadline := time.Now().Add(30 * time.Second)
	for jobStatus(t, base, id) != "running" {
		if time.Now().After(deadline) {
			t.Fatal("the job never started")
		}
		time.Sleep(50 * time.Millisecond)
	}
	start := time.Now()
	terminate(t, cmd, "serve")
	t.Logf("exited %v after SIGTERM", time.Since(start).Round(time.Millisecond))
}

// Readiness runs ffmpeg at most once per interval, and notices when it
// goes away.
func TestReadinessIsCached(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "ffmpeg")
	counter := filepath.Join(dir, "runs")
	testimage.Write(t, fake, []byte("#!/bin/sh\necho run >> "+counter+"\necho 'ffmpeg version fake'\n"))
	if err := os.Chmod(fake, 0o755); err != nil {
		t.Fatal(err)
	}
	ready := readiness(fake, time.Hour)
	for i := 0; i < 5; i++ {
		if err := ready(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if b, _ := os.ReadFile(counter); strings.Count(string(b), "run") != 1 {
		t.Errorf("ffmpeg ran %d times for 5 checks within the interval, want 1", strings.Count(string(b), "run"))
	}
	// A check whose caller gave up (a /readyz request whose client went
	// away) is not kept as the answer for the interval: the worker asks
	// the same checker, and would take no job meanwhile.
	shared := readiness(fake, time.Hour)
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	if err := shared(canceled); err == nil {
		t.Error("a check with a canceled context reads as ready")
	}
	if err := shared(context.Background()); err != nil {
		t.Errorf("after a canceled check, ffmpeg reads as not ready for the interval: %v", err)
	}
	gone := readiness(filepath.Join(dir, "missing"), 0)
	if err := gone(context.Background()); err == nil {
		t.Error("a missing ffmpeg reads as ready")
	}
}

// A user model whose manifest cannot be read is unavailable, not unknown:
// the real server answers 503 with the reason, as docs/API.md says, and
// before anything is queued.
func TestServeBrokenUserModelIs503WithTheReason(t *testing.T) {
	models := t.TempDir()
	testimage.Write(t, filepath.Join(models, "mine.json"), []byte(`{"name": "mine", "kind": "interpolate", "file": "mi`))
	_, base := startServe(t, "--models-dir", models)
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	mw.WriteField("interpolate", "2")
	mw.WriteField("interp_model", "mine")
	w, _ := mw.CreateFormFile("files", "a.png")
	w.Write(testimage.PNG(t, testimage.Quadrants(16, 16)))
	mw.Close()
	resp, err := http.Post(base+"/api/jobs", mw.FormDataContentType(), &body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e struct{ Error, Code string }
	json.NewDecoder(resp.Body).Decode(&e)
	if resp.StatusCode != http.StatusServiceUnavailable || e.Code != "unavailable" || !strings.Contains(e.Error, `interp_model "mine" cannot be used`) ||
		!strings.Contains(e.Error, "mine.json") {
		t.Fatalf("got %s %+v, want 503 unavailable with the manifest's fault", resp.Status, e)
	}
}

// terminate sends SIGTERM to the process that cmd started and fails the
// test unless it exits with status 0 within 15 s: the grace period of
// the tests' processes plus room for a loaded machine.
func terminate(t *testing.T, cmd *exec.Cmd, what string) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s exited with %v after SIGTERM, want status 0", what, err)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("%s did not exit within 15 s of SIGTERM", what)
	}
}
