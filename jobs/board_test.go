package jobs

import (
	"context"
	"log/slog"
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
	ctx := context.Background()
	other := openSystem(t, t.TempDir(), Config{}) // another replica, which writes the states
	b, opened := laggingBoard(other)
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

// laggingBoard is a board on other's state bucket whose first watcher
// never sends a change, as a watch that fell behind while a NATS node was
// lost; the watchers after it follow the whole bucket. opened counts the
// watchers opened.
func laggingBoard(other *System) (b *board, opened *atomic.Int32) {
	opened = new(atomic.Int32)
	b = &board{log: slog.New(slog.DiscardHandler), kv: other.states, nc: other.nc, done: make(chan struct{}),
		every: 50 * time.Millisecond, jobs: map[string]*entry{},
		open: func(ctx context.Context) (jetstream.KeyWatcher, error) {
			if opened.Add(1) == 1 {
				return other.states.Watch(ctx, "no-job-has-this-id")
			}
			return other.states.WatchAll(ctx)
		}}
	return b, opened
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

// A job purged while the board's watcher was behind (here: one the board
// holds and the bucket no longer has, as when another replica took back a
// submission that failed) leaves the board when a new watcher replaces
// the old one: it no longer counts against its client's limit.
func TestBoardFollowingAgainForgetsJobsPurgedMeanwhile(t *testing.T) {
	ctx := context.Background()
	other := openSystem(t, t.TempDir(), Config{})
	submitOne(t, other, "kept")
	b, _ := laggingBoard(other)
	// What the first watcher saw before the purge it then missed.
	b.set(State{ID: "purged", Status: StatusQueued, Client: "192.0.2.1"}, 1)
	wctx, stop := context.WithCancel(ctx)
	if err := b.start(ctx, wctx); err != nil {
		t.Fatal(err)
	}
	defer func() { stop(); b.wait() }()

	submitOne(t, other, "late") // the bucket moves on; the first watcher does not
	waitBoard(t, b, "the job submitted elsewhere", func(st State, ok bool) bool { return ok })
	// The new watcher's states are applied before the jobs it did not
	// send are removed: wait for the second.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, _, ok := b.get("purged"); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the board still holds a job the bucket no longer has")
		}
	}
	if _, _, ok := b.get("kept"); !ok {
		t.Error("the board lost a job the bucket still has")
	}
	if _, _, ok := b.get("late"); !ok {
		t.Error("the board lost a job written while it reloaded")
	}
}
