package jobs

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/img2vid/img2vid"
)

// fakeConverter stands in for the pipeline: it counts its runs, and with
// block set waits for release or its context; with hold set it takes
// that long, as a job longer than the heartbeat interval does.
type fakeConverter struct {
	mu      sync.Mutex
	runs    int
	block   bool
	release chan struct{}
	started chan string
	hold    time.Duration
	// What the last run was given.
	plan     img2vid.Plan
	maxBytes int64
}

func (f *fakeConverter) Run(ctx context.Context, plan img2vid.Plan, inputs []string, output string, maxBytes int64,
	progress func(img2vid.Progress)) (img2vid.Result, error) {
	f.mu.Lock()
	f.runs++
	f.plan, f.maxBytes = plan, maxBytes
	f.mu.Unlock()
	if f.started != nil {
		f.started <- output
	}
	if f.block {
		select {
		case <-ctx.Done():
			return img2vid.Result{}, ctx.Err()
		case <-f.release:
		}
	}
	select {
	case <-ctx.Done():
		return img2vid.Result{}, ctx.Err()
	case <-time.After(f.hold):
	}
	progress(img2vid.Progress{Stage: img2vid.StageEncode, Done: len(inputs), Total: len(inputs)})
	if err := os.WriteFile(output, []byte("video of "+filepath.Base(inputs[0])), 0o600); err != nil {
		return img2vid.Result{}, err
	}
	return img2vid.Result{Frames: len(inputs)}, nil
}

func (f *fakeConverter) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.runs
}

// submitOne submits a one-image job with the given id.
func submitOne(t *testing.T, s *System, id string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "000001.png")
	if err := os.WriteFile(file, []byte("an image"), 0o600); err != nil {
		t.Fatal(err)
	}
	opts := img2vid.Options{Format: img2vid.FormatMP4}
	spec := Spec{ID: id, Inputs: []string{id + "/000001.png"}, Labels: []string{`file 1 ("a.png")`}, Options: opts,
		Plan: &img2vid.Plan{Options: opts, Inputs: 1, Frames: 1, Images: []img2vid.Image{{Label: `file 1 ("a.png")`, Width: 8, Height: 8, Bytes: 8}}}}
	if err := s.Submit(context.Background(), spec, []string{file}, "192.0.2.1"); err != nil {
		t.Fatal(err)
	}
}

