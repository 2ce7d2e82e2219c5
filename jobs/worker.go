package jobs

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/img2vid/img2vid"
)

// Converter runs a job's plan: the images at inputs, in the order given,
// into a video written to output, which may take at most maxBytes on disk
// (0: no cap). The plan was made where the job was accepted; the
// converter checks that the files and models it has are those planned,
// and works out nothing of it again. *pipeline.Pipeline implements it.
type Converter interface {
	Run(ctx context.Context, plan img2vid.Plan, inputs []string, output string, maxBytes int64,
		progress func(img2vid.Progress)) (img2vid.Result, error)
}

// WorkerConfig sets up a worker. Zero values take the defaults shown.
type WorkerConfig struct {
	// Converter runs the jobs. Required.
	Converter Converter
	// Dir holds one folder per running job: its images and the video
	// before it is stored. Required; emptied at start, since anything in
	// it belongs to a process that is gone.
	Dir string
	// Slots is how many jobs run at once (default 1: a job already uses
	// every core through ffmpeg and the runtime).
	Slots int
	// Limits bound the jobs; the worker applies JobTimeout and DiskMB, the
	// second to the video being written (zero: none).
	Limits img2vid.Limits
	// Provider names the execution provider, for metric labels; it is
	// asked when a job ends, as a worker may open its runtime late.
	// Optional ("none").
	Provider func() string
	// Ready reports whether this worker can run a job now (its runtime,
	// its GPU, ffmpeg). A worker fetches a job only once Ready returns nil,
	// and asks again every ReadyEvery while it does not. Optional.
	Ready func(context.Context) error
	// ReadyEvery is how often a worker that is not ready asks again, and
	// how long one fetch waits for a job before readiness is asked again
	// (default 2s): a worker that stops being ready takes no job after it.
	ReadyEvery time.Duration
	// Registerer receives the worker's metrics. Optional.
	Registerer prometheus.Registerer
	// Logger receives the worker's logs. Optional.
	Logger *slog.Logger
}

// Worker pulls jobs from the shared consumer and runs them, one per slot.
type Worker struct {
	sys       *System
	cfg       WorkerConfig
	log       *slog.Logger
	metrics   *workerMetrics
	fetching  context.Context // ends when the worker stops taking jobs
	stopFetch context.CancelFunc
	running   context.Context // parent of every job's context
	handBack  context.CancelCauseFunc
	slots     sync.WaitGroup

	readyMu  sync.Mutex
	notReady error // why the worker is not ready, at the last check
	checked  bool  // whether readiness was asked yet

	mu sync.Mutex
	// reserved holds, per running job, the disk its video may take: in
	// the job's folder while it is written, and as much again in the
	// videos bucket while it is stored.
	reserved map[string]int64
}

// Causes of a job's cancellation, told apart when it ends.
var (
	errDeleted  = img2vid.Errorf(img2vid.ECANCELED, "canceled")
	errHandBack = errors.New("the worker is shutting down")
	// errStoreLost marks a failure to read a job's files from, or write its
	// outputs to, the buckets: NATS lost for a moment (a node killed, its
	// streams electing a new leader), not something wrong with the job.
	errStoreLost = errors.New("the job store did not answer")
)

// outputExtensions maps an output format to the video's file name.
var outputExtensions = map[string]string{img2vid.FormatMP4: ".mp4", img2vid.FormatWebM: ".webm", img2vid.FormatGIF: ".gif"}

