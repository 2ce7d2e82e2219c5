package jobs

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/img2vid/img2vid"
)

// errUnchanged tells change that f left the state as it was.
var errUnchanged = errors.New("unchanged")

// change applies f to a job's stored state, with optimistic concurrency:
// if another replica or the worker wrote in between, it reads again and
// reapplies f. The board sees the result at once.
func (s *System) change(ctx context.Context, id string, f func(*State) error) (State, error) {
	for {
		e, err := s.states.Get(ctx, id)
		if err != nil {
			return State{}, err
		}
		st, err := decode(e)
		if err != nil {
			return st, err
		}
		if err := f(&st); err != nil {
			return st, err
		}
		b, err := json.Marshal(st)
		if err != nil {
			return st, fmt.Errorf("encoding state of job %s: %w", id, err)
		}
		rev, err := s.states.Update(ctx, id, b, e.Revision())
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue
		}
		if err != nil {
			return st, fmt.Errorf("storing state of job %s: %w", id, err)
		}
		s.board.set(st, rev)
		return st, nil
	}
}

// Waiting returns how many jobs wait for a worker, from the consumer
// shared by every worker: the same answer on every replica.
func (s *System) Waiting(ctx context.Context) (int, error) {
	info, err := s.consumer.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("reading consumer %s: %w", consumerName, err)
	}
	return int(info.NumPending), nil
}

// StoredBytes is what the uploads and videos buckets hold now.
func (s *System) StoredBytes(ctx context.Context) (int64, error) {
	var total int64
	for _, b := range []jetstream.ObjectStore{s.uploads, s.videos} {
		st, err := b.Status(ctx)
		if err != nil {
			return 0, fmt.Errorf("reading bucket status: %w", err)
		}
		total += int64(st.Size())
	}
	return total, nil
}

// Submit stores the job's files (its images in order, then its soundtrack
// if it has one, named as in spec), records it as queued and puts it on the
// work queue. On error nothing of the job is left behind. The caller has
// taken the job's place against the limits first (Admit).
func (s *System) Submit(ctx context.Context, spec Spec, files []string, client string) error {
	objects := spec.objects()
	if len(files) != len(objects) {
		return fmt.Errorf("job %s: %d files for %d objects", spec.ID, len(files), len(objects))
	}
	// Paths on this machine: the worker sets its own.
	spec.Options.Audio, spec.Options.Detections = "", ""
	if spec.Plan != nil {
		plan := *spec.Plan
		plan.Options.Audio, plan.Options.Detections = "", ""
		spec.Plan = &plan
	}
	stored, created := 0, false
	ok := false
	defer func() {
		if ok {
			return
		}
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.deleteInputs(cctx, objects[:stored])
		if created {
			s.states.Purge(cctx, spec.ID)
		}
	}()
	for i, name := range objects {
		if err := s.putFile(ctx, name, files[i]); err != nil {
			return err
		}
		stored++
	}
	st := State{ID: spec.ID, Status: StatusQueued, Progress: img2vid.Progress{Stage: img2vid.StageQueued},
		Client: client, Format: spec.Options.Format, Name: spec.Name, Detect: spec.Options.DetectModel != "",
		Inputs: objects, Created: time.Now().UTC()}
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encoding state of job %s: %w", spec.ID, err)
	}
	rev, err := s.states.Create(ctx, spec.ID, b)
	if err != nil {
		return fmt.Errorf("recording job %s: %w", spec.ID, err)
	}
	created = true
	s.board.set(st, rev)
	msg, err := json.Marshal(spec)
	if err != nil {
		return fmt.Errorf("encoding job %s: %w", spec.ID, err)
	}
	m := nats.NewMsg(queueSubject)
	m.Data = msg
	if len(s.cfg.Key) > 0 {
		m.Header.Set(signatureHeader, sign(s.cfg.Key, msg))
	}
	ack, err := s.js.PublishMsg(ctx, m, jetstream.WithMsgID(spec.ID))
	if err != nil {
		return fmt.Errorf("queueing job %s: %w", spec.ID, err)
	}
	ok = true
	// The sequence lets a DELETE take the job off the queue; a worker may
	// have changed the state already, and then it is no longer needed.
	st.Seq = ack.Sequence
	if b, err = json.Marshal(st); err == nil {
		if rev, err = s.states.Update(ctx, spec.ID, b, rev); err == nil {
			s.board.set(st, rev)
		}
	}
	return nil
}

// putFile stores one file as an object.
func (s *System) putFile(ctx context.Context, name, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("reading upload: %w", err)
	}
	defer f.Close()
	ctx, cancel := withObjectDeadline(ctx)
	defer cancel()
	err = watchedPut(ctx, putIdle, f, func(ctx context.Context, r io.Reader) error {
		_, err := s.uploads.Put(ctx, jetstream.ObjectMeta{Name: name}, r)
		return err
	})
	if err != nil {
		// The file is here and readable: NATS did not take it, which the
		// client can only wait out.
		return &img2vid.Error{Code: img2vid.EUNAVAILABLE, Message: "the job store did not take the upload; try again later",
			Err: fmt.Errorf("storing upload %s: %w", name, err)}
	}
	return nil
}

