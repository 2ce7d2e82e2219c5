package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/img2vid/img2vid"
	"github.com/img2vid/img2vid/inference"
	"github.com/img2vid/img2vid/jobs"
	"github.com/img2vid/img2vid/pipeline"
	"github.com/img2vid/img2vid/server"
	"github.com/img2vid/img2vid/video"
)

func runServe(ctx context.Context, args []string, _, stderr io.Writer) error {
	var c config
	var grace time.Duration
	lim := img2vid.DefaultLimits()
	fs := newFlagSet("serve", "serve [flags]\n\nRuns the upload page and the JSON API, and the jobs: all in one process by default,\nor as API replicas and workers sharing an external NATS cluster (--nats, --role).", stderr)
	b := &binder{fs: fs}
	c.serverFlags(b)
	b.int(&c.Workers, "workers", "IMG2VID_WORKERS", 1, "jobs run at once")
	b.int(&c.QueueSize, "queue", "IMG2VID_QUEUE", 8, "jobs that may wait for a worker; beyond it uploads get 503")
	b.dur(&c.JobTTL, "job-ttl", "IMG2VID_JOB_TTL", time.Hour, "how long a finished job's video is kept")
	b.str(&c.WorkDir, "work-dir", "IMG2VID_WORK_DIR", filepath.Join(os.TempDir(), "img2vid"), "folder for the job store (queued jobs, images and videos; kept across restarts), uploads being received and running jobs")
	b.str(&c.APIToken, "api-token", "IMG2VID_API_TOKEN", "", "when set, required on the API and on /metrics (in every role) as 'Authorization: Bearer TOKEN'")
	b.dur(&grace, "grace", "IMG2VID_GRACE", 20*time.Second, "on SIGTERM, how long running jobs may finish before they go back to the queue (they run after the next start)")
	c.natsFlags(b)
	b.int(&c.NATSReplicas, "nats-replicas", "IMG2VID_NATS_REPLICAS", 1, "replicas of the job stream and buckets (with --nats: 3 on a cluster of 3 or more)")
	b.str(&c.Role, "role", "IMG2VID_ROLE", roleAll, "all: the page, the API and the jobs; api: the page and the API, no jobs; worker: the jobs, and over HTTP only health, readiness and metrics (api and worker need --nats)")
	limitFlags(b, &lim, true)
	c.doorFlags(b)
	c.runtimeFlags(b)
	if err := parse(fs, b, args); err != nil {
		return err
	}
	if err := lim.Validate(); err != nil {
		return err
	}
	if err := c.checkRole(); err != nil {
		return err
	}
	log, err := c.logger()
	if err != nil {
		return err
	}

	// A worker whose runtime cannot be opened stays up, not ready (its
	// /readyz says why), and tries again until it opens: an orchestrator
	// sees the reason instead of a crash loop, and the worker takes jobs
	// once the library, the GPU or the models folder is there. The other
	// roles need the runtime's catalogue from the start, so they stop.
	rt, err := c.openRuntime(log)
	if err != nil && c.Role != roleWorker {
		return err
	}
	if err != nil {
		log.Warn("ONNX Runtime cannot be opened; this worker takes no job until it can", "err", err)
	}
	// Clients see a model's reason without the folders in it; the log
	// keeps the whole of it. Every model is checked (its graphs read) and a
	// process that runs jobs loads the default model (under a second)
	// before it takes jobs: the first job does not wait for it, and after a
	// restart, jobs that ran while the API was not yet answering could
	// expire unseen.
	live := newLiveRuntime(rt, err, func() (*inference.Runtime, error) { return c.openRuntime(log) },
		func(rt *inference.Runtime) {
			for _, m := range rt.ListModels() {
				if !m.Available {
					log.Warn("model unavailable", "model", m.Name, "reason", m.Reason)
				}
			}
			if c.Role != roleAPI {
				warm(rt, log)
			}
		}, 10*time.Second)
	defer live.Close()
	// The worker records the model runs; it exists once the job system
	// is open, and may start a job before openJobs returns.
	var running atomic.Pointer[jobs.Worker]
	models := timedModels{Models: live, observe: func(model string, d time.Duration) {
		if w := running.Load(); w != nil {
			w.ObserveInference(model, live.Provider(), d)
		}
	}}
	conv := &pipeline.Pipeline{FFmpeg: c.FFmpeg, Models: models, Limits: lim, Logger: log}

	// A process that runs jobs is ready when ffmpeg and the runtime work,
	// and its worker fetches jobs only then; every role also needs NATS.
	ffmpegReady := readiness(c.FFmpeg, 5*time.Second)
	canRun := func(ctx context.Context) error {
		if err := ffmpegReady(ctx); err != nil {
			return err
		}
		if c.Role == roleAPI {
			return nil
		}
		return live.Ready(ctx)
	}
	registry := prometheus.NewRegistry()
	octx, ocancel := context.WithTimeout(ctx, time.Minute)
	defer ocancel()
	sys, worker, closeJobs, err := c.openJobs(octx, log,
		jobs.Config{TTL: c.JobTTL, Queue: c.QueueSize, Replicas: c.NATSReplicas, Logger: log},
		jobs.WorkerConfig{Converter: conv, Slots: c.Workers, Limits: lim, Provider: live.Provider,
			Ready: canRun, Registerer: registry, Logger: log})
	if err != nil {
		return err
	}
	defer closeJobs() // after an early return, a running job goes back to the queue at once
	running.Store(worker)
	if err := sys.RegisterQueueMetrics(registry); err != nil {
		return err
	}
	ready := func(ctx context.Context) error {
		if err := sys.Connected(); err != nil {
			return img2vid.Errorf(img2vid.EUNAVAILABLE, "the job system cannot be reached: %v", err)
		}
		return canRun(ctx)
	}
	var handler http.Handler
	var srv *server.Server
	if c.Role == roleWorker {
		handler, err = probeHandler(registry, ready, c.APIToken, c.natsWarnings())
		if err != nil {
			return err
		}
	} else {
		srv, err = server.New(server.Config{
			Jobs: sys, Catalog: rt, Logger: log, WorkDir: filepath.Join(c.WorkDir, "uploads"),
			Token: c.APIToken, Limits: lim, Registry: registry, ProbeAudio: conv.ProbeAudio, Ready: ready, Warnings: c.natsWarnings(),
			UploadIdle: c.UploadIdle, DownloadIdle: c.DownloadIdle, AllowedOrigins: c.AllowedOrigins,
			AllowedHosts: c.AllowedHosts, TrustedProxies: c.TrustedProxies,
		})
		if err != nil {
			return err
		}
		handler = srv.Handler()
	}
	addr := net.JoinHostPort(c.ServerName, strconv.Itoa(c.ServerPort))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	httpSrv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	info := live.Info()
	log.Info("img2vid serving", "url", "http://"+displayAddr(ln.Addr()), "version", version,
		"provider", info.Provider, "onnxruntime", info.Version, "library", info.Library,
		"role", c.Role, "nats", cmp.Or(jobs.RedactURLs(c.NATS), "in this process"),
		"workers", c.Workers, "queue", c.QueueSize, "job_ttl", c.JobTTL, "work_dir", c.WorkDir,
		"token", c.APIToken != "", "limits", limitsText(lim), "upload_idle", c.UploadIdle, "download_idle", c.DownloadIdle,
		"allowed_origins", c.AllowedOrigins, "allowed_hosts", c.AllowedHosts, "trusted_proxies", c.TrustedProxies)
	errc := make(chan error, 1)
	go func() { errc <- httpSrv.Serve(ln) }()
	fmt.Fprintf(stderr, "img2vid is running at http://%s/\n", displayAddr(ln.Addr()))
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: no new uploads; running jobs get the grace period, then go back to the queue", "grace", grace)
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if srv != nil {
		srv.Shutdown(sctx)
	}
	var jobsErr error
	if worker != nil {
		jobsErr = worker.Stop(sctx)
	}
	// The jobs are over, so event streams end; give the last responses a
	// moment of their own, whatever the jobs took of the grace period.
	hctx, hcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer hcancel()
	httpSrv.Shutdown(hctx)
	if jobsErr != nil && !errors.Is(jobsErr, context.DeadlineExceeded) {
		return jobsErr
	}
	log.Info("stopped")
	return nil
}

