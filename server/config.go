package server

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/img2vid/img2vid"
)

// Catalog lists the models a job may name and the runtime that runs them.
// *inference.Runtime implements it.
type Catalog interface {
	ListModels() []img2vid.ModelInfo
	Info() img2vid.RuntimeInfo
}

// Config is what the server needs. cmd fills it from flags and environment;
// zero values take the defaults shown on each field, except Limits, where
// zero means no limit.
type Config struct {
	// Jobs takes the uploads and runs the jobs. Required.
	Jobs Jobs
	// Catalog answers /api/models and labels metrics with the execution
	// provider. Optional: without it no model can be named in a job.
	Catalog Catalog
	// Ready reports whether ffmpeg and the runtime work, for /readyz.
	// Optional: without it the server is ready once it is up.
	Ready func(ctx context.Context) error
	// Warnings are what the deployment leaves insecure, listed by /readyz
	// (without failing it) so that whoever checks a deployment sees them.
	Warnings []string
	// ProbeAudio decodes an uploaded soundtrack into the FLAC file that
	// takes its place and returns its length in seconds, or an EINVALID
	// error naming it by label when it is not audio (a refusal naming
	// max_duration when it is too long). *pipeline.Pipeline's method does. Optional: without it a job
	// with an audio field is refused.
	ProbeAudio func(ctx context.Context, path, label string) (float64, error)
	// Logger receives request and job logs. Optional.
	Logger *slog.Logger
	// WorkDir holds one folder per upload being received; the job system
	// takes the files when it is complete. Required; created if missing.
	WorkDir string
	// Token, when set, is required on /api and /metrics as
	// "Authorization: Bearer <token>" or the img2vid_token cookie.
	Token string
	// RetryAfter is the delay a busy server suggests to clients (default 5s).
	RetryAfter time.Duration
	// UploadIdle is the longest a request body may go without a byte
	// arriving (default 30s). A stalled upload gets 408; its folder and its
	// client's upload slot are freed.
	UploadIdle time.Duration
	// DownloadIdle is the longest a response may wait for the client to
	// take more bytes (default 30s). A stalled download is cut and lets go
	// of its file.
	DownloadIdle time.Duration
	// AllowedOrigins are the origins (scheme://host[:port]) of other
	// sites' pages that may make state-changing requests (POST, DELETE)
	// through a browser. A browser request from any other site is refused
	// with 403; the server's own page always works.
	AllowedOrigins []string
	// AllowedHosts are the host names requests may be sent to (the Host
	// header, without port) besides IP addresses and localhost, which are
	// always served; others get 403, which turns away DNS rebinding
	// wherever the server listens. AnyHost among them serves every Host.
	AllowedHosts []string
	// TrustedProxies are the addresses or CIDR ranges of reverse proxies
	// whose X-Forwarded-For or X-Real-IP names the client, for the
	// per-client limits. Default none: the peer's own address counts.
	TrustedProxies []string
	// Limits bound uploads and jobs. Zero fields mean no limit: start from
	// img2vid.DefaultLimits().
	Limits img2vid.Limits
	// Registry is what /metrics serves; cmd shares it with the worker, so
	// that one scrape shows both. Optional: a registry of its own.
	Registry *prometheus.Registry
}

// withDefaults returns c with zero fields set to their defaults, or an
// error naming the first field that cannot work.
func (c Config) withDefaults() (Config, error) {
	if c.Jobs == nil {
		return c, fmt.Errorf("server config: Jobs is required")
	}
	if c.WorkDir == "" {
		return c, fmt.Errorf("server config: WorkDir is required")
	}
	if c.RetryAfter < 0 || c.UploadIdle < 0 || c.DownloadIdle < 0 {
		return c, fmt.Errorf("server config: retry-after and the idle times must not be negative")
	}
	c.UploadIdle = cmp.Or(c.UploadIdle, 30*time.Second)
	c.DownloadIdle = cmp.Or(c.DownloadIdle, 30*time.Second)
	c.RetryAfter = max(cmp.Or(c.RetryAfter, 5*time.Second), time.Second)
	if err := c.Limits.Validate(); err != nil {
		return c, fmt.Errorf("server config: %w", err)
	}
	return c, nil
}