// deleteInputs removes a job's images from the uploads bucket.
func (s *System) deleteInputs(ctx context.Context, names []string) {
	for _, name := range names {
		if err := removeObject(ctx, s.uploads, s.uploadsStream, uploadsBucket, name); err != nil {
			s.log.Warn("deleting upload", "object", name, "err", err)
		}
	}
}

// removeObject deletes an object and then the marker the delete leaves
// behind (ADR-20: the object's meta subject), so that nothing of it stays
// in the bucket to count against its size.
func removeObject(ctx context.Context, store jetstream.ObjectStore, backing jetstream.Stream, bucket, name string) error {
	if err := store.Delete(ctx, name); err != nil {
		if isNotFound(err) {
			return nil
		}
		return err
	}
	meta := "$O." + bucket + ".M." + base64.URLEncoding.EncodeToString([]byte(name))
	if err := backing.Purge(ctx, jetstream.WithPurgeSubject(meta)); err != nil {
		return fmt.Errorf("removing the delete marker of %s: %w", name, err)
	}
	return nil
}

// Job returns the job's state and a channel closed at its next change.
// A job that has not ended is read from the bucket, which is the truth:
// the board follows it through a watch, and a watch can fall behind while
// a NATS node is lost, or not yet hold a job submitted through another
// replica a moment ago. The board's copy answers when the bucket does not.
func (s *System) Job(ctx context.Context, id string) (State, <-chan struct{}, bool) {
	st, changed, ok := s.board.get(id)
	if ok && st.Terminal() {
		return st, changed, true
	}
	e, err := s.states.Get(ctx, id)
	if err != nil {
		return st, changed, ok && !isNotFound(err)
	}
	fresh, err := decode(e)
	if err != nil {
		return st, changed, ok
	}
	s.board.set(fresh, e.Revision())
	return s.board.get(id)
}

// Cancel deletes a job wherever it is: a queued one leaves the queue and
// its images go at once; a running one is canceled by its worker, which
// watches its state. Either way clients no longer see it.
func (s *System) Cancel(ctx context.Context, id string) error {
	st, err := s.change(ctx, id, func(st *State) error {
		if st.Deleted {
			return errUnchanged
		}
		st.Deleted = true
		if st.Status == StatusQueued {
			st.Status, st.Error, st.Finished = StatusCanceled, failure(context.Canceled), time.Now().UTC()
			st.Expires = st.Finished.Add(s.cfg.TTL)
		}
		return nil
	})
	switch {
	case isNotFound(err), errors.Is(err, errUnchanged):
		return img2vid.Errorf(img2vid.ENOTFOUND, "no job with id %q (it may have expired)", id)
	case err != nil:
		return err
	}
	if st.Status == StatusCanceled { // it was waiting: no worker will run it
		s.dropQueued(ctx, st)
	}
	return nil
}

// dropQueued takes a job that ended while it waited off the queue and
// deletes its images. A worker that took it meanwhile finds it ended.
func (s *System) dropQueued(ctx context.Context, st State) {
	if st.Seq != 0 {
		if err := s.stream.DeleteMsg(ctx, st.Seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			s.log.Debug("taking an ended job off the queue", "job", st.ID, "err", err)
		}
	}
	s.deleteInputs(ctx, st.Inputs)
}

// errExpired is why a job that waited longer than the TTL failed: its
// images expired with the uploads bucket's TTL.
func (s *System) errExpired() error {
	return img2vid.Errorf(img2vid.ENOTFOUND, "the files of this job expired before a worker could run it (job_ttl=%s)", s.cfg.TTL)
}

// Output is a file a finished job made (its video, its detections), read
// from the videos bucket. Read from its start, it is the object store's
// reader, which checks the whole object's digest; after a Seek elsewhere
// (a Range request) it starts at the chunk that holds the position,
// without pulling the chunks before it.
type Output struct {
	Size    int64
	ModTime time.Time
	ctx     context.Context
	store   jetstream.ObjectStore
	js      jetstream.JetStream
	name    string
	nuid    string // names the object's chunks
	pos     int64  // where the next Read starts
	r       io.ReadCloser
	cancel  context.CancelFunc // ends r's context
	rpos    int64              // where r is
}

// Video opens the job's video.
func (s *System) Video(ctx context.Context, id string) (*Output, error) {
	return s.output(ctx, id, "video", id)
}

// Detections opens the JSON Lines of the job's detections.
func (s *System) Detections(ctx context.Context, id string) (*Output, error) {
	return s.output(ctx, id, "detections", detectionsObject(id))
}

// detectionsObject names a job's detections in the videos bucket.
func detectionsObject(id string) string { return id + ".detections" }

// output opens one of the job's outputs.
func (s *System) output(ctx context.Context, id, what, name string) (*Output, error) {
	info, err := s.videos.GetInfo(ctx, name)
	if isNotFound(err) {
		return nil, img2vid.Errorf(img2vid.ENOTFOUND, "job %s has no %s (it may have expired)", id, what)
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s of job %s: %w", what, id, err)
	}
	return &Output{Size: int64(info.Size), ModTime: info.ModTime, ctx: ctx, store: s.videos, js: s.js, name: name, nuid: info.NUID}, nil
}