// StartWorker empties cfg.Dir and starts taking jobs.
func (s *System) StartWorker(cfg WorkerConfig) (*Worker, error) {
	if cfg.Converter == nil || cfg.Dir == "" {
		return nil, fmt.Errorf("worker config: Converter and Dir are required")
	}
	if cfg.Slots < 0 {
		return nil, fmt.Errorf("worker config: slots must not be negative")
	}
	if err := cfg.Limits.Validate(); err != nil {
		return nil, fmt.Errorf("worker config: %w", err)
	}
	cfg.Slots = cmp.Or(cfg.Slots, 1)
	cfg.ReadyEvery = cmp.Or(cfg.ReadyEvery, 2*time.Second)
	if cfg.ReadyEvery < 0 {
		return nil, fmt.Errorf("worker config: ReadyEvery must not be negative")
	}
	if err := os.RemoveAll(cfg.Dir); err != nil {
		return nil, fmt.Errorf("emptying worker folder: %w", err)
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating worker folder: %w", err)
	}
	m, err := newWorkerMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	w := &Worker{sys: s, cfg: cfg, log: cmp.Or(cfg.Logger, s.log), metrics: m, reserved: map[string]int64{}}
	w.fetching, w.stopFetch = context.WithCancel(context.Background())
	w.running, w.handBack = context.WithCancelCause(context.Background())
	for range cfg.Slots {
		w.slots.Go(w.loop)
	}
	return w, nil
}

// Stop stops taking jobs and waits for the running ones until ctx ends;
// those still running then are canceled and handed back to the queue, to
// run on another worker (or on this one after a restart). It returns
// ctx's error if it had to hand jobs back.
func (w *Worker) Stop(ctx context.Context) error {
	w.stopFetch()
	done := make(chan struct{})
	go func() { w.slots.Wait(); close(done) }()
	select {
	case <-done:
		w.handBack(nil)
		return nil
	case <-ctx.Done():
		w.handBack(errHandBack)
		<-done
		return fmt.Errorf("jobs still running were handed back to the queue: %w", ctx.Err())
	}
}

// loop takes one job at a time until the worker stops, while it is ready.
func (w *Worker) loop() {
	for w.waitReady() {
		// One fetch waits at most ReadyEvery: the server ends the pull a
		// little before the context (FetchContext), so no job is sent to
		// a pull nobody listens to any more.
		ctx, cancel := context.WithTimeout(w.fetching, w.cfg.ReadyEvery)
		msg, err := w.sys.consumer.Next(jetstream.FetchContext(ctx))
		cancel()
		if errors.Is(err, nats.ErrTimeout) || errors.Is(err, jetstream.ErrNoMessages) ||
			(errors.Is(err, context.DeadlineExceeded) && w.fetching.Err() == nil) {
			continue // no job came within the pull's lifetime: ask again
		}
		if err != nil {
			if w.fetching.Err() == nil {
				w.log.Warn("fetching a job", "err", err)
				select { // NATS may be away; do not spin
				case <-time.After(time.Second):
				case <-w.fetching.Done():
				}
			}
			continue
		}
		w.handle(msg)
	}
}

// readyTimeout bounds one readiness check, so that a check that hangs
// (a GPU that does not answer) is an answer too.
const readyTimeout = 10 * time.Second

// waitReady returns true once Ready says the worker can run a job, and
// false once the worker stops taking jobs.
func (w *Worker) waitReady() bool {
	for w.fetching.Err() == nil {
		err := w.checkReady()
		if err == nil {
			return true
		}
		select {
		case <-time.After(w.cfg.ReadyEvery):
		case <-w.fetching.Done():
		}
	}
	return false
}

// checkReady asks Ready, and logs and counts each change of its answer.
func (w *Worker) checkReady() error {
	var err error
	if w.cfg.Ready != nil {
		ctx, cancel := context.WithTimeout(w.fetching, readyTimeout)
		err = w.cfg.Ready(ctx)
		cancel()
		if err != nil && w.fetching.Err() != nil {
			return err // stopping: not a change of readiness
		}
	}
	w.readyMu.Lock()
	defer w.readyMu.Unlock()
	was, first := w.notReady, !w.checked
	w.notReady, w.checked = err, true
	switch {
	case err != nil && (first || was == nil || was.Error() != err.Error()):
		w.metrics.ready.Set(0)
		w.log.Warn("worker not ready: it takes no job until it is", "reason", err)
	case err == nil && (first || was != nil):
		w.metrics.ready.Set(1)
		if !first {
			w.log.Info("worker ready again: taking jobs")
		}
	}
	return err
}

