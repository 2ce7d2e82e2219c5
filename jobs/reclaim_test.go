package jobs

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/img2vid/img2vid"
	"github.com/nats-io/nats.go/jetstream"
)

// A job that was running when the process died runs again as soon as the
// embedded server is back, not after its ack wait (a minute here): the
// store's lock proves its worker is gone. Its attempt says so.
func TestRestartRunsAJobItsDeadWorkerHeldAtOnce(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{AckWait: time.Minute}
	conv := &fakeConverter{block: true, release: make(chan struct{}), started: make(chan string, 1)}
	l := startLocal(t, dir, cfg, conv)
	submitOne(t, l.System, "orphan")
	<-conv.started
	// The process dies: its server stops with the job taken and never
	// acknowledged, and its worker sends nothing more.
	l.System.Close()
	l.embedded.Close()
	defer func() {
		over, cancel := context.WithCancel(context.Background())
		cancel()
		l.Worker.Stop(over)
	}()

	again := &fakeConverter{}
	l2 := startLocal(t, dir, cfg, again)
	defer l2.Stop(context.Background())
	st := waitState(t, l2.System, "orphan", "done well before the ack wait", done) // waits at most 10 s
	if st.Attempt != 2 || !strings.Contains(st.Note, "attempt 2") || again.count() != 1 {
		t.Errorf("the orphaned job ended %+v after %d runs, want done at attempt 2, once", st, again.count())
	}
}

