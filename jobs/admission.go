package jobs

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/img2vid/img2vid"
)

// admissionBucket holds the places jobs hold against the admission limits,
// shared by every replica.
const admissionBucket = "img2vid-admission"

// Keys of the admission bucket: one list of places per client, and one
// for the queue and the disk budget.
const (
	clientKeyPrefix = "client."
	allKey          = "all"
)

// How long a place holds without its replica: an upload's replica renews
// its places while the upload arrives, and once the job is queued its
// place lasts on the job's state, with a short overlap for the other
// replicas' boards to see the new job. A replica that dies mid-upload
// loses its places within holdFor.
const (
	holdFor    = time.Minute
	renewEvery = holdFor / 3
	overlap    = 10 * time.Second
	// markerTTL is how long the marker of a list that went empty stays.
	markerTTL = time.Second
)

// place is one job's claim on a limit.
type place struct {
	ID string `json:"id"`
	// Until is when the place goes, unless its job is on the board and
	// still counts.
	Until time.Time `json:"until"`
	// Bytes is what the upload may still add to the store; 0 once it is
	// stored.
	Bytes int64 `json:"bytes,omitempty"`
}

// Ask is what an upload asks to be admitted with.
type Ask struct {
	ID     string // the job's id
	Client string // who sends it, counted against PerClient
	// Bytes is the most the upload may add to the store, counted against
	// DiskBytes while it arrives.
	Bytes int64
	// PerClient is how many jobs one client may have uploading, queued or
	// running (0: no limit); DiskBytes the store's budget (0: none).
	PerClient int
	DiskBytes int64
}

// Refusal says which limit of the server's turned an upload away, and how
// much of it was in use, for the server to word (a full queue is the job
// system's own, and refused as busy).
type Refusal struct {
	Limit string // img2vid.LimitJobsPerClient or img2vid.LimitDiskMB
	Used  int64  // the client's jobs, or the bytes stored and arriving
}

func (r *Refusal) Error() string {
	return fmt.Sprintf("admission refused by %s (%d in use)", r.Limit, r.Used)
}

// Admission is an upload's place against the per-client, queue and disk
// limits, held in NATS for every replica to count from the moment it is
// admitted: two uploads that race, on one replica or on two, cannot both
// take the last place. The holder calls Submitted once the job is queued
// (its place then lasts as long as the job counts) or Release when the
// upload fails.
type Admission struct {
	s    *System
	ask  Ask
	stop chan struct{}
	once sync.Once
	done chan struct{}
}

// Admit reserves a place for ask's upload, or refuses it: with a *Refusal
// naming the limit of the client's jobs or the disk budget, or as busy
// when the queue (Config.Queue) is full. Counted are the places held (uploads
// arriving on any replica) and the jobs their places stand for (queued or
// running for a client; queued for the queue); the disk budget counts what
// the buckets hold and what the uploads arriving may still add. Each count is
// a revision-checked write of its key: when two replicas write at once,
// one writes again on what the other wrote.
func (s *System) Admit(ctx context.Context, ask Ask) (*Admission, error) {
	if !plainID(ask.ID) {
		return nil, fmt.Errorf("admission: job id %.40q is not a plain id", ask.ID)
	}
	until := time.Now().Add(holdFor)
	clientKey := clientKeyOf(ask.Client)
	err := s.claim(ctx, clientKey, ask, until, func(kept []place) error {
		if img2vid.Over(len(kept)+1, ask.PerClient) {
			return &Refusal{Limit: img2vid.LimitJobsPerClient, Used: int64(len(kept))}
		}
		return nil
	}, s.holds(func(st State) bool { return !st.Terminal() }))
	if err != nil {
		return nil, err
	}
	err = s.claim(ctx, allKey, ask, until, func(kept []place) error {
		if len(kept)+1 > s.cfg.Queue {
			return img2vid.Errorf(img2vid.EBUSY, "the job queue is full (queue=%d jobs waiting or uploading); try again later", s.cfg.Queue)
		}
		if ask.DiskBytes <= 0 {
			return nil
		}
		// Read after the list: an upload stored since is then in the
		// buckets, or its place still counts its bytes (a place gives its
		// bytes up only once they are stored), or its write comes after
		// this read and this claim is counted again.
		used, err := s.StoredBytes(ctx)
		if err != nil {
			return unreachable(err)
		}
		for _, p := range kept {
			used += p.Bytes
		}
		if img2vid.Over(used+ask.Bytes, ask.DiskBytes) {
			return &Refusal{Limit: img2vid.LimitDiskMB, Used: used}
		}
		return nil
	}, s.holds(func(st State) bool { return st.Status == StatusQueued }))
	if err != nil {
		s.unclaim(context.WithoutCancel(ctx), clientKey, ask.ID)
		return nil, err
	}
	a := &Admission{s: s, ask: ask, stop: make(chan struct{}), done: make(chan struct{})}
	go a.renew()
	return a, nil
}

// holds returns the test of whether a place still holds: once its job is
// on the board, for as long as the job counts (by counted), so that a job
// that ends frees its place at once; before (an upload arriving, or a job
// queued through another replica a moment ago), until the place's time
// runs out.
func (s *System) holds(counted func(State) bool) func(place, time.Time) bool {
	return func(p place, now time.Time) bool {
		if st, _, ok := s.board.get(p.ID); ok {
			return counted(st)
		}
		return now.Before(p.Until)
	}
}