// Read reads from the current position.
func (v *Output) Read(p []byte) (int, error) {
	if v.pos >= v.Size {
		return 0, io.EOF
	}
	if v.r == nil || v.rpos != v.pos {
		v.Close()
		ctx, cancel := withObjectDeadline(v.ctx)
		var r io.ReadCloser
		var err error
		if v.pos == 0 {
			r, err = v.store.Get(ctx, v.name)
		} else {
			r, err = readFrom(ctx, v.js, videosBucket, v.nuid, v.pos)
		}
		if err != nil {
			cancel()
			return 0, fmt.Errorf("reading video %s: %w", v.name, err)
		}
		v.r, v.cancel, v.rpos = r, cancel, v.pos
	}
	n, err := v.r.Read(p)
	v.pos += int64(n)
	v.rpos += int64(n)
	return n, err
}

// Seek sets the position of the next Read.
func (v *Output) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += v.pos
	case io.SeekEnd:
		offset += v.Size
	default:
		return v.pos, fmt.Errorf("seek: bad whence %d", whence)
	}
	if offset < 0 {
		return v.pos, fmt.Errorf("seek: negative position %d", offset)
	}
	v.pos = offset
	return offset, nil
}

// Close lets go of the object.
func (v *Output) Close() error {
	if v.r == nil {
		return nil
	}
	err := v.r.Close()
	v.cancel()
	v.r, v.cancel = nil, nil
	return err
}

// objectLimit is the deadline given to a read or write of an object whose
// context has none. The NATS client gives such a read its default API
// timeout (5 s) for the whole object, so a video downloaded more slowly
// than that was cut off with a timeout (a worker's read of an upload has
// a bound of its own, by its size: Worker.fetch); and such a write the
// same 5 s for each chunk's acknowledgement, which a replicated bucket on
// a busy cluster can take longer to give. The deadline only replaces that
// default: a read still ends with its request or its job, and a stalled
// download with download_idle; a write ends once it stalls (putIdle).
const objectLimit = 24 * time.Hour

// withObjectDeadline is ctx with objectLimit as its deadline if it has none.
func withObjectDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, objectLimit)
}

// reap removes finished jobs older than the TTL, and deleted ones, often
// enough that a job outlives its TTL by at most half of it (and a minute).
// Every process reaps; purging a key twice does no harm. The video expires
// with its bucket's TTL, so nothing of the job is left after the TTL.
func (s *System) reap(ctx context.Context) {
	every := min(max(s.cfg.TTL/2, 10*time.Millisecond), time.Minute)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s.expire(ctx, now)
		}
	}
}

// failWaiting fails a job still queued after the TTL: its images have
// expired, so no worker can run it. A worker would fail it when it took
// it; this also ends one whose queue message was never published (its
// replica died between recording and queueing it), which no worker will
// ever take, and which would otherwise stay queued for good, counted
// against its client's limit.
func (s *System) failWaiting(ctx context.Context, id string) {
	st, err := s.change(ctx, id, func(st *State) error {
		if st.Status != StatusQueued {
			return errUnchanged
		}
		st.Status, st.Finished, st.Error = StatusFailed, time.Now().UTC(), failure(s.errExpired())
		st.Expires = st.Finished.Add(s.cfg.TTL)
		return nil
	})
	switch {
	case errors.Is(err, errUnchanged), isNotFound(err):
	case err != nil:
		s.log.Warn("failing a job that waited past the TTL", "job", id, "err", err)
	default:
		s.log.Info("job failed: it waited in the queue past the TTL", "job", id)
		s.dropQueued(ctx, st)
	}
}

// expire fails the jobs that waited in the queue longer than the TTL, and
// purges the jobs due at now.
func (s *System) expire(ctx context.Context, now time.Time) {
	purged := false
	for _, st := range s.board.all() {
		if st.Status == StatusQueued && now.Sub(st.Created) >= s.cfg.TTL {
			s.failWaiting(ctx, st.ID)
			continue
		}
		if !st.Terminal() || (!st.Deleted && now.Sub(st.Finished) < s.cfg.TTL) {
			continue
		}
		if st.Deleted && st.Status == StatusDone {
			for _, name := range []string{st.ID, detectionsObject(st.ID)} {
				if err := removeObject(ctx, s.videos, s.videosStream, videosBucket, name); err != nil {
					s.log.Warn("deleting a job's output", "object", name, "err", err)
				}
			}
		}
		if err := s.states.Purge(ctx, st.ID); err != nil {
			s.log.Warn("purging job state", "job", st.ID, "err", err)
			continue
		}
		s.board.remove(st.ID)
		s.dropPlaces(ctx, st)
		s.log.Debug("job expired", "job", st.ID)
		purged = true
	}
	if purged {
		// Purging leaves a marker per key; they are of no use here.
		if err := s.states.PurgeDeletes(ctx, jetstream.DeleteMarkersOlderThan(-1)); err != nil {
			s.log.Warn("removing purge markers", "err", err)
		}
	}
}
