package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// board is this process's live copy of every job's state, kept by one
// watcher on the whole key-value bucket: status, event streams and the
// per-client count read it without a round trip, and wake on its changes.
// A watcher that stops, or falls behind the bucket (it did while a NATS
// node was lost), is replaced by a new one, which loads every state again.
type board struct {
	log  *slog.Logger
	kv   jetstream.KeyValue
	nc   *nats.Conn
	done chan struct{}
	// open starts a watcher on every key: kv.WatchAll.
	open func(ctx context.Context) (jetstream.KeyWatcher, error)
	// every is how often the watcher is checked against the bucket.
	every time.Duration

	mu   sync.Mutex
	jobs map[string]*entry
	seen uint64 // the latest revision a watcher delivered
}

// entry is one job on the board and a channel closed at its next change.
type entry struct {
	state   State
	rev     uint64
	changed chan struct{}
}

// watchCheck is how often the board checks that its watcher keeps up.
const watchCheck = 5 * time.Second

// watch fills a board with the bucket's current states, waiting (within
// ctx) until it holds all of them, and keeps it up to date until wctx ends.
func watch(ctx, wctx context.Context, kv jetstream.KeyValue, nc *nats.Conn, log *slog.Logger) (*board, error) {
	b := &board{log: log, kv: kv, nc: nc, done: make(chan struct{}), every: watchCheck, jobs: map[string]*entry{},
		open: func(ctx context.Context) (jetstream.KeyWatcher, error) { return kv.WatchAll(ctx) }}
	return b, b.start(ctx, wctx)
}

// start loads the board and starts following the bucket.
func (b *board) start(ctx, wctx context.Context) error {
	w, _, err := b.load(ctx, wctx)
	if err != nil {
		return err
	}
	go func() {
		defer close(b.done)
		b.follow(wctx, w)
	}()
	return nil
}

// load starts a watcher that lives until wctx ends and applies every
// current state it sends, waiting for them within ctx. It returns the
// keys the watcher sent.
func (b *board) load(ctx, wctx context.Context) (jetstream.KeyWatcher, map[string]bool, error) {
	w, err := b.open(wctx)
	if err != nil {
		return nil, nil, fmt.Errorf("watching bucket %s: %w", stateBucket, err)
	}
	sent := map[string]bool{}
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return nil, nil, fmt.Errorf("watching bucket %s: the watcher stopped", stateBucket)
			}
			if e == nil { // every current value has been sent
				return w, sent, nil
			}
			sent[e.Key()] = true
			b.apply(e)
		case <-ctx.Done():
			w.Stop()
			return nil, nil, fmt.Errorf("loading job states from bucket %s: %w", stateBucket, ctx.Err())
		}
	}
}

// follow applies the watcher's changes until wctx ends. Every b.every it
// checks the watcher: one that stopped, that missed a reconnection, or
// that has not reached the bucket's last revision of the check before is
// replaced.
func (b *board) follow(wctx context.Context, w jetstream.KeyWatcher) {
	check := time.NewTicker(b.every)
	defer check.Stop()
	reconnects := b.nc.Stats().Reconnects
	var target uint64 // the bucket's last revision at the previous check, if the board was behind it
	for {
		var why string
		select {
		case <-wctx.Done():
			w.Stop()
			return
		case e, ok := <-w.Updates():
			if !ok {
				why = "the watcher stopped"
				break
			}
			if e != nil {
				b.apply(e)
			}
			continue
		case <-check.C:
			if n := b.nc.Stats().Reconnects; n != reconnects {
				reconnects, why = n, "the connection to NATS was made again"
				break
			}
			last, err := b.lastRevision(wctx)
			if err != nil {
				continue // NATS is away: a later check tells
			}
			seen := b.revision()
			if target != 0 && seen < target {
				why = fmt.Sprintf("the watcher is behind the bucket (revision %d of %d)", seen, target)
				break
			}
			target = 0
			if seen < last {
				target = last
			}
			continue
		}
		b.log.Warn("following job states again", "bucket", stateBucket, "why", why)
		w.Stop()
		target = 0
		if w = b.rewatch(wctx); w == nil {
			return
		}
	}
}

// rewatch starts a new watcher and loads every state again, trying until
// it works or wctx ends (then nil). The board then holds the bucket as it
// was when the new watcher started: a job purged while the old watcher
// was behind (another replica expired it, or took back a submission that
// failed) is not sent by the new one, and leaves the board, where it
// would otherwise count against its client's limit for good.
func (b *board) rewatch(wctx context.Context) jetstream.KeyWatcher {
	for wctx.Err() == nil {
		last, lerr := b.lastRevision(wctx)
		ctx, cancel := context.WithTimeout(wctx, 30*time.Second)
		w, sent, err := b.load(ctx, wctx)
		cancel()
		if err == nil {
			if lerr == nil { // what was deleted before the watch began is not sent again
				b.forget(last, sent)
			}
			return w
		}
		b.log.Warn("following job states again", "bucket", stateBucket, "err", err)
		select {
		case <-wctx.Done():
		case <-time.After(time.Second):
		}
	}
	return nil
}

// lastRevision is the bucket's latest revision: the sequence of the last
// message of its stream.
func (b *board) lastRevision(ctx context.Context) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := b.kv.Status(ctx)
	if err != nil {
		return 0, err
	}
	bs, ok := st.(*jetstream.KeyValueBucketStatus)
	if !ok {
		return 0, fmt.Errorf("bucket %s: status of type %T", stateBucket, st)
	}
	return bs.StreamInfo().State.LastSeq, nil
}

// forget takes note that the bucket has reached revision last, and
// removes the jobs a new watcher did not send: a job the board holds at
// revision last or before is sent unless the bucket no longer has it. A
// job written since (its revision is later) stays.
func (b *board) forget(last uint64, sent map[string]bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seen = max(b.seen, last)
	for id, e := range b.jobs {
		if !sent[id] && e.rev <= last {
			close(e.changed)
			delete(b.jobs, id)
		}
	}
}

// revision is the latest revision a watcher delivered.
func (b *board) revision() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.seen
}

// wait returns once the watcher has stopped.
func (b *board) wait() { <-b.done }

// apply records one change a watcher delivered.
func (b *board) apply(e jetstream.KeyValueEntry) {
	b.mu.Lock()
	b.seen = max(b.seen, e.Revision())
	b.mu.Unlock()
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
