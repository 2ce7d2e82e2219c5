package server

import (
	"cmp"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/img2vid/img2vid"
)

// metrics are the server's Prometheus series, on a registry of its own so
// that two servers in one process (tests) do not collide.
type metrics struct {
	registry  *prometheus.Registry
	jobs      *prometheus.CounterVec
	jobTime   *prometheus.HistogramVec
	convert   *prometheus.HistogramVec
	inference *prometheus.HistogramVec
	frames    prometheus.Counter
	running   prometheus.Gauge
	refusals  *prometheus.CounterVec
}

// newMetrics registers every series; depth reads the queue's length at
// scrape time.
func newMetrics(depth func() float64) *metrics {
	buckets := prometheus.ExponentialBuckets(0.05, 2, 14) // 50 ms .. ~7 min
	m := &metrics{
		registry: prometheus.NewRegistry(),
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "img2vid_jobs_total", Help: "Jobs finished, by outcome (done, failed, canceled).",
		}, []string{"outcome"}),
		jobTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "img2vid_job_duration_seconds", Help: "Time from a job's start on a worker to its end, by outcome.", Buckets: buckets,
		}, []string{"outcome"}),
		convert: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "img2vid_convert_duration_seconds", Help: "Time of successful conversions, by frame model, interpolation model and execution provider.", Buckets: buckets,
		}, []string{"frame_model", "interp_model", "provider"}),
		inference: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "img2vid_inference_duration_seconds", Help: "Time of one model run, by model and execution provider.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}, []string{"model", "provider"}),
		frames: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "img2vid_frames_processed_total", Help: "Frames handed to the encoder, over all jobs.",
		}),
		running: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "img2vid_jobs_running", Help: "Jobs running on a worker now.",
		}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "img2vid_limit_refusals_total", Help: "Requests refused and jobs failed for breaking a limit, by the limit's name (max_pixels, ...).",
		}, []string{"limit"}),
	}
	m.registry.MustRegister(m.jobs, m.jobTime, m.convert, m.inference, m.frames, m.running, m.refusals,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "img2vid_queue_depth", Help: "Jobs waiting for a worker."}, depth),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// handler serves the registry in the Prometheus text format.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// observeJob records a finished job; took is zero for a job canceled
// before it started, which has no duration to record.
func (m *metrics) observeJob(outcome string, took time.Duration, o img2vid.Options, provider string) {
	m.jobs.WithLabelValues(outcome).Inc()
	if took == 0 {
		return
	}
	m.jobTime.WithLabelValues(outcome).Observe(took.Seconds())
	if outcome == StatusDone {
		interp := "none"
		if o.Interpolate > 1 {
			interp = o.InterpModel
		}
		m.convert.WithLabelValues(cmp.Or(o.FrameModel, "none"), interp, provider).Observe(took.Seconds())
	}
}
