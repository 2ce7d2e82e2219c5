package server

import (
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/img2vid/img2vid/jobs"
)

// metrics are the API's Prometheus series. The worker adds its own (jobs,
// frames, durations) to the same registry when it runs in this process.
type metrics struct {
	registry  *prometheus.Registry
	inference *prometheus.HistogramVec
	refusals  *prometheus.CounterVec
}

// newMetrics registers the API's series on reg (a fresh registry when nil,
// so that two servers in one process do not collide); depth reads the
// queue's length at scrape time.
func newMetrics(reg *prometheus.Registry, depth func() float64) (*metrics, error) {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &metrics{
		registry: reg,
		inference: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "img2vid_inference_duration_seconds", Help: "Time of one model run, by model and execution provider.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}, []string{"model", "provider"}),
	}
	for _, c := range []prometheus.Collector{m.inference,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "img2vid_queue_depth", Help: "Jobs waiting for a worker, over every replica."}, depth),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering server metrics: %w", err)
		}
	}
	refusals, err := jobs.RegisterShared(reg, jobs.NewRefusalCounter())
	if err != nil {
		return nil, fmt.Errorf("registering server metrics: %w", err)
	}
	m.refusals = refusals
	return m, nil
}

// handler serves the registry in the Prometheus text format.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}
