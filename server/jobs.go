package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/img2vid/img2vid"
)

// Job statuses, as the API reports them.
const (
	StatusQueued   = "queued"
	StatusRunning  = "running"
	StatusDone     = "done"
	StatusFailed   = "failed"
	StatusCanceled = "canceled"
)

// JobView is the JSON form of a job.
type JobView struct {
	ID       string           `json:"id"`
	Status   string           `json:"status"`
	Progress img2vid.Progress `json:"progress"`
	// Result is set once the job is done.
	Result *img2vid.Result `json:"result,omitempty"`
	// Error is set once the job failed or was canceled.
	Error *ErrorBody `json:"error,omitempty"`
	// Video is the URL of the result once the job is done.
	Video string `json:"video,omitempty"`
	// Detections is the URL of the detections once a job run with a
	// detect model is done.
	Detections string     `json:"detections,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	// ExpiresAt is when a finished job and its files are deleted.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// job is one conversion: its folder, inputs and the state clients watch.
type job struct {
	id      string
	dir     string
	client  string // remote IP, counted against Limits.JobsPerClient
	counted bool   // j holds one of its client's slots; guarded by Server.mu
	inputs  []string
	labels  []string // how each input is named to the client: file 3 ("cut.jpg")
	audio   string   // the stored soundtrack; "" for none
	// audioLabel names the soundtrack to the client; audioLen is its
	// length in seconds.
	audioLabel string
	audioLen   float64
	name       string // the download's name without extension, from the first file's
	output     string
	opts       img2vid.Options
	bytes      int64 // bytes of the folder counted against Limits.DiskBytes
	created    time.Time
	ctx        context.Context
	cancel     context.CancelFunc

	mu       sync.Mutex
	status   string
	progress img2vid.Progress
	result   *img2vid.Result
	err      error
	finished time.Time
	running  bool // a worker holds the folder; removal waits for it
	deleted  bool // removal asked for; the folder goes when no worker holds it
	removed  bool
	changed  chan struct{} // closed and replaced on every change, waking watchers
}

// newID returns 128 random bits in hex, so ids cannot be guessed or
// enumerated.
func newID() string {
	var b [16]byte
	rand.Read(b[:]) // never returns an error; it crashes the program instead
	return hex.EncodeToString(b[:])
}

// validID reports whether s could be an id newID made; anything else is
// refused before it comes near a map or a path.
func validID(s string) bool {
	if len(s) != 32 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// view returns the job's state and a channel closed at its next change.
func (j *job) view(ttl time.Duration) (JobView, <-chan struct{}) {
	j.mu.Lock()
	defer j.mu.Unlock()
	v := JobView{ID: j.id, Status: j.status, Progress: j.progress, Result: j.result, CreatedAt: j.created}
	if j.err != nil {
		b := errorBody(j.err)
		v.Error = &b
	}
	if j.status == StatusDone {
		v.Video = "/api/jobs/" + j.id + "/video"
		if j.opts.DetectModel != "" {
			v.Detections = "/api/jobs/" + j.id + "/detections"
		}
	}
	if !j.finished.IsZero() {
		f, e := j.finished, j.finished.Add(ttl)
		v.FinishedAt, v.ExpiresAt = &f, &e
	}
	return v, j.changed
}

// update changes the job under its lock and wakes its watchers.
func (j *job) update(f func()) {
	j.mu.Lock()
	defer j.mu.Unlock()
	f()
	close(j.changed)
	j.changed = make(chan struct{})
}

// terminal reports whether status is one a job never leaves.
func terminal(status string) bool {
	return status == StatusDone || status == StatusFailed || status == StatusCanceled
}

// enqueue hands j to the workers, or refuses with EBUSY when the queue is
// full or the server is shutting down, and with ETOOMANYJOBS when j's
// client has its share of jobs in flight.
func (s *Server) enqueue(j *job) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return img2vid.Errorf(img2vid.EBUSY, "the server is shutting down")
	}
	if err := s.clientFull(j.client); err != nil {
		return err
	}
	select {
	case s.queue <- j:
		s.jobs[j.id] = j
		s.active[j.client]++
		j.counted = true
		return nil
	default:
		return img2vid.Errorf(img2vid.EBUSY, "the job queue is full (queue=%d waiting jobs); try again later", cap(s.queue))
	}
}

// clientFull refuses a client that already has Limits.JobsPerClient jobs
// queued or running. The caller holds s.mu.
func (s *Server) clientFull(client string) error {
	lim := s.cfg.Limits
	if n := s.active[client]; img2vid.Over(n+1, lim.JobsPerClient) {
		return lim.Refuse(ETOOMANYJOBS, img2vid.LimitJobsPerClient, "this client already has %d jobs queued or running", n)
	}
	return nil
}

// release gives back j's slot among its client's jobs, once.
func (s *Server) release(j *job) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !j.counted {
		return
	}
	j.counted = false
	if s.active[j.client]--; s.active[j.client] <= 0 {
		delete(s.active, j.client)
	}
}

// lookup returns the job with id, or ENOTFOUND.
func (s *Server) lookup(id string) (*job, error) {
	if validID(id) {
		s.mu.Lock()
		j := s.jobs[id]
		s.mu.Unlock()
		if j != nil {
			return j, nil
		}
	}
	return nil, img2vid.Errorf(img2vid.ENOTFOUND, "no job with id %q (it may have expired)", truncate(id, 40))
}

// work runs queued jobs until the queue is closed.
func (s *Server) work() {
	defer s.workers.Done()
	for j := range s.queue {
		s.run(j)
	}
}

// run converts one job and records how it ended.
func (s *Server) run(j *job) {
	if j.ctx.Err() != nil { // canceled while it waited
		s.finish(j, img2vid.Result{}, j.ctx.Err(), 0)
		return
	}
	j.update(func() {
		j.status, j.running = StatusRunning, true
		j.progress.Stage = img2vid.StageDecode
	})
	s.metrics.running.Inc()
	defer s.metrics.running.Dec()
	ctx, cancel := context.WithCancel(j.ctx)
	if lim := s.cfg.Limits; lim.JobTimeout > 0 {
		ctx, cancel = context.WithTimeout(j.ctx, lim.JobTimeout)
	}
	defer cancel()
	start := time.Now()
	res, err := s.convert(ctx, j)
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) && j.ctx.Err() == nil {
		err = s.cfg.Limits.Refuse(img2vid.ETOOLARGE, img2vid.LimitJobTimeout, "the job ran past its time limit")
	}
	s.finish(j, res, err, time.Since(start))
}

// convert calls the converter, turning a panic into an internal error so
// that one bad job cannot take the server down.
func (s *Server) convert(ctx context.Context, j *job) (res img2vid.Result, err error) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("conversion panicked", "job", j.id, "panic", p, "stack", string(debug.Stack()))
			err = fmt.Errorf("conversion panicked: %v", p)
		}
	}()
	progress := func(p img2vid.Progress) {
		j.update(func() {
			s.metrics.frames.Add(float64(max(p.Done-j.progress.Done, 0)))
			j.progress = p
		})
	}
	return s.cfg.Converter.Convert(ctx, j.inputs, j.output, j.opts, progress)
}

// finish records the outcome, frees the inputs (only the video is served
// from here on) and removes the folder if a DELETE came while it ran.
func (s *Server) finish(j *job, res img2vid.Result, err error, took time.Duration) {
	outcome := StatusDone
	switch {
	case img2vid.ErrorCode(err) == img2vid.ECANCELED:
		outcome = StatusCanceled
	case err != nil:
		outcome = StatusFailed
	}
	for _, in := range j.inputs {
		os.Remove(in)
	}
	if j.audio != "" {
		os.Remove(j.audio)
	}
	if err != nil {
		err = j.relabel(err)
		os.Remove(j.output) // never serve a half-written video
		s.log.Info("job ended", "job", j.id, "outcome", outcome, "took", took, "err", err)
	} else {
		s.log.Info("job done", "job", j.id, "took", took, "frames", res.Frames)
	}
	s.metrics.observeJob(outcome, took, j.opts, s.provider())
	if limit := img2vid.ErrorLimit(err); limit != "" {
		s.metrics.refusals.WithLabelValues(limit).Inc()
	}
	if err != nil && j.opts.Detections != "" {
		os.Remove(j.opts.Detections)
	}
	var size int64
	for _, f := range []string{j.output, j.opts.Detections} {
		if fi, statErr := os.Stat(f); f != "" && statErr == nil && err == nil {
			size += fi.Size()
		}
	}
	// The client's slot frees before the job turns terminal, so a client
	// that waits for the end may submit its next job at once.
	s.release(j)
	var remove bool
	j.update(func() {
		// The log above has the whole message; the job shows no paths.
		j.status, j.err, j.running, j.finished = outcome, withoutPaths(err), false, time.Now()
		if err == nil {
			j.result = &res
			j.progress.Stage, j.progress.ETAMS = img2vid.StageDone, 0
		}
		s.disk.Add(size - j.bytes)
		j.bytes = size
		remove = j.deleted
	})
	if remove {
		s.removeFiles(j)
	}
}

// relabel rewrites the stored file names in a failed job's message as the
// names the client sent, which mean something to them.
func (j *job) relabel(err error) error {
	var e *img2vid.Error
	if !errors.As(err, &e) || e.Code == img2vid.EINTERNAL {
		return err
	}
	msg := e.Message
	for i, in := range j.inputs {
		msg = strings.ReplaceAll(msg, in, j.labels[i])
		msg = strings.ReplaceAll(msg, filepath.Base(in), j.labels[i])
	}
	if j.audio != "" {
		msg = strings.ReplaceAll(msg, fmt.Sprintf("soundtrack %q", filepath.Base(j.audio)), j.audioLabel)
	}
	if msg == e.Message {
		return err
	}
	return &img2vid.Error{Code: e.Code, Message: msg, Err: err}
}

// remove forgets the job, cancels it and deletes its folder, at once if no
// worker holds it, otherwise when its worker lets go.
func (s *Server) remove(j *job) {
	s.mu.Lock()
	delete(s.jobs, j.id)
	s.mu.Unlock()
	j.cancel()
	var now, wasQueued bool
	j.update(func() {
		j.deleted = true
		now = !j.running
		if j.status == StatusQueued {
			j.status, j.err = StatusCanceled, context.Canceled
			wasQueued = true
		}
	})
	if wasQueued { // it will never run: its client may use the slot now
		s.release(j)
	}
	if now {
		s.removeFiles(j)
	}
}

// removeFiles deletes the job's folder once and returns its bytes to the
// disk budget.
func (s *Server) removeFiles(j *job) {
	j.mu.Lock()
	done := j.removed
	j.removed = true
	bytes := j.bytes
	j.bytes = 0 // counted off once: finish, if it runs later, must not again
	j.mu.Unlock()
	if done {
		return
	}
	if err := os.RemoveAll(j.dir); err != nil {
		s.log.Error("removing job folder", "job", j.id, "err", err)
	}
	s.disk.Add(-bytes)
}

// expire removes finished jobs older than the TTL.
func (s *Server) expire(now time.Time) {
	s.mu.Lock()
	var old []*job
	for _, j := range s.jobs {
		j.mu.Lock()
		if terminal(j.status) && !j.running && now.Sub(j.finished) >= s.cfg.TTL {
			old = append(old, j)
		}
		j.mu.Unlock()
	}
	s.mu.Unlock()
	for _, j := range old {
		s.log.Debug("job expired", "job", j.id)
		s.remove(j)
	}
}

// reap runs expire until stop is closed, often enough that a job outlives
// its TTL by at most half of it (and by at most a minute).
func (s *Server) reap(stop <-chan struct{}) {
	defer s.workers.Done()
	every := min(max(s.cfg.TTL/2, 10*time.Millisecond), time.Minute)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			s.expire(now)
		}
	}
}

// truncate shortens s to n runes for messages that quote client input.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}

// removeLeftovers deletes the job folders in the work folder that no job of
// this server owns: those of a process that crashed or was killed before
// it could clean up. Only folders named like a job id are touched, so a
// work folder set to a place that holds other files loses none of them.
// It runs before the server takes a request, when no job is live.
func (s *Server) removeLeftovers() {
	entries, err := os.ReadDir(s.cfg.WorkDir)
	if err != nil {
		s.log.Warn("listing the work folder for leftovers", "dir", s.cfg.WorkDir, "err", err)
		return
	}
	removed := 0
	for _, e := range entries {
		if !e.IsDir() || !validID(e.Name()) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(s.cfg.WorkDir, e.Name())); err != nil {
			s.log.Warn("removing a leftover job folder", "dir", e.Name(), "err", err)
			continue
		}
		removed++
	}
	if removed > 0 {
		s.log.Info("removed job folders left by an earlier run", "folders", removed, "work_dir", s.cfg.WorkDir)
	}
}
