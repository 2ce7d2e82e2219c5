package jobs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/img2vid/img2vid"
)

// workerMetrics are a worker's Prometheus series.
type workerMetrics struct {
	jobs    *prometheus.CounterVec
	jobTime *prometheus.HistogramVec
	convert *prometheus.HistogramVec
	frames  prometheus.Counter
	running prometheus.Gauge
	ready   prometheus.Gauge
	// inference is the time of each model run, which happens on workers.
	inference *prometheus.HistogramVec
	refusals  *prometheus.CounterVec
}

// newWorkerMetrics makes the series and registers them on reg, if any.
func newWorkerMetrics(reg prometheus.Registerer) (*workerMetrics, error) {
	buckets := prometheus.ExponentialBuckets(0.05, 2, 14) // 50 ms .. ~7 min
	m := &workerMetrics{
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "img2vid_jobs_total", Help: "Jobs finished on this worker, by outcome (done, failed, canceled).",
		}, []string{"outcome"}),
		jobTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "img2vid_job_duration_seconds", Help: "Time from a job's start on a worker to its end, by outcome.", Buckets: buckets,
		}, []string{"outcome"}),
		convert: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "img2vid_convert_duration_seconds", Help: "Time of successful conversions, by frame model, interpolation model and execution provider.", Buckets: buckets,
		}, []string{"frame_model", "interp_model", "provider"}),
		frames: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "img2vid_frames_processed_total", Help: "Frames handed to the encoder on this worker, over all jobs.",
		}),
		running: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "img2vid_jobs_running", Help: "Jobs running on this worker now.",
		}),
		ready: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "img2vid_worker_ready", Help: "1 while this worker is ready and takes jobs, 0 while it is not (see /readyz for why).",
		}),
		inference: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "img2vid_inference_duration_seconds", Help: "Time of one model run on this worker, by model and execution provider.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}, []string{"model", "provider"}),
		refusals: NewRefusalCounter(),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.jobs, m.jobTime, m.convert, m.frames, m.running, m.ready, m.inference} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering worker metrics: %w", err)
		}
	}
	refusals, err := RegisterShared(reg, m.refusals)
	if err != nil {
		return nil, fmt.Errorf("registering worker metrics: %w", err)
	}
	m.refusals = refusals
	return m, nil
}

// NewRefusalCounter makes the series of refusals and failures for breaking
// a limit, by the limit's name. The API (refused requests) and the worker
// (jobs failed for a limit) count in it; both register it with
// RegisterShared, so that in one process they share one series.
func NewRefusalCounter() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "img2vid_limit_refusals_total", Help: "Requests refused and jobs failed for breaking a limit, by the limit's name (max_pixels, ...).",
	}, []string{"limit"})
}

// RegisterShared registers c on reg, or returns the collector of the same
// description already there.
func RegisterShared(reg prometheus.Registerer, c *prometheus.CounterVec) (*prometheus.CounterVec, error) {
	if err := reg.Register(c); err != nil {
		var dup prometheus.AlreadyRegisteredError
		if !errors.As(err, &dup) {
			return nil, err
		}
		if existing, ok := dup.ExistingCollector.(*prometheus.CounterVec); ok {
			return existing, nil
		}
		return nil, err
	}
	return c, nil
}

// RegisterQueueMetrics registers, on reg, series read from the consumer
// shared by every worker at scrape time: the jobs waiting for a worker,
// those a worker holds now and those delivered more than once. Every role
// exports them, so the same figures show on any replica.
func (s *System) RegisterQueueMetrics(reg prometheus.Registerer) error {
	read := func(f func(*jetstream.ConsumerInfo) int) func() float64 {
		return func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			info, err := s.consumer.Info(ctx)
			if err != nil {
				s.log.Warn("reading the job queue for metrics", "err", err)
				return 0
			}
			return float64(f(info))
		}
	}
	for _, c := range []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "img2vid_queue_depth",
			Help: "Jobs waiting for a worker, over every replica."},
			read(func(i *jetstream.ConsumerInfo) int { return int(i.NumPending) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "img2vid_jobs_in_progress",
			Help: "Jobs a worker has taken and not yet finished, over every worker."},
			read(func(i *jetstream.ConsumerInfo) int { return i.NumAckPending })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "img2vid_jobs_redelivered",
			Help: "Jobs taken by a worker now that were delivered more than once (a worker stopped or handed them back)."},
			read(func(i *jetstream.ConsumerInfo) int { return i.NumRedelivered })),
	} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("registering queue metrics: %w", err)
		}
	}
	return nil
}

// ObserveInference records one model run of a job on this worker, in
// img2vid_inference_duration_seconds: the runtime's models are wrapped to
// call it (cmd wires them), so /metrics shows the time spent per model
// and execution provider on the role that runs them.
func (w *Worker) ObserveInference(model, provider string, d time.Duration) {
	w.metrics.inference.WithLabelValues(model, cmp.Or(provider, "none")).Observe(d.Seconds())
}

// observe records a finished job; took is zero for a job that never ran.
func (m *workerMetrics) observe(outcome string, took time.Duration, o img2vid.Options, provider string) {
	m.jobs.WithLabelValues(outcome).Inc()
	if took == 0 {
		return
	}
	m.jobTime.WithLabelValues(outcome).Observe(took.Seconds())
	if outcome == StatusDone {
		interp := "none"
		if o.Interpolates() {
			interp = o.InterpModel
		}
		m.convert.WithLabelValues(cmp.Or(o.FrameModel, "none"), interp, cmp.Or(provider, "none")).Observe(took.Seconds())
	}
}
