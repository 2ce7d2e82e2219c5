package jobs

import (
	"context"
	"errors"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// fakeReadiness stands in for the runtime's and ffmpeg's checks: it
// answers what the test sets, and counts the questions.
type fakeReadiness struct {
	mu    sync.Mutex
	err   error
	asked int
}

func (f *fakeReadiness) Ready(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked++
	return f.err
}

func (f *fakeReadiness) set(err error) {
	f.mu.Lock()
	f.err = err
	f.mu.Unlock()
}

func (f *fakeReadiness) questions() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.asked
}

// A worker that is not ready takes no job, and takes them once it is;
// when it stops being ready it stops taking them within ReadyEvery.
// img2vid_worker_ready follows it.
func TestWorkerFetchesOnlyWhenReady(t *testing.T) {
	const every = 100 * time.Millisecond
	ready := &fakeReadiness{err: errors.New("ONNX Runtime does not work: no GPU")}
	conv := &fakeConverter{}
	reg := prometheus.NewRegistry()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := StartLocal(ctx, t.TempDir(), Config{}, WorkerConfig{Converter: conv, Ready: ready.Ready, ReadyEvery: every, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Stop(context.Background())
	gauge := func() string {
		return regexp.MustCompile(`(?m)^img2vid_worker_ready (\S+)$`).FindString(metricsText(reg))
	}

	submitOne(t, l.System, "first")
	// Ten readiness checks' worth of time: the job must still wait.
	for asked := ready.questions(); ready.questions() < asked+10; {
		time.Sleep(every / 4)
	}
	if st, _, _ := l.Job(ctx, "first"); st.Status != StatusQueued || conv.count() != 0 {
		t.Fatalf("a worker that is not ready ran a job: %+v, %d runs", st, conv.count())
	}
	if g := gauge(); g != "img2vid_worker_ready 0" {
		t.Errorf("%q while not ready, want img2vid_worker_ready 0", g)
	}

	ready.set(nil)
	waitState(t, l.System, "first", "done once ready", done)
	if g := gauge(); g != "img2vid_worker_ready 1" {
		t.Errorf("%q while ready, want img2vid_worker_ready 1", g)
	}

	// Not ready again: the fetch under way ends within ReadyEvery, the
	// worker asks again and sees it (the gauge says so; with one slot no
	// fetch is under way then), and takes no job after that.
	ready.set(errors.New("ffmpeg does not run"))
	for deadline := time.Now().Add(10 * time.Second); gauge() != "img2vid_worker_ready 0"; time.Sleep(every / 4) {
		if time.Now().After(deadline) {
			t.Fatalf("the worker never saw that it is not ready: %q", gauge())
		}
	}
	submitOne(t, l.System, "second")
	time.Sleep(10 * every)
	if st, _, _ := l.Job(ctx, "second"); st.Status != StatusQueued || conv.count() != 1 {
		t.Fatalf("a worker no longer ready ran a job: %+v, %d runs", st, conv.count())
	}
	ready.set(nil)
	waitState(t, l.System, "second", "done once ready again", done)
}

// The worker exports the model runs and the jobs it ran, with the
// provider it is asked for when a job ends, and the queue's series.
func TestWorkerMetricsCountModelRuns(t *testing.T) {
	reg := prometheus.NewRegistry()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := StartLocal(ctx, t.TempDir(), Config{}, WorkerConfig{Converter: &fakeConverter{}, Registerer: reg,
		Provider: func() string { return "cuda" }})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Stop(context.Background())
	if err := l.RegisterQueueMetrics(reg); err != nil {
		t.Fatal(err)
	}
	submitOne(t, l.System, "job")
	waitState(t, l.System, "job", "done", done)
	l.Worker.ObserveInference("sr2x", "cuda", 20*time.Millisecond)
	// The state turns done before the worker leaves the job and acknowledges
	// it: the counts settle a moment later.
	want := []string{
		`img2vid_inference_duration_seconds_count{model="sr2x",provider="cuda"} 1`,
		`img2vid_convert_duration_seconds_count{frame_model="none",interp_model="none",provider="cuda"} 1`,
		`img2vid_jobs_total{outcome="done"} 1`,
		`img2vid_jobs_running 0`,
		`img2vid_worker_ready 1`,
		`img2vid_queue_depth 0`,
		`img2vid_jobs_in_progress 0`,
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		text := metricsText(reg)
		var missing []string
		for _, w := range want {
			if !strings.Contains(text, w) {
				missing = append(missing, w)
			}
		}
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics lack %s", strings.Join(missing, ", "))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// metricsText is what reg serves on /metrics.
func metricsText(reg *prometheus.Registry) string {
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}