// A job deleted while it ran on a worker that then stopped is not run
// again when it comes back from the queue: it ends canceled, and leaves
// nothing in the queue or the buckets.
func TestJobDeletedWhileItsWorkerStoppedDoesNotRunAgain(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s := openSystem(t, dir, Config{AckWait: 100 * time.Millisecond})
	submitOne(t, s, "deleted")
	// A worker takes the job and records its start; the client deletes
	// it; the worker is gone before it saw that.
	if _, err := s.consumer.Next(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.change(ctx, "deleted", func(st *State) error { st.Attempt, st.Status = 1, StatusRunning; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := s.Cancel(ctx, "deleted"); err != nil {
		t.Fatal(err)
	}

	conv := &fakeConverter{}
	startWorkerOn(t, s, dir, conv)
	st := waitState(t, s, "deleted", "its end", func(st State) bool { return st.Terminal() })
	if st.Status != StatusCanceled || conv.count() != 0 {
		t.Fatalf("the deleted job ended %+v after %d runs, want canceled without running", st, conv.count())
	}
	// The state turns canceled before the worker takes the job off the queue.
	waitEmpty(t, s)
}

// A job recorded as queued whose message never reached the queue (its
// replica died between the two) fails once it has waited the TTL, as a
// job whose images expired in the queue does, and is purged a TTL later:
// it does not stay queued for good, counted against its client.
func TestJobNeverQueuedFailsAfterTheTTL(t *testing.T) {
	emb, err := StartEmbedded(filepath.Join(t.TempDir(), "jetstream"))
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Close()
	ctx := context.Background()
	const ttl = 300 * time.Millisecond
	s, err := Open(ctx, emb.Conn, Config{TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	b, err := json.Marshal(State{ID: "orphan", Status: StatusQueued, Client: "192.0.2.1", Created: time.Now().UTC()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.states.Create(ctx, "orphan", b); err != nil {
		t.Fatal(err)
	}
	st := waitState(t, s, "orphan", "its end", func(st State) bool { return st.Terminal() })
	if st.Status != StatusFailed || st.Error == nil || st.Error.Code != img2vid.ENOTFOUND || !strings.Contains(st.Error.Message, "job_ttl=300ms") {
		t.Fatalf("the job never queued ended %+v %+v, want failed naming job_ttl", st, st.Error)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := s.states.Get(ctx, "orphan"); isNotFound(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the failed job's state is never purged")
		}
	}
}

// A job whose deliveries ran out while its attempts did not (its workers
// handed it back each time) fails saying so, not that it was started a
// number of times it never was.
func TestJobOutOfDeliveriesSaysWhy(t *testing.T) {
	dir := t.TempDir()
	s := openSystem(t, dir, Config{Attempts: 1}) // at most 3 deliveries
	submitOne(t, s, "bounced")
	for range 2 { // two workers take it and hand it back
		msg, err := s.consumer.Next()
		if err != nil {
			t.Fatal(err)
		}
		if err := msg.Nak(); err != nil {
			t.Fatal(err)
		}
	}
	conv := &fakeConverter{}
	startWorkerOn(t, s, dir, conv)
	st := waitState(t, s, "bounced", "its end", func(st State) bool { return st.Terminal() })
	if st.Status != StatusFailed || st.Error == nil || conv.count() != 0 ||
		!strings.Contains(st.Error.Message, "went to a worker 2 times without finishing") {
		t.Fatalf("job ended %+v %+v after %d runs, want failed saying it went to a worker 2 times", st, st.Error, conv.count())
	}
}

// A job whose video could not be stored (the job store did not answer)
// goes back to the queue, saying so while it waits, and runs again
// without spending one of its attempts: with a single attempt it still
// ends done, at its first counted attempt.
func TestStoreLossDoesNotSpendAnAttempt(t *testing.T) {
	dir := t.TempDir()
	s := openSystem(t, dir, Config{Attempts: 1})
	conv := &videosAway{sys: s}
	startWorkerOn(t, s, dir, conv)
	submitOne(t, s, "lost")
	waitState(t, s, "lost", "its note naming the job store", func(st State) bool {
		return st.Status == StatusQueued && strings.Contains(st.Note, "the job store did not answer")
	})
	st := waitState(t, s, "lost", "its end", func(st State) bool { return st.Terminal() })
	if st.Status != StatusDone || conv.count() != 2 || st.Attempt != 1 || st.Note != "" {
		t.Fatalf("job ended %+v %+v after %d runs, want done at attempt 1, run twice", st, st.Error, conv.count())
	}
}

// stateLoser's run takes the state bucket away for a second, as a NATS
// node lost under the bucket's leader does while a new one is elected,
// and puts it back as it was.
type stateLoser struct {
	fakeConverter
	sys  *System
	back chan error
}

func (c *stateLoser) Run(ctx context.Context, plan img2vid.Plan, inputs []string, output string, maxBytes int64,
	progress func(img2vid.Progress)) (img2vid.Result, error) {
	stream, err := c.sys.js.Stream(ctx, "KV_"+stateBucket)
	if err != nil {
		return img2vid.Result{}, err
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return img2vid.Result{}, err
	}
	e, err := c.sys.states.Get(ctx, "away")
	if err != nil {
		return img2vid.Result{}, err
	}
	if err := c.sys.js.DeleteStream(ctx, "KV_"+stateBucket); err != nil {
		return img2vid.Result{}, err
	}
	go func() {
		time.Sleep(time.Second)
		ctx := context.Background()
		_, err := c.sys.js.CreateStream(ctx, info.Config)
		if err == nil {
			_, err = c.sys.states.Put(ctx, "away", e.Value())
		}
		c.back <- err
	}()
	return c.fakeConverter.Run(ctx, plan, inputs, output, maxBytes, progress)
}

// A job whose end cannot be recorded at first (the state bucket has no
// leader for a moment) is recorded once the bucket is back: it ends done
// after one run, not run again after its ack wait as a crash would be.
func TestEndRecordedOnceTheStoreIsBack(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s := openSystem(t, dir, Config{AckWait: 300 * time.Millisecond})
	conv := &stateLoser{sys: s, back: make(chan error, 1)}
	startWorkerOn(t, s, dir, conv)
	submitOne(t, s, "away")
	if err := <-conv.back; err != nil {
		t.Fatalf("putting the state bucket back: %v", err)
	}
	// Read from the bucket itself: the system's live view of the states
	// followed the bucket that was taken away.
	var st State
	for deadline := time.Now().Add(10 * time.Second); !st.Terminal() && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if e, err := s.states.Get(ctx, "away"); err == nil {
			st, _ = decode(e)
		}
	}
	if st.Status != StatusDone || conv.count() != 1 || st.Attempt != 1 {
		t.Fatalf("job ended %+v %+v after %d runs, want done at attempt 1 after one run", st, st.Error, conv.count())
	}
}

// A worker that finds no state for a job it was given (on a cluster, a
// read answered by a replica of the bucket that has not caught up with
// the write) asks again for a while before it drops the job: a state that
// shows up a second late still has its job run.
func TestJobWhoseStateShowsUpLateRuns(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s := openSystem(t, dir, Config{})
	submitOne(t, s, "late")
	e, err := s.states.Get(ctx, "late")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.states.Purge(ctx, "late"); err != nil {
		t.Fatal(err)
	}
	conv := &fakeConverter{}
	startWorkerOn(t, s, dir, conv)
	time.Sleep(time.Second)
	if _, err := s.states.Create(ctx, "late", e.Value()); err != nil {
		t.Fatal(err)
	}
	st := waitState(t, s, "late", "its end", func(st State) bool { return st.Terminal() })
	if st.Status != StatusDone || conv.count() != 1 {
		t.Fatalf("job ended %+v %+v after %d runs, want done after one run", st, st.Error, conv.count())
	}
}

// videosAway's first run deletes the videos bucket, as a NATS node lost
// under the bucket's leader takes the store away, so that the video
// cannot be stored. With after set, the bucket comes back that long
// later (the new leader elected), and back receives how that went;
// otherwise it comes back at the next run.
type videosAway struct {
	fakeConverter
	sys   *System
	after time.Duration
	back  chan error
}

func (c *videosAway) Run(ctx context.Context, plan img2vid.Plan, inputs []string, output string, maxBytes int64,
	progress func(img2vid.Progress)) (img2vid.Result, error) {
	restore := func(ctx context.Context) error {
		_, err := c.sys.js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: videosBucket, Storage: jetstream.FileStorage})
		return err
	}
	var err error
	if c.count() > 0 {
		err = restore(ctx)
	} else if err = c.sys.js.DeleteObjectStore(ctx, videosBucket); err == nil && c.after > 0 {
		go func() {
			time.Sleep(c.after)
			c.back <- restore(context.Background())
		}()
	}
	if err != nil {
		return img2vid.Result{}, err
	}
	return c.fakeConverter.Run(ctx, plan, inputs, output, maxBytes, progress)
}

// A video whose first put fails is put again once the bucket is back: the
// job ends done after one run, not sent back to run again.
func TestVideoPutAgainOnceTheStoreIsBack(t *testing.T) {
	dir := t.TempDir()
	s := openSystem(t, dir, Config{})
	conv := &videosAway{sys: s, after: 500 * time.Millisecond, back: make(chan error, 1)}
	startWorkerOn(t, s, dir, conv)
	submitOne(t, s, "put")
	if err := <-conv.back; err != nil {
		t.Fatalf("putting the videos bucket back: %v", err)
	}
	st := waitState(t, s, "put", "its end", func(st State) bool { return st.Terminal() })
	if st.Status != StatusDone || conv.count() != 1 || st.Attempt != 1 {
		t.Fatalf("job ended %+v %+v after %d runs, want done at attempt 1 after one run", st, st.Error, conv.count())
	}
}
