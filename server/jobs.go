package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"time"

	"github.com/img2vid/img2vid"
	"github.com/img2vid/img2vid/jobs"
)

// Job statuses, as the API reports them.
const (
	StatusQueued   = jobs.StatusQueued
	StatusRunning  = jobs.StatusRunning
	StatusDone     = jobs.StatusDone
	StatusFailed   = jobs.StatusFailed
	StatusCanceled = jobs.StatusCanceled
)

// Jobs is the job system the API runs over: it stores a job's images and
// queues it, reports each job's state as it changes, cancels jobs and
// serves their videos, whichever process runs them. *jobs.System
// implements it.
type Jobs interface {
	// Admit takes an upload's place against the per-client, queue and
	// disk limits, shared by every replica, or refuses it: a *jobs.Refusal
	// for the client's jobs or the disk, a busy error for the queue.
	Admit(ctx context.Context, ask jobs.Ask) (*jobs.Admission, error)
	// Submit stores files as spec's inputs and queues the job.
	Submit(ctx context.Context, spec jobs.Spec, files []string, client string) error
	// Job returns a job's state and a channel closed at its next change.
	Job(ctx context.Context, id string) (jobs.State, <-chan struct{}, bool)
	// Follow returns the job's state as this process last saw it and a
	// channel closed at its next change, without asking NATS: for a job
	// already read with Job, so that a job's many event streams read NATS
	// no more than one does.
	Follow(id string) (jobs.State, <-chan struct{}, bool)
	// Cancel deletes a job, canceling it wherever it runs.
	Cancel(ctx context.Context, id string) error
	// Video opens a finished job's video.
	Video(ctx context.Context, id string) (*jobs.Output, error)
	// Detections opens a finished job's detections (JSON Lines).
	Detections(ctx context.Context, id string) (*jobs.Output, error)
	// StoredBytes is what the stored images and videos take.
	StoredBytes(ctx context.Context) (int64, error)
}

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
	Detections string `json:"detections,omitempty"`
	// Attempt counts the times a worker started the job; Note says why it
	// runs again (its worker stopped before it finished) or went back to
	// the queue (its worker shut down, or the job store did not answer).
	Attempt    int        `json:"attempt,omitempty"`
	Note       string     `json:"note,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	// ExpiresAt is when a finished job and its files are deleted.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// view returns the JSON form of a job's state.
func view(st jobs.State) JobView {
	v := JobView{ID: st.ID, Status: st.Status, Progress: st.Progress, Result: st.Result, Attempt: st.Attempt, Note: st.Note, CreatedAt: st.Created}
	if st.Error != nil {
		// The worker's folders are nobody else's business either.
		v.Error = &ErrorBody{Error: hidePaths(st.Error.Message), Code: st.Error.Code, Limit: st.Error.Limit}
	}
	if st.Status == StatusDone {
		v.Video = "/api/jobs/" + st.ID + "/video"
		if st.Detect {
			v.Detections = "/api/jobs/" + st.ID + "/detections"
		}
	}
	if !st.Finished.IsZero() {
		f, e := st.Finished, st.Expires
		v.FinishedAt, v.ExpiresAt = &f, &e
	}
	return v
}

// terminal reports whether status is one a job never leaves.
func terminal(status string) bool {
	return status == StatusDone || status == StatusFailed || status == StatusCanceled
}

// newID returns 128 random bits in hex, so ids cannot be guessed or
// enumerated.
func newID() string {
	var b [16]byte
	rand.Read(b[:]) // never returns an error; it crashes the program instead
	return hex.EncodeToString(b[:])
}

// validID reports whether s could be an id newID made; anything else is
// refused before it comes near the job system or a path.
func validID(s string) bool {
	if len(s) != 32 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// lookup returns the state of the job with id, or ENOTFOUND for an id
// that is unknown, expired or deleted.
func (s *Server) lookup(ctx context.Context, id string) (jobs.State, <-chan struct{}, error) {
	if validID(id) {
		if st, changed, ok := s.cfg.Jobs.Job(ctx, id); ok && !st.Deleted {
			return st, changed, nil
		}
	}
	return jobs.State{}, nil, img2vid.Errorf(img2vid.ENOTFOUND, "no job with id %q (it may have expired)", truncate(id, 40))
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
