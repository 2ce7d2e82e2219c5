package jobs

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// A board whose watcher falls behind the bucket (here: one that sends
// nothing, as the watch of a replica did while a NATS node was lost)
// follows it again with a new watcher: a job another replica submits
// reaches it, and so do its later changes, without anyone asking the
// bucket for the job.
func TestBoardFollowsAgainAWatcherThatFallsBehind(t *testing.T) {
	emb, err := StartEmbedded(filepath.Join(t.TempDir(), "jetstream"))
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Close()
	ctx := context.Background()
	other, err := Open(ctx, emb.Conn, Config{}) // another replica, which writes the states
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()

	var opened atomic.Int32
	b := &board{log: slog.New(slog.DiscardHandler), kv: other.states, nc: emb.Conn, done: make(chan struct{}),
		every: 50 * time.Millisecond, jobs: map[string]*entry{},
		open: func(ctx context.Context) (jetstream.KeyWatcher, error) {
			if opened.Add(1) == 1 {
				return other.states.Watch(ctx, "no-job-has-this-id") // a watcher that never sends a change
			}
			return other.states.WatchAll(ctx)
		}}
	wctx, stop := context.WithCancel(ctx)
	if err := b.start(ctx, wctx); err != nil {
		t.Fatal(err)
	}
	defer func() { stop(); b.wait() }()

	submitOne(t, other, "late")
	waitBoard(t, b, "the job submitted elsewhere", func(st State, ok bool) bool { return ok })
	if _, err := other.change(ctx, "late", func(st *State) error { st.Progress.Done = 7; return nil }); err != nil {
		t.Fatal(err)
	}
	waitBoard(t, b, "the job's progress", func(st State, ok bool) bool { return st.Progress.Done == 7 })
	if n := opened.Load(); n != 2 {
		t.Errorf("%d watchers opened, want 2: the first and the one that replaced it", n)
	}
}

// waitBoard polls the board's copy of job "late" until cond holds.
func waitBoard(t *testing.T, b *board, what string, cond func(State, bool) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, _, ok := b.get("late")
		if cond(st, ok) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the board never saw %s: %+v (%v)", what, st, ok)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
