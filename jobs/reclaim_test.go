package jobs

import (
	"context"
	"strings"
	"testing"
	"time"
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