// handle runs one delivery of a job to its end, or hands it back.
func (w *Worker) handle(msg jetstream.Msg) {
	var spec Spec
	if err := json.Unmarshal(msg.Data(), &spec); err != nil || spec.ID == "" {
		w.log.Error("dropping an undecodable job message", "err", err)
		msg.Term()
		return
	}
	log := w.log.With("job", spec.ID)
	if err := verify(w.sys.cfg.Key, msg.Headers(), msg.Data()); err != nil {
		w.refuse(msg, spec.ID, img2vid.Errorf(img2vid.EUNAVAILABLE,
			"the job was refused by its worker: %v (the API replicas and the workers need the same job key)", err), log)
		return
	}
	if err := spec.check(); err != nil {
		w.refuse(msg, spec.ID, img2vid.Errorf(img2vid.EINVALID, "the job was refused by its worker: %v", err), log)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	meta, err := msg.Metadata()
	if err != nil {
		log.Error("job message without metadata", "err", err)
		msg.Term()
		return
	}
	attempts := w.sys.cfg.Attempts
	lastDelivery := int(meta.NumDelivered) >= w.sys.cfg.maxDeliver()
	var note string
	begin := func(st *State) error {
		if st.Terminal() { // canceled while it waited, or done before a crash kept the ack from arriving
			return errUnchanged
		}
		if st.Deleted { // deleted while a worker that then stopped (or handed it back) ran it
			st.Status, st.Finished, st.Error = StatusCanceled, time.Now().UTC(), failure(errDeleted)
			st.Expires = st.Finished.Add(w.sys.cfg.TTL)
			return nil
		}
		if st.Attempt >= attempts || lastDelivery {
			st.Status, st.Finished = StatusFailed, time.Now().UTC()
			st.Expires = st.Finished.Add(w.sys.cfg.TTL)
			err := img2vid.Errorf(img2vid.EUNAVAILABLE,
				"the job was started %d times and its worker stopped each time before it finished (attempts=%d)", st.Attempt, attempts)
			if st.Attempt < attempts { // the deliveries ran out first: hand-backs and requeues count in them, not in attempts
				err = img2vid.Errorf(img2vid.EUNAVAILABLE,
					"the job went to a worker %d times without finishing: its workers shut down or the job store did not answer each time (attempts=%d)",
					meta.NumDelivered-1, attempts)
			}
			st.Error = failure(err)
			return nil
		}
		st.Attempt++
		st.Status, st.Progress = StatusRunning, img2vid.Progress{Stage: img2vid.StageDecode}
		if st.Attempt > 1 {
			note = fmt.Sprintf("attempt %d of %d: the worker that ran it before stopped before it finished", st.Attempt, attempts)
		}
		st.Note = note
		return nil
	}
	var st State
	err = whenFound(ctx, func() (err error) {
		st, err = w.sys.change(ctx, spec.ID, begin)
		return err
	})
	switch {
	case isNotFound(err): // expired or deleted before a worker reached it
		log.Info("job state gone; dropping the job")
		w.sys.deleteInputs(ctx, spec.objects())
		msg.Term()
		return
	case errors.Is(err, errUnchanged):
		w.sys.deleteInputs(ctx, spec.objects())
		msg.Ack()
		return
	case err != nil:
		log.Warn("cannot start job; it goes back to the queue", "err", err)
		msg.NakWithDelay(time.Second)
		return
	}
	if st.Status == StatusCanceled {
		log.Info("job deleted while a worker that stopped held it; dropping the job")
		w.metrics.observe(StatusCanceled, 0, spec.Options, w.provider())
		w.sys.deleteInputs(ctx, spec.objects())
		msg.Ack()
		return
	}
	if st.Status == StatusFailed {
		log.Warn("job failed: its workers kept stopping", "attempts", st.Attempt)
		w.metrics.observe(StatusFailed, 0, spec.Options, w.provider())
		w.sys.deleteInputs(ctx, spec.objects())
		msg.Term()
		return
	}
	if note != "" {
		log.Info("job runs again", "attempt", st.Attempt)
	}
	w.run(msg, spec, st, log)
}

// refuse drops a job message the worker will not run (not signed with its
// key, or naming files that are not the job's own) and fails the job, if
// there is one by that id still waiting, saying why: a deployment whose
// replicas and workers hold different keys then shows it on every job
// instead of leaving them queued until they expire.
func (w *Worker) refuse(msg jetstream.Msg, id string, why error, log *slog.Logger) {
	log.Error("refusing a job message", "err", why)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := w.sys.change(ctx, id, func(st *State) error {
		if st.Terminal() {
			return errUnchanged
		}
		st.Status, st.Finished, st.Error = StatusFailed, time.Now().UTC(), failure(why)
		st.Expires = st.Finished.Add(w.sys.cfg.TTL)
		return nil
	})
	if err != nil && !isNotFound(err) && !errors.Is(err, errUnchanged) {
		log.Warn("recording a refused job", "err", err)
	}
	msg.Term()
}

// run converts one job: its images from the uploads bucket into a folder
// of its own, the video into the videos bucket, heartbeats and progress
// into the job's state meanwhile.
func (w *Worker) run(msg jetstream.Msg, spec Spec, st State, log *slog.Logger) {
	jobCtx, cancel := context.WithCancelCause(w.running)
	defer cancel(nil)
	dir := filepath.Join(w.cfg.Dir, spec.ID)
	defer os.RemoveAll(dir)
	defer w.release(spec.ID) // once the video is stored, the bucket counts it
	w.metrics.running.Inc()
	defer w.metrics.running.Dec()
	tr := &tracker{sys: w.sys, id: spec.ID, progress: st.Progress}
	stopBeat := w.beat(jobCtx, cancel, msg, tr, log)
	start := time.Now()
	res, output, detections, err := w.convert(jobCtx, spec, dir, tr)
	took := time.Since(start)
	stopBeat()

	cause := context.Cause(jobCtx)
	if errors.Is(cause, errHandBack) {
		log.Info("job handed back to the queue", "took", took)
		ctx, cctx := context.WithTimeout(context.Background(), 30*time.Second)
		defer cctx()
		_, serr := w.sys.change(ctx, spec.ID, func(s *State) error {
			if s.Deleted {
				return errUnchanged
			}
			s.Status, s.Progress = StatusQueued, img2vid.Progress{Stage: img2vid.StageQueued}
			s.Attempt = st.Attempt - 1
			s.Note = "handed back to the queue: the worker running it shut down"
			return nil
		})
		if serr != nil && !errors.Is(serr, errUnchanged) {
			log.Warn("recording the hand-back", "err", serr)
		}
		if err := msg.Nak(); err != nil {
			log.Warn("handing back a job", "err", err)
		}
		// The connection may close right after: make sure the server has
		// the hand-back, or the job would wait out its ack wait.
		if err := w.sys.nc.FlushTimeout(5 * time.Second); err != nil {
			log.Warn("handing back a job", "err", err)
		}
		return
	}
	if errors.Is(cause, errDeleted) || (err == nil && w.deletedMeanwhile(spec.ID)) {
		err = errDeleted
	}
	if err == nil {
		err = w.store(spec.ID, output)
	}
	if err == nil && detections != "" {
		err = w.store(detectionsObject(spec.ID), detections)
	}
	if errors.Is(err, errStoreLost) {
		w.requeue(msg, spec.ID, st.Attempt, err, log)
		return
	}
	// The job's files go before it turns terminal: whoever waits for the
	// end finds nothing of it left here.
	if rerr := os.RemoveAll(dir); rerr != nil {
		log.Warn("removing job folder", "err", rerr)
	}
	outcome := StatusDone
	switch {
	case img2vid.ErrorCode(err) == img2vid.ECANCELED:
		outcome = StatusCanceled
	case err != nil:
		outcome = StatusFailed
	}
	if err != nil {
		err = relabel(err, dir, spec)
		log.Info("job ended", "outcome", outcome, "took", took, "err", err)
	} else {
		log.Info("job done", "took", took, "frames", res.Frames)
	}
	serr := w.record(msg, spec.ID, func(s *State) error {
		s.Status, s.Finished, s.Progress = outcome, time.Now().UTC(), tr.last()
		s.Expires = s.Finished.Add(w.sys.cfg.TTL)
		if err != nil {
			s.Error = failure(err)
		} else {
			s.Result = &res
			s.Progress.Stage, s.Progress.ETAMS = img2vid.StageDone, 0
		}
		return nil
	})
	if serr != nil {
		// The state could not be written: leave the job unacknowledged, so
		// that it is delivered again after its ack wait and runs again then
		// (its video, if stored, is replaced), as after a crash.
		log.Error("recording the end of a job", "err", serr)
		return
	}
	// Counted once its end is recorded: a job whose end could not be
	// written runs again, and must not count twice.
	w.metrics.observe(outcome, took, spec.Options, w.provider())
	if limit := img2vid.ErrorLimit(err); limit != "" {
		w.metrics.refusals.WithLabelValues(limit).Inc()
	}
	// Its own time: storing the video may have taken minutes.
	dctx, dcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer dcancel()
	w.sys.deleteInputs(dctx, spec.objects())
	if err := msg.Ack(); err != nil {
		log.Warn("acknowledging a job", "err", err)
	}
}

// deletedMeanwhile tells whether a DELETE marked the job (or its state
// is gone) though the watch in beat had not brought the news before the
// run ended: a run that ends as the DELETE lands must not store a video
// nobody will fetch, which would hold its place in the bucket until the
// next reap. A state that cannot be read says nothing: the run's end is
// stored and recorded as usual.
func (w *Worker) deletedMeanwhile(id string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	e, err := w.sys.states.Get(ctx, id)
	if err != nil {
		return isNotFound(err)
	}
	st, err := decode(e)
	return err == nil && st.Deleted
}

// record writes how a job's run ended (done, failed, back to the queue)
// into its state. While the state bucket has no leader (a NATS node lost
// a moment ago; the election takes seconds) it tries again, for up to
// 30 s of its own: the run is over, and an end not recorded runs the
// whole job again, counted as a crash. Meanwhile the job's heartbeats go
// on, so that it stays with this worker. f must set what it sets
// outright, since a write that timed out may have been made.
func (w *Worker) record(msg jetstream.Msg, id string, f func(*State) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for wait := 250 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		_, err := w.sys.change(ctx, id, f)
		if err == nil || isNotFound(err) || errors.Is(err, errUnchanged) {
			return err
		}
		w.log.Warn("recording the end of a job's run; trying again", "job", id, "err", err)
		if err := msg.InProgress(); err != nil {
			w.log.Warn("job heartbeat", "job", id, "err", err)
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
	}
}

// provider names the execution provider for metric labels.
func (w *Worker) provider() string {
	if w.cfg.Provider == nil {
		return ""
	}
	return w.cfg.Provider()
}

// requeue puts a job whose files could not be read or stored back on the
// queue. NATS lost for a moment is not the job's doing, so, as with a
// hand-back, the start does not count in its attempts; its deliveries
// bound how often that may happen, and the last one fails it saying why.
func (w *Worker) requeue(msg jetstream.Msg, id string, attempt int, cause error, log *slog.Logger) {
	log.Warn("the job store did not answer; the job goes back to the queue", "err", cause)
	err := w.record(msg, id, func(s *State) error {
		if s.Deleted {
			return errUnchanged
		}
		s.Status, s.Progress = StatusQueued, img2vid.Progress{Stage: img2vid.StageQueued}
		s.Attempt = attempt - 1
		s.Note = "back in the queue: the job store did not answer while it ran"
		return nil
	})
	if err != nil && !errors.Is(err, errUnchanged) {
		// NATS may still be away: the delivery below comes back all the same.
		log.Warn("recording the requeue", "err", err)
	}
	if err := msg.NakWithDelay(time.Second); err != nil {
		log.Warn("requeueing a job", "err", err)
	}
}

// beat keeps the job's delivery alive with heartbeats, writes its progress
// at most a few times a second, and cancels it when a DELETE marks it. The
// returned function stops all that.
func (w *Worker) beat(ctx context.Context, cancel context.CancelCauseFunc, msg jetstream.Msg, tr *tracker, log *slog.Logger) func() {
	ctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	// The watcher sends the state as it is first: a DELETE between the
	// job's start and this watch is seen too, where a watch of updates
	// only missed it and the deleted job ran to its end.
	watcher, err := w.sys.states.Watch(ctx, tr.id)
	var updates <-chan jetstream.KeyValueEntry
	if err != nil {
		log.Warn("watching job state for deletion", "err", err)
	} else {
		updates = watcher.Updates()
	}
	go func() {
		defer close(done)
		heartbeat := time.NewTicker(max(w.sys.cfg.AckWait/3, 10*time.Millisecond))
		defer heartbeat.Stop()
		progress := time.NewTicker(250 * time.Millisecond)
		defer progress.Stop()
		for {
			select {
			case <-ctx.Done():
				if watcher != nil {
					watcher.Stop()
				}
				return
			case <-heartbeat.C:
				if err := msg.InProgress(); err != nil {
					log.Warn("job heartbeat", "err", err)
				}
			case <-progress.C:
				tr.flush(ctx, log)
			case e, ok := <-updates:
				if !ok {
					updates = nil
					continue
				}
				if e == nil {
					continue
				}
				if e.Operation() != jetstream.KeyValuePut {
					cancel(errDeleted) // purged: nobody wants it any more
					continue
				}
				if st, err := decode(e); err == nil && st.Deleted {
					cancel(errDeleted)
				}
			}
		}
	}()
	return func() { stop(); <-done }
}

// convert fetches the job's files, runs its plan (a panic fails only this
// job) and returns the result and the paths of the video and of the
// detections ("" when the job detects nothing).
func (w *Worker) convert(ctx context.Context, spec Spec, dir string, tr *tracker) (res img2vid.Result, output, detections string, err error) {
	if spec.Plan == nil {
		return res, "", "", img2vid.Errorf(img2vid.EUNAVAILABLE,
			"the job was queued by an earlier version of img2vid, which did not send the job's plan with it; send it again")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return res, "", "", fmt.Errorf("creating job folder: %w", err)
	}
	inputs := make([]string, len(spec.Inputs))
	for i, name := range spec.Inputs {
		inputs[i] = filepath.Join(dir, path.Base(name))
		if err := w.fetch(ctx, name, inputs[i]); err != nil {
			return res, "", "", w.fetchError(ctx, name, err)
		}
	}
	plan := *spec.Plan
	opts := &plan.Options
	// The files are the worker's own copies of the job's objects: a
	// message naming a path was refused (Spec.check).
	if strings.HasSuffix(spec.Audio, ".upload") {
		return res, "", "", img2vid.Errorf(img2vid.EUNAVAILABLE,
			"the job was queued by an earlier version of img2vid, which kept the soundtrack undecoded; send it again")
	}
	if spec.Audio != "" {
		opts.Audio = filepath.Join(dir, path.Base(spec.Audio))
		if err := w.fetch(ctx, spec.Audio, opts.Audio); err != nil {
			return res, "", "", w.fetchError(ctx, spec.Audio, err)
		}
	}
	if opts.DetectModel != "" {
		opts.Detections = filepath.Join(dir, "detections.jsonl")
	}
	output = filepath.Join(dir, "video"+outputExtensions[cmp.Or(opts.Format, img2vid.FormatMP4)])
	maxBytes, err := w.reserve(ctx, spec.ID)
	if err != nil {
		return res, "", "", err
	}
	tctx, cancel := context.WithCancel(ctx)
	if lim := w.cfg.Limits; lim.JobTimeout > 0 {
		tctx, cancel = context.WithTimeout(ctx, lim.JobTimeout)
	}
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			w.log.Error("conversion panicked", "job", spec.ID, "panic", p, "stack", string(debug.Stack()))
			err = fmt.Errorf("conversion panicked: %v", p)
		}
		if err != nil && errors.Is(tctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
			err = w.cfg.Limits.Refuse(img2vid.ETOOLARGE, img2vid.LimitJobTimeout, "the job ran past its time limit")
		}
	}()
	res, err = w.cfg.Converter.Run(tctx, plan, inputs, output, maxBytes, func(p img2vid.Progress) {
		w.metrics.frames.Add(float64(tr.update(p)))
	})
	return res, output, opts.Detections, err
}

