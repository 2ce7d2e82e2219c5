package server

import (
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/img2vid/img2vid/jobs"
)

// metrics are the API's Prometheus series. The job system adds the
// queue's (jobs.System.RegisterQueueMetrics), and the worker its own (jobs,
// frames, durations, model runs) to the same registry when it runs in
// this process.
type metrics struct {
	registry *prometheus.Registry
	refusals *prometheus.CounterVec
}

// newMetrics registers the API's series on reg (a fresh registry when nil,
// so that two servers in one process do not collide).
func newMetrics(reg *prometheus.Registry) (*metrics, error) {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &metrics{registry: reg}
	for _, c := range []prometheus.Collector{collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
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
