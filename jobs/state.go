// Package jobs is the job system of img2vid on NATS JetStream: an API
// replica submits a job (its images into an object store, its spec onto a
// work-queue stream), watches its state in a key-value bucket and cancels
// it; a worker pulls jobs from a durable consumer shared by every worker,
// runs them, heartbeats while they run, and stores the video. The same code
// runs on a NATS server embedded in the process (the single-machine
// default) and on an external cluster.
package jobs

import (
	"fmt"
	"strings"
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

// State is what the key-value bucket holds for one job: everything a
// client may learn about it, written by the replica that accepted it and
// then by whichever worker runs it.
type State struct {
	ID       string           `json:"id"`
	Status   string           `json:"status"`
	Progress img2vid.Progress `json:"progress"`
	// Result is set once the job is done.
	Result *img2vid.Result `json:"result,omitempty"`
	// Error is set once the job failed or was canceled.
	Error *Failure `json:"error,omitempty"`
	// Client is the address that submitted the job, counted against the
	// jobs one client may have in flight on every replica.
	Client string `json:"client,omitempty"`
	// Format is the output format, which names the video's media type.
	Format string `json:"format"`
	// Name is what the video is downloaded as, without extension; "" for
	// a name made from the id.
	Name string `json:"name,omitempty"`
	// Detect is set when the job runs a detect model: once done it has
	// detections besides its video.
	Detect bool `json:"detect,omitempty"`
	// Inputs are the job's objects in the uploads bucket: the images, then
	// the soundtrack if any.
	Inputs []string `json:"inputs,omitempty"`
	// Attempt counts the times a worker started the job; Note says why it
	// is running again, or why it went back to the queue.
	Attempt int    `json:"attempt,omitempty"`
	Note    string `json:"note,omitempty"`
	// Seq is the job's message on the work-queue stream, so that a job
	// deleted while it waits leaves the queue at once.
	Seq uint64 `json:"seq,omitempty"`
	// Deleted is set by DELETE: clients no longer see the job, and its
	// worker, if it has one, cancels it.
	Deleted  bool      `json:"deleted,omitempty"`
	Created  time.Time `json:"created"`
	Finished time.Time `json:"finished,omitzero"`
	// Expires is when a finished job and its video are deleted.
	Expires time.Time `json:"expires,omitzero"`
}

// Failure is why a job failed or was canceled, as clients may see it: a
// code and a message, never internal detail.
type Failure struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Limit names the limit the job broke, if that is why it failed.
	Limit string `json:"limit,omitempty"`
}

// failure returns what a client may see of err.
func failure(err error) *Failure {
	return &Failure{Code: img2vid.ErrorCode(err), Message: img2vid.ErrorMessage(err), Limit: img2vid.ErrorLimit(err)}
}

// Terminal reports whether the job has ended: done, failed or canceled.
func (s State) Terminal() bool {
	return s.Status == StatusDone || s.Status == StatusFailed || s.Status == StatusCanceled
}

// Spec is the work-queue message of a job: what a worker needs to run it.
type Spec struct {
	ID string `json:"id"`
	// Inputs are the images in order, each an object in the uploads
	// bucket named ID/NNNNNN.EXT.
	Inputs []string `json:"inputs"`
	// Labels name each input as the client knows it (file 3 ("cut.jpg")),
	// for error messages.
	Labels []string `json:"labels"`
	// Audio is the soundtrack's object in the uploads bucket, named
	// ID/soundtrack.flac: the FLAC the server decoded the upload into;
	// "" for none. AudioLabel names it to the client.
	Audio      string `json:"audio,omitempty"`
	AudioLabel string `json:"audio_label,omitempty"`
	// Options are the job's options; a worker sets Audio to its own copy
	// of the soundtrack.
	Options img2vid.Options `json:"options"`
	// Plan is the job's plan, made by the replica that accepted it; the
	// worker runs it as it is, checking only what may differ on its
	// machine (the files' headers, the models' files). A message without
	// one was queued by a version that did not send it: its worker fails
	// the job, asking for it to be sent again, rather than plan it under
	// its own limits and models, which may not be those the client was
	// told of.
	Plan *img2vid.Plan `json:"plan,omitempty"`
	// Name is what the video is downloaded as, without extension.
	Name string `json:"name,omitempty"`
}

// objects lists every object of the job in the uploads bucket.
func (s Spec) objects() []string {
	if s.Audio == "" {
		return s.Inputs
	}
	return append(append([]string(nil), s.Inputs...), s.Audio)
}

// check refuses a spec that names anything but the job's own objects: an
// id of letters, digits, '-' and '_' (it names the worker's folder for
// the job, so it must be no path), and every object a plain name under
// it, each once, with a label for each image. A worker opens nothing
// else, so a message cannot point it at another job's files or at a path
// on its machine.
func (s Spec) check() error {
	if !plainID(s.ID) {
		return fmt.Errorf("job id %.40q is not one an API replica makes", s.ID)
	}
	if len(s.Labels) != len(s.Inputs) {
		return fmt.Errorf("job %s: %d labels for %d images", s.ID, len(s.Labels), len(s.Inputs))
	}
	// An API replica clears every path of its own machine before it
	// queues a job (Submit); a message that names one was not made by it.
	paths := s.Options.Audio + s.Options.Detections
	if s.Plan != nil {
		paths += s.Plan.Options.Audio + s.Plan.Options.Detections
	}
	if paths != "" {
		return fmt.Errorf("job %s: the message names a file on the worker's machine, which no API replica sends", s.ID)
	}
	seen := map[string]bool{}
	for _, name := range s.objects() {
		base, ok := strings.CutPrefix(name, s.ID+"/")
		if !ok || base == "" || base == "." || base == ".." || strings.ContainsAny(base, "/\\\x00") || seen[name] {
			return fmt.Errorf("job %s: object %.80q is not one of the job's own files", s.ID, name)
		}
		seen[name] = true
	}
	return nil
}

// plainID reports whether id is 1 to 64 letters, digits, '-' or '_'.
func plainID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}