// reserve returns the most bytes the video of job id may take, and holds
// twice that against the disk budget (max_disk_mb) until release: the
// video is written in the job's folder, then copied into the videos
// bucket. What is left is the budget less what the buckets hold, what
// this worker's folder holds (the job's own files included) and what its
// other running jobs hold, shared evenly with the slots still free, so a
// job starting next to this one gets as much. ffmpeg is told the cap, and
// a video that reaches it fails its job naming max_disk_mb. 0 means no
// cap (no budget). With workers on several machines, each counts the
// shared buckets and its own folder; the buckets are bounded at admission.
func (w *Worker) reserve(ctx context.Context, id string) (int64, error) {
	lim := w.cfg.Limits
	if lim.DiskBytes() == 0 {
		return 0, nil
	}
	stored, err := w.sys.StoredBytes(ctx)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", errStoreLost, err)
	}
	folder := dirBytes(w.cfg.Dir)
	w.mu.Lock()
	defer w.mu.Unlock()
	left := lim.DiskBytes() - stored - folder
	for _, n := range w.reserved {
		left -= n
	}
	free := int64(max(w.cfg.Slots-len(w.reserved), 1))
	most := left / 2 / free
	if most <= 0 {
		return 0, lim.Refuse(img2vid.EBUSY, img2vid.LimitDiskMB, "no disk space is left for the video: stored and running jobs use it all; try again later")
	}
	w.reserved[id] = 2 * most
	return most, nil
}