// waitState polls a job's state until cond holds or a few seconds pass.
func waitState(t *testing.T, s *System, id, what string, cond func(State) bool) State {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, _, ok := s.Job(context.Background(), id)
		if ok && cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s: timed out waiting for %s; it is %+v", id, what, st)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func done(st State) bool { return st.Status == StatusDone }

func startLocal(t *testing.T, dir string, cfg Config, conv Converter) *Local {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := StartLocal(ctx, dir, cfg, WorkerConfig{Converter: conv})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// A worker that shuts down hands its running job back, and queued jobs
// stay: after a restart on the same folder both run, once each.
func TestJobsSurviveAGracefulRestart(t *testing.T) {
	dir := t.TempDir()
	conv := &fakeConverter{block: true, release: make(chan struct{}), started: make(chan string, 4)}
	// A job handed back is due again at once, but a server restarted
	// meanwhile delivers it after its ack wait: keep that short here.
	cfg := Config{AckWait: 500 * time.Millisecond}
	l := startLocal(t, dir, cfg, conv)
	submitOne(t, l.System, "running")
	<-conv.started
	submitOne(t, l.System, "queued")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := l.Stop(ctx); err == nil || !strings.Contains(err.Error(), "handed back") {
		t.Fatalf("Stop with a job running = %v, want the hand-back", err)
	}
	if left, _ := os.ReadDir(filepath.Join(dir, "worker")); len(left) != 0 {
		t.Errorf("worker folder holds %v after the stop", left)
	}

	again := &fakeConverter{}
	l = startLocal(t, dir, cfg, again)
	defer l.Stop(context.Background())
	for _, id := range []string{"running", "queued"} {
		st := waitState(t, l.System, id, "done", done)
		if st.Attempt != 1 || st.Note != "" || st.Result == nil || st.Result.Frames != 1 {
			t.Errorf("job %s ended %+v, want done at its first counted attempt", id, st)
		}
	}
	if n := again.count(); n != 2 {
		t.Errorf("the converter ran %d times after the restart, want 2", n)
	}
}

// A job whose worker vanished on its last attempt fails with the reason,
// and leaves nothing in the queue or the bucket.
func TestJobFailsAfterItsLastAttempt(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s := openSystem(t, dir, Config{Attempts: 1, AckWait: 100 * time.Millisecond})
	submitOne(t, s, "doomed")
	// A worker takes the job, records its start, and is gone.
	msg, err := s.consumer.Next()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.change(ctx, "doomed", func(st *State) error { st.Attempt, st.Status = 1, StatusRunning; return nil }); err != nil {
		t.Fatal(err)
	}
	_ = msg // never acknowledged

	conv := &fakeConverter{}
	startWorkerOn(t, s, dir, conv)
	st := waitState(t, s, "doomed", "failure", func(st State) bool { return st.Terminal() })
	if st.Status != StatusFailed || st.Error == nil || !strings.Contains(st.Error.Message, "attempts=1") {
		t.Fatalf("job ended %+v, want failed naming attempts=1", st)
	}
	if conv.count() != 0 {
		t.Errorf("the converter ran %d times, want 0: the job had no attempt left", conv.count())
	}
	// The state turns failed before the worker takes the job off the queue.
	waitEmpty(t, s)
}

// openSystem opens a job system on an embedded NATS server whose store is
// in dir; both close when the test ends.
func openSystem(t *testing.T, dir string, cfg Config) *System {
	t.Helper()
	emb, err := StartEmbedded(filepath.Join(dir, "jetstream"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emb.Close() })
	s, err := Open(context.Background(), emb.Conn, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// startWorkerOn starts a worker of conv on s, in dir/worker; it stops
// when the test ends, before s closes.
func startWorkerOn(t *testing.T, s *System, dir string, conv Converter) {
	t.Helper()
	w, err := s.StartWorker(WorkerConfig{Converter: conv, Dir: filepath.Join(dir, "worker")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Stop(context.Background()) })
}

// waitEmpty waits until s's queue holds no message (a job's state turns
// terminal a moment before its worker takes it off the queue), then checks
// that the buckets hold nothing.
func waitEmpty(t *testing.T, s *System) {
	t.Helper()
	ctx := context.Background()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		info, err := s.stream.Info(ctx)
		if err == nil && info.State.Msgs == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the queue holds %d messages (%v), want 0", info.State.Msgs, err)
		}
	}
	if n, err := s.StoredBytes(ctx); err != nil || n != 0 {
		t.Errorf("the buckets hold %d bytes (%v), want 0", n, err)
	}
}

// Heartbeats keep a job that runs longer than the ack wait with its
// worker: it runs once.
func TestHeartbeatsKeepALongJob(t *testing.T) {
	// The job runs for several ack waits. A heartbeat goes every third of
	// one, so one may come 2/3 of an ack wait late before the job is
	// redelivered: an ack wait of 1 s leaves a loaded machine that much.
	const ackWait = time.Second
	conv := &fakeConverter{hold: 5 * ackWait / 2}
	l := startLocal(t, t.TempDir(), Config{AckWait: ackWait}, conv)
	defer l.Stop(context.Background())
	submitOne(t, l.System, "long")
	st := waitState(t, l.System, "long", "done", done)
	if st.Attempt != 1 || conv.count() != 1 {
		t.Errorf("job ran %d times, attempt %d: want once", conv.count(), st.Attempt)
	}
	time.Sleep(3 * ackWait / 2) // a redelivery, had there been one, would start now
	if conv.count() != 1 {
		t.Errorf("job ran %d times, want once", conv.count())
	}
}

// A second process (here: a second server) on the same store is refused
// with a clear error instead of sharing its files.
func TestStoreIsForOneProcess(t *testing.T) {
	dir := t.TempDir()
	first, err := StartEmbedded(dir)
	if err != nil {
		t.Fatal(err)
	}
	if second, err := StartEmbedded(dir); err == nil || !strings.Contains(err.Error(), "in use by another img2vid process") {
		if second != nil {
			second.Close()
		}
		t.Fatalf("second server on one store: %v, want refused", err)
	}
	first.Close()
	again, err := StartEmbedded(dir)
	if err != nil {
		t.Fatalf("after the first closed: %v", err)
	}
	again.Close()
}