// unreachable is the error of an admission NATS did not answer.
func unreachable(err error) error {
	return &img2vid.Error{Code: img2vid.EUNAVAILABLE, Message: "the job queue cannot be reached; try again later", Err: err}
}

// claim adds ask's place to the list at key, after dropping the places
// that no longer hold and asking check whether the rest leave room. It
// writes only on the revision it read, reading again when another writer
// came first.
func (s *System) claim(ctx context.Context, key string, ask Ask, until time.Time, check func([]place) error, holds func(place, time.Time) bool) error {
	return s.rewrite(ctx, key, func(list []place) ([]place, error) {
		now := time.Now()
		var kept []place
		for _, p := range list {
			if p.ID != ask.ID && holds(p, now) {
				kept = append(kept, p)
			}
		}
		if err := check(kept); err != nil {
			return nil, err
		}
		return append(kept, place{ID: ask.ID, Until: until, Bytes: ask.Bytes}), nil
	})
}

// unclaim drops id's place from the list at key.
func (s *System) unclaim(ctx context.Context, key, id string) {
	err := s.rewrite(ctx, key, func(list []place) ([]place, error) {
		return editPlace(list, id, nil), nil
	})
	if err != nil {
		s.log.Warn("releasing an upload's place", "job", id, "err", err)
	}
}

// dropPlaces drops an expired job's places, which would otherwise stay on
// its client's list until the client came back.
func (s *System) dropPlaces(ctx context.Context, st State) {
	s.unclaim(ctx, clientKeyOf(st.Client), st.ID)
	s.unclaim(ctx, allKey, st.ID)
}

// editPlace returns list with id's place changed by f, or dropped when f
// is nil.
func editPlace(list []place, id string, f func(*place)) []place {
	out := list[:0]
	for _, p := range list {
		if p.ID == id {
			if f == nil {
				continue
			}
			f(&p)
		}
		out = append(out, p)
	}
	return out
}

// rewrite replaces the list at key with what edit makes of it, on the
// revision read; an edit error is returned as it is.
func (s *System) rewrite(ctx context.Context, key string, edit func([]place) ([]place, error)) error {
	for {
		var list []place
		var rev uint64
		e, err := s.admission.Get(ctx, key)
		switch {
		case err == nil:
			rev = e.Revision()
			if err := json.Unmarshal(e.Value(), &list); err != nil {
				return fmt.Errorf("admission key %s: %w", key, err)
			}
		case !errors.Is(err, jetstream.ErrKeyNotFound):
			return unreachable(err)
		}
		list, err = edit(list)
		if err != nil {
			return err
		}
		b, err := json.Marshal(list)
		if err != nil {
			return fmt.Errorf("encoding admission key %s: %w", key, err)
		}
		switch {
		case len(list) == 0 && rev == 0:
			return nil
		case len(list) == 0:
			// An empty list goes, and its marker a moment later: nothing
			// of a client is kept once its jobs are gone.
			err = s.admission.Purge(ctx, key, jetstream.LastRevision(rev), jetstream.PurgeTTL(markerTTL))
		case rev == 0:
			_, err = s.admission.Create(ctx, key, b)
		default:
			_, err = s.admission.Update(ctx, key, b, rev)
		}
		if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) || isWrongLastSequence(err) {
			continue // another replica wrote first: count again on what it wrote
		}
		if err != nil {
			return unreachable(err)
		}
		return nil
	}
}

// isWrongLastSequence reports a write refused because the key changed
// since it was read (JetStream's error 10071).
func isWrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}

// renew keeps the places while the upload arrives.
func (a *Admission) renew() {
	defer close(a.done)
	t := time.NewTicker(renewEvery)
	defer t.Stop()
	for {
		select {
		case <-a.stop:
			return
		case <-t.C:
			a.set(time.Now().Add(holdFor), a.ask.Bytes)
		}
	}
}

// set gives the upload's places a new end and byte count.
func (a *Admission) set(until time.Time, bytes int64) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, key := range a.keys() {
		err := a.s.rewrite(ctx, key, func(list []place) ([]place, error) {
			return editPlace(list, a.ask.ID, func(p *place) { p.Until, p.Bytes = until, bytes }), nil
		})
		if err != nil {
			a.s.log.Warn("renewing an upload's place", "job", a.ask.ID, "err", err)
		}
	}
}

// keys are the admission keys the upload holds a place in.
func (a *Admission) keys() []string {
	return []string{clientKeyOf(a.ask.Client), allKey}
}

// clientKeyOf is the admission key of client's list: its address in hex,
// which holds only characters a key may.
func clientKeyOf(client string) string { return clientKeyPrefix + hex.EncodeToString([]byte(client)) }

// end stops the renewal, once.
func (a *Admission) end() bool {
	first := false
	a.once.Do(func() {
		close(a.stop)
		<-a.done
		first = true
	})
	return first
}

// Submitted says the job is queued: its places now last as long as it
// counts on the board (queued or running), and its bytes are in the
// buckets.
func (a *Admission) Submitted() {
	if a.end() {
		a.set(time.Now().Add(overlap), 0)
	}
}

// Release gives the places back, for an upload that failed. After
// Submitted it does nothing.
func (a *Admission) Release() {
	if !a.end() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, key := range a.keys() {
		a.s.unclaim(ctx, key, a.ask.ID)
	}
}
