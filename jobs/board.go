package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

// board is this process's live copy of every job's state, kept by one
// watcher on the whole key-value bucket: status, event streams and the
// per-client count read it without a round trip, and wake on its changes.
type board struct {
	log  *slog.Logger
	mu   sync.Mutex
	jobs map[string]*entry
	done chan struct{}
}

// entry is one job on the board and a channel closed at its next change.
type entry struct {
	state   State
	rev     uint64
	changed chan struct{}
}

// watch fills a board with the bucket's current states, waiting (within
// ctx) until it holds all of them, and keeps it up to date until wctx ends.
func watch(ctx, wctx context.Context, kv jetstream.KeyValue, log *slog.Logger) (*board, error) {
	w, err := kv.WatchAll(wctx)
	if err != nil {
		return nil, fmt.Errorf("watching bucket %s: %w", stateBucket, err)
	}
	b := &board{log: log, jobs: map[string]*entry{}, done: make(chan struct{})}
	for loaded := false; !loaded; {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return nil, fmt.Errorf("watching bucket %s: the watcher stopped", stateBucket)
			}
			if e == nil { // every current value has been sent
				loaded = true
				continue
			}
			b.apply(e)
		case <-ctx.Done():
			w.Stop()
			return nil, fmt.Errorf("loading job states from bucket %s: %w", stateBucket, ctx.Err())
		}
	}
	go func() {
		defer close(b.done)
		for {
			select {
			case <-wctx.Done():
				w.Stop()
				return
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				if e != nil {
					b.apply(e)
				}
			}
		}
	}()
	return b, nil
}

// wait returns once the watcher has stopped.
func (b *board) wait() { <-b.done }

// apply records one change from the bucket.
func (b *board) apply(e jetstream.KeyValueEntry) {
	if e.Operation() != jetstream.KeyValuePut {
		b.remove(e.Key())
		return
	}
	var st State
	if err := json.Unmarshal(e.Value(), &st); err != nil {
		b.log.Error("undecodable job state", "job", e.Key(), "err", err)
		return
	}
	b.set(st, e.Revision())
}

// set records st at revision rev unless the board already holds a later
// one: the writer's own copy and the watcher's may arrive in either order.
func (b *board) set(st State, rev uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	old := b.jobs[st.ID]
	if old == nil {
		b.jobs[st.ID] = &entry{state: st, rev: rev, changed: make(chan struct{})}
		return
	}
	if rev <= old.rev {
		return
	}
	old.state, old.rev = st, rev
	close(old.changed)
	old.changed = make(chan struct{})
}

// remove forgets a purged job, waking its watchers.
func (b *board) remove(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if old := b.jobs[id]; old != nil {
		close(old.changed)
		delete(b.jobs, id)
	}
}

// get returns the job's state and a channel closed at its next change.
func (b *board) get(id string) (State, <-chan struct{}, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.jobs[id]
	if e == nil {
		return State{}, nil, false
	}
	return e.state, e.changed, true
}

// all returns a copy of every state on the board.
func (b *board) all() []State {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]State, 0, len(b.jobs))
	for _, e := range b.jobs {
		out = append(out, e.state)
	}
	return out
}

// active counts the jobs client has queued or running.
func (b *board) active(client string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, e := range b.jobs {
		if e.state.Client == client && !e.state.Terminal() {
			n++
		}
	}
	return n
}

// decode reads a state from the bucket.
func decode(e jetstream.KeyValueEntry) (State, error) {
	var st State
	if err := json.Unmarshal(e.Value(), &st); err != nil {
		return st, fmt.Errorf("job %s: undecodable state: %w", e.Key(), err)
	}
	return st, nil
}

// isNotFound reports whether err says a key or object does not exist.
func isNotFound(err error) bool {
	return errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrObjectNotFound) ||
		errors.Is(err, jetstream.ErrKeyDeleted)
}