// release returns what reserve held for job id.
func (w *Worker) release(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.reserved, id)
}

// dirBytes is the size of the files under dir; a file removed while it is
// walked counts as nothing.
func dirBytes(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// fetchBase and fetchRate bound a worker's read of an upload: fetchBase
// plus a second for every fetchRate bytes of it. The object store's reader
// waits for its next chunk until its context's deadline, and a read whose
// chunks stopped coming (the stream's leader was lost during the read)
// would otherwise wait out objectLimit while the job's heartbeats kept it
// from every other worker; past this bound the job goes back to the queue.
const (
	fetchBase = 30 * time.Second
	fetchRate = 1 << 20
)

// fetch copies the uploaded object name into the file at path.
func (w *Worker) fetch(ctx context.Context, name, path string) error {
	var info *jetstream.ObjectInfo
	err := whenFound(ctx, func() (err error) {
		info, err = w.sys.uploads.GetInfo(ctx, name)
		return err
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, fetchBase+time.Duration(info.Size/fetchRate)*time.Second)
	defer cancel()
	return w.sys.uploads.GetFile(ctx, name, path)
}

// replicaLag is how long a worker keeps asking for a job's state or files
// that are not found. A job's files and state are stored before it is
// queued, but on a cluster a read may be answered by a replica of the
// bucket that has not caught up yet (the buckets allow direct reads from
// any replica), and a job dropped for that would be lost.
const replicaLag = 5 * time.Second

// whenFound calls read until it finds what it reads, it fails otherwise,
// or replicaLag passes; it returns read's last error.
func whenFound(ctx context.Context, read func() error) error {
	deadline := time.Now().Add(replicaLag)
	for {
		err := read()
		if !isNotFound(err) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// fetchError words the failure to fetch one of the job's files.
func (w *Worker) fetchError(ctx context.Context, name string, err error) error {
	switch {
	case isNotFound(err):
		return w.sys.errExpired()
	case ctx.Err() != nil:
		return ctx.Err()
	}
	return fmt.Errorf("fetching %s: %w: %w", name, errStoreLost, err)
}

// storeTries is how many times a worker puts a job's output into the
// videos bucket before it sends the job back to the queue.
const storeTries = 3

// store puts one of a finished job's outputs into the videos bucket. It
// takes as long as the put moves (a large video into a replicated bucket
// can take minutes), and fails once the put stalls (putIdle).
func (w *Worker) store(name, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("opening job output: %w", err)
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), objectLimit)
	defer cancel()
	// A put whose stream lost its leader gets no answer to the chunks it
	// sent; the video is still here, so it is put again (under the same
	// name, which replaces a put that did land) before the whole job is
	// sent back to run again.
	for try := 1; ; try++ {
		if _, err = f.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("reading job output: %w", err)
		}
		err = watchedPut(ctx, putIdle, f, func(ctx context.Context, r io.Reader) error {
			_, err := w.sys.videos.Put(ctx, jetstream.ObjectMeta{Name: name}, r)
			return err
		})
		if err == nil || try == storeTries {
			break
		}
		w.log.Warn("storing job output; trying again", "object", name, "err", err)
		time.Sleep(time.Duration(try) * time.Second) // an election takes seconds
	}
	if err != nil {
		return fmt.Errorf("storing job output %s: %w: %w", name, errStoreLost, err)
	}
	return nil
}

// relabel rewrites the stored file names in a failed job's message as the
// names the client sent, which mean something to them.
func relabel(err error, dir string, spec Spec) error {
	var e *img2vid.Error
	if !errors.As(err, &e) || e.Code == img2vid.EINTERNAL {
		return err
	}
	msg := e.Message
	for i, name := range spec.Inputs {
		base := path.Base(name)
		msg = strings.ReplaceAll(msg, filepath.Join(dir, base), spec.Labels[i])
		msg = strings.ReplaceAll(msg, base, spec.Labels[i])
	}
	if spec.Audio != "" {
		msg = strings.ReplaceAll(msg, fmt.Sprintf("soundtrack %q", path.Base(spec.Audio)), spec.AudioLabel)
	}
	if msg == e.Message {
		return err
	}
	return &img2vid.Error{Code: e.Code, Message: msg, Err: err}
}

// tracker holds a running job's latest progress between writes.
type tracker struct {
	sys      *System
	id       string
	mu       sync.Mutex
	progress img2vid.Progress
	dirty    bool
}

// update records p and returns how many more frames it reports done.
func (t *tracker) update(p img2vid.Progress) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	added := max(p.Done-t.progress.Done, 0)
	t.progress, t.dirty = p, true
	return added
}

// last returns the latest progress.
func (t *tracker) last() img2vid.Progress {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.progress
}

// flush writes the progress into the job's state if it changed.
func (t *tracker) flush(ctx context.Context, log *slog.Logger) {
	t.mu.Lock()
	p, dirty := t.progress, t.dirty
	t.dirty = false
	t.mu.Unlock()
	if !dirty {
		return
	}
	_, err := t.sys.change(ctx, t.id, func(s *State) error {
		if s.Terminal() {
			return errUnchanged
		}
		s.Progress = p
		return nil
	})
	if err != nil && !errors.Is(err, errUnchanged) && ctx.Err() == nil {
		log.Warn("writing job progress", "err", err)
	}
}