// Roles of a serve process.
const (
	roleAll    = "all"
	roleAPI    = "api"
	roleWorker = "worker"
)

// checkRole refuses a role that is unknown, or that needs a NATS cluster
// to share the jobs with when none is given.
func (c *config) checkRole() error {
	switch {
	case c.Role != roleAll && c.Role != roleAPI && c.Role != roleWorker:
		return fmt.Errorf("--role %q: use all, api or worker", c.Role)
	case c.Role != roleAll && c.NATS == "":
		return fmt.Errorf("--role %s needs --nats: api replicas and workers share the jobs through a NATS cluster", c.Role)
	case c.NATSReplicas < 1:
		return fmt.Errorf("--nats-replicas %d: use 1 or more", c.NATSReplicas)
	}
	return nil
}

// openJobs opens the job system: a NATS server inside this process (its
// files under the work folder), or the cluster --nats names. Unless the
// role is api it starts a worker. closeJobs hands a running job back at
// once and closes everything.
func (c *config) openJobs(ctx context.Context, log *slog.Logger, cfg jobs.Config, wcfg jobs.WorkerConfig) (
	sys *jobs.System, worker *jobs.Worker, closeJobs func(), err error) {
	now, cancel := context.WithCancel(context.Background())
	cancel() // a context already over: Stop hands running jobs back at once
	if c.NATS == "" {
		local, err := jobs.StartLocal(ctx, c.WorkDir, cfg, wcfg)
		if err != nil {
			return nil, nil, nil, err
		}
		return local.System, local.Worker, func() { local.Stop(now) }, nil
	}
	if c.JobKey != "" {
		if cfg.Key, err = jobs.ReadKey(c.JobKey); err != nil {
			return nil, nil, nil, err
		}
	}
	for _, w := range c.natsWarnings() {
		log.Warn("INSECURE: " + w)
	}
	nc, err := jobs.Connect(c.NATS, c.natsAuth(), log)
	if err != nil {
		return nil, nil, nil, err
	}
	// A cluster that has just started may not have elected its JetStream
	// leader yet: try again until ctx ends.
	for {
		actx, cancel := context.WithTimeout(ctx, 10*time.Second) // one request may go unanswered
		sys, err = jobs.Open(actx, nc, cfg)
		cancel()
		if err == nil || ctx.Err() != nil {
			break
		}
		log.Warn("the job system is not ready on NATS yet; trying again", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	if err != nil {
		nc.Close()
		return nil, nil, nil, fmt.Errorf("NATS at %s: %w", jobs.RedactURLs(c.NATS), err)
	}
	if c.Role != roleAPI {
		wcfg.Dir = filepath.Join(c.WorkDir, "worker")
		if worker, err = sys.StartWorker(wcfg); err != nil {
			sys.Close()
			nc.Close()
			return nil, nil, nil, err
		}
	}
	return sys, worker, func() {
		if worker != nil {
			worker.Stop(now)
		}
		sys.Close()
		nc.Close()
	}, nil
}

// probeHandler is all a worker serves over HTTP: health, readiness (the
// job system, ffmpeg and the runtime) and metrics, with the Go and
// process series the API's metrics also have. The metrics need the API
// token when one is set, as the API's do: they tell how busy the cluster
// is and what it runs. A ready answer lists warnings, what the deployment
// leaves insecure, as the API's does.
func probeHandler(registry *prometheus.Registry, ready func(context.Context) error, token string, warnings []string) (http.Handler, error) {
	for _, c := range []prometheus.Collector{collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		if err := registry.Register(c); err != nil {
			return nil, fmt.Errorf("registering worker metrics: %w", err)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintln(w, `{"status":"ok"}`)
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		w.Header().Set("Content-Type", "application/json")
		if err := ready(ctx); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			json.NewEncoder(w).Encode(map[string]string{"error": server.PublicReason(err), "code": img2vid.EUNAVAILABLE})
			return
		}
		body := map[string]any{"status": "ready"}
		if len(warnings) > 0 {
			body["warnings"] = warnings
		}
		json.NewEncoder(w).Encode(body)
	})
	mux.Handle("GET /metrics", server.RequireToken(token, promhttp.HandlerFor(registry, promhttp.HandlerOpts{})))
	return mux, nil
}

// limitsText lists the limits in force as NAME=VALUE pairs, for the log
// line a server starts with.
func limitsText(lim img2vid.Limits) string {
	parts := make([]string, len(img2vid.LimitTable))
	for i, s := range img2vid.LimitTable {
		parts[i] = s.Name + "=" + lim.Value(s.Name)
	}
	return strings.Join(parts, " ")
}

// readiness checks that ffmpeg runs, at most once per interval: /readyz
// is unauthenticated, and must not start a process on every request. A
// check cut short by its caller's context (a probe whose client went
// away) says nothing about ffmpeg and is not kept: the answer is shared
// with the worker, which would otherwise take no job for an interval.
func readiness(ffmpeg string, interval time.Duration) func(context.Context) error {
	var mu sync.Mutex
	var checked time.Time
	var last error
	return func(ctx context.Context) error {
		mu.Lock()
		defer mu.Unlock()
		if time.Since(checked) >= interval {
			_, err := video.Version(ctx, ffmpeg)
			if err != nil && ctx.Err() != nil {
				return err
			}
			last, checked = err, time.Now()
		}
		return last
	}
}

// displayAddr is the address people can open: a wildcard listener is
// reachable on localhost.
func displayAddr(a net.Addr) string {
	host, port, _ := net.SplitHostPort(a.String())
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

func runHealthcheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c config
	fs := newFlagSet("healthcheck", "healthcheck [flags]\n\nExits 0 when the server on this machine answers /healthz.", stderr)
	b := &binder{fs: fs}
	c.serverFlags(b)
	if err := parse(fs, b, args); err != nil {
		return err
	}
	host := c.ServerName
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	url := "http://" + net.JoinHostPort(host, strconv.Itoa(c.ServerPort)) + "/healthz"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", url, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	fmt.Fprintln(stdout, "healthy")
	return nil
}

// warm starts the default interpolation model's sessions, a fraction of a
// second's work, so that the first job that uses it does not wait for them.
func warm(rt *inference.Runtime, log *slog.Logger) {
	start := time.Now()
	if _, err := rt.Interpolator(img2vid.DefaultInterpModel); err != nil {
		log.Warn("the default interpolation model cannot be loaded", "model", img2vid.DefaultInterpModel, "err", err)
		return
	}
	log.Info("model loaded", "model", img2vid.DefaultInterpModel, "took", time.Since(start).Round(time.Millisecond))
}

// timedModels reports how long each model run takes, for the metrics.
type timedModels struct {
	img2vid.Models
	observe func(model string, d time.Duration)
}

// FrameModel loads a frame model whose runs are timed.
func (t timedModels) FrameModel(name string) (img2vid.FrameModel, error) {
	m, err := t.Models.FrameModel(name)
	if err != nil {
		return nil, err
	}
	return timedFrame{m, t.observe}, nil
}

// Interpolator loads an interpolation model whose runs are timed.
func (t timedModels) Interpolator(name string) (img2vid.Interpolator, error) {
	m, err := t.Models.Interpolator(name)
	if err != nil {
		return nil, err
	}
	return timedInterp{m, t.observe}, nil
}

// Detector loads a detect model whose runs are timed.
func (t timedModels) Detector(name string) (img2vid.Detector, error) {
	m, err := t.Models.Detector(name)
	if err != nil {
		return nil, err
	}
	return timedDetector{m, t.observe}, nil
}

// timedDetector reports the time of each Detect.
type timedDetector struct {
	img2vid.Detector
	observe func(string, time.Duration)
}

// Detect runs the model and reports how long it took.
func (t timedDetector) Detect(ctx context.Context, frame *image.NRGBA, p img2vid.DetectParams) ([]img2vid.Detection, error) {
	start := time.Now()
	out, err := t.Detector.Detect(ctx, frame, p)
	t.observe(t.Name(), time.Since(start))
	return out, err
}

// timedFrame reports the time of each Apply.
type timedFrame struct {
	img2vid.FrameModel
	observe func(string, time.Duration)
}

// Apply runs the model and reports how long it took.
func (t timedFrame) Apply(ctx context.Context, in *image.NRGBA) (*image.NRGBA, error) {
	start := time.Now()
	out, err := t.FrameModel.Apply(ctx, in)
	t.observe(t.Name(), time.Since(start))
	return out, err
}

// timedInterp reports the time of each Interpolate.
type timedInterp struct {
	img2vid.Interpolator
	observe func(string, time.Duration)
}

// Interpolate runs the model and reports how long it took, less the time
// its frames spent with emit.
func (t timedInterp) Interpolate(ctx context.Context, a, b *image.NRGBA, ts []float32, emit func(int, *image.NRGBA) error) error {
	start := time.Now()
	var elsewhere time.Duration
	err := t.Interpolator.Interpolate(ctx, a, b, ts, func(i int, f *image.NRGBA) error {
		handed := time.Now()
		defer func() { elsewhere += time.Since(handed) }()
		return emit(i, f)
	})
	t.observe(t.Name(), time.Since(start)-elsewhere)
	return err
}
