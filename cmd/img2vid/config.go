package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/img2vid/img2vid"
	"github.com/img2vid/img2vid/jobs"
)

// config is every setting of the program, in one typed place. Each has a
// flag, most also an environment variable; a flag given on the command line
// wins over the environment, which wins over the default. Only this file
// reads the environment.
type config struct {
	// Server.
	ServerName string
	ServerPort int
	Workers    int
	QueueSize  int
	JobTTL     time.Duration
	WorkDir    string
	APIToken   string

	// The job system: an external NATS cluster (none: one inside the
	// process), its credentials and replica count, and this process's
	// part in it.
	NATS         string
	NATSCreds    string
	NATSNKey     string
	NATSCA       string
	JobKey       string
	NATSReplicas int
	Role         string

	// Doors of the server: how long a stalled client is waited for, and
	// whom requests are taken from.
	UploadIdle     time.Duration
	DownloadIdle   time.Duration
	AllowedOrigins []string
	AllowedHosts   []string
	TrustedProxies []string

	// Convert's volumes, as in the seed app.
	InputDir  string
	OutputDir string

	// Runtime.
	FFmpeg    string
	ORTLib    string
	Device    string
	Threads   int
	ModelsDir string
	LogLevel  string
}

// binder registers settings on a flag set, taking defaults from the
// environment and remembering the first malformed variable.
type binder struct {
	fs  *flag.FlagSet
	err error
}

func (b *binder) env(name string) (string, bool) {
	if name == "" {
		return "", false
	}
	v, ok := os.LookupEnv(name)
	return v, ok && v != ""
}

func (b *binder) usage(usage, env string) string {
	if env == "" {
		return usage
	}
	return usage + " (env " + env + ")"
}

func (b *binder) str(p *string, name, env, def, usage string) {
	if v, ok := b.env(env); ok {
		def = v
	}
	b.fs.StringVar(p, name, def, b.usage(usage, env))
}

func (b *binder) int(p *int, name, env string, def int, usage string) {
	if v, ok := b.env(env); ok {
		n, err := strconv.Atoi(v)
		if err != nil && b.err == nil {
			b.err = fmt.Errorf("%s=%q: not a whole number", env, v)
		}
		def = n
	}
	b.fs.IntVar(p, name, def, b.usage(usage, env))
}

func (b *binder) int64(p *int64, name, env string, def int64, usage string) {
	if v, ok := b.env(env); ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil && b.err == nil {
			b.err = fmt.Errorf("%s=%q: not a whole number", env, v)
		}
		def = n
	}
	b.fs.Int64Var(p, name, def, b.usage(usage, env))
}

func (b *binder) dur(p *time.Duration, name, env string, def time.Duration, usage string) {
	if v, ok := b.env(env); ok {
		d, err := time.ParseDuration(v)
		if err != nil && b.err == nil {
			b.err = fmt.Errorf("%s=%q: not a duration such as 30m", env, v)
		}
		def = d
	}
	b.fs.DurationVar(p, name, def, b.usage(usage, env))
}

// list binds a comma-separated list.
func (b *binder) list(p *[]string, name, env, usage string) {
	var def string
	if v, ok := b.env(env); ok {
		def = v
	}
	*p = splitList(def)
	b.fs.Func(name, b.usage(usage+" (comma-separated)", env), func(v string) error {
		*p = splitList(v)
		return nil
	})
}

// splitList splits a comma-separated list, dropping blanks.
func splitList(v string) []string {
	var out []string
	for _, f := range strings.Split(v, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// natsFlags name the external NATS cluster of serve and doctor.
func (c *config) natsFlags(b *binder) {
	b.str(&c.NATS, "nats", "IMG2VID_NATS_URL", "", "URLs of an external NATS cluster, comma separated (nats://, tls:// for TLS); empty: a NATS server inside this process")
	b.str(&c.NATSCreds, "nats-creds", "IMG2VID_NATS_CREDS", "", "NATS credentials file: a user's JWT and nkey seed (with --nats)")
	b.str(&c.NATSNKey, "nats-nkey", "IMG2VID_NATS_NKEY", "", "file of a NATS user's nkey seed, as img2vid nats-auth writes it (with --nats)")
	b.str(&c.JobKey, "job-key", "IMG2VID_JOB_KEY", "", "file of the key job messages are signed with, the same on API replicas and workers, as img2vid nats-auth writes it (with --nats)")
	b.str(&c.NATSCA, "nats-ca", "IMG2VID_NATS_CA", "", "PEM file of the certificate authorities that sign the NATS servers' certificates, for tls:// URLs (default: the system's)")
}

// doorFlags are the settings of serve that decide how long stalled clients
// are waited for and which requests are taken at all.
func (c *config) doorFlags(b *binder) {
	b.dur(&c.UploadIdle, "upload-idle", "IMG2VID_UPLOAD_IDLE", 30*time.Second,
		"longest an upload may go without a byte arriving; then 408 and its files are removed")
	b.dur(&c.DownloadIdle, "download-idle", "IMG2VID_DOWNLOAD_IDLE", 30*time.Second,
		"longest a response (a video, an event stream) may wait for the client to take more; then it is cut")
	b.list(&c.AllowedOrigins, "allowed-origins", "IMG2VID_ALLOWED_ORIGINS",
		"origins (https://host[:port]) of other sites' pages allowed to POST or DELETE through a browser; others get 403")
	b.list(&c.AllowedHosts, "allowed-hosts", "IMG2VID_ALLOWED_HOSTS",
		"host names the server answers to besides IP addresses and localhost, which it always does; any other Host gets 403, against DNS rebinding ('*': any Host, only behind a proxy that checks it)")
	b.list(&c.TrustedProxies, "trusted-proxies", "IMG2VID_TRUSTED_PROXIES",
		"addresses or CIDR ranges of reverse proxies whose X-Forwarded-For names the client for the per-client limits (default none)")
}

// runtimeFlags are the settings every command that runs models or ffmpeg takes.
func (c *config) runtimeFlags(b *binder) {
	b.str(&c.FFmpeg, "ffmpeg", "IMG2VID_FFMPEG", "ffmpeg", "ffmpeg program")
	b.str(&c.ORTLib, "ort-lib", "ONNXRUNTIME_LIB", "", "path of libonnxruntime.so (default: found beside the program, in .deps/, then system places)")
	b.str(&c.Device, "device", "IMG2VID_DEVICE", "auto", "execution provider: cpu, cuda, or auto (CUDA when usable, else CPU)")
	b.int(&c.Threads, "threads", "IMG2VID_THREADS", 0, "threads per model run (0: one per CPU)")
	b.str(&c.ModelsDir, "models-dir", "IMG2VID_MODELS_DIR", "", "folder of extra models (NAME.onnx + NAME.json); the built-in models are always there")
	b.str(&c.LogLevel, "log-level", "IMG2VID_LOG_LEVEL", "info", "log level: debug, info, warn or error")
}

// limitFlags binds the limits of img2vid.LimitTable onto lim, which holds
// their defaults: every limit on serve, the job's own on convert (the
// server's guard capacity shared between clients). 0 turns a limit off.
func limitFlags(b *binder, lim *img2vid.Limits, server bool) {
	for _, s := range img2vid.LimitTable {
		if s.Server && !server {
			continue
		}
		usage := s.Usage + " (0: no limit)"
		switch p := s.Field(lim).(type) {
		case *int:
			b.int(p, s.Flag(), s.Env(), *p, usage)
		case *int64:
			b.int64(p, s.Flag(), s.Env(), *p, usage)
		case *time.Duration:
			b.dur(p, s.Flag(), s.Env(), *p, usage)
		}
	}
}

// serverFlags are the settings of `serve` (and of `healthcheck`, which
// needs the port).
func (c *config) serverFlags(b *binder) {
	b.str(&c.ServerName, "host", "SERVER_NAME", "127.0.0.1", "address to listen on (0.0.0.0 for all interfaces)")
	b.int(&c.ServerPort, "port", "SERVER_PORT", 8080, "port to listen on")
}

// natsAuth is how to authenticate to the NATS cluster --nats names.
func (c *config) natsAuth() jobs.Auth {
	return jobs.Auth{Creds: c.NATSCreds, NKey: c.NATSNKey, CA: c.NATSCA}
}

// natsWarnings say what a deployment on an external NATS leaves open: no
// credentials (anyone who reaches NATS reads and changes every job) and no
// job key (anyone who can publish to the queue runs any job). serve logs
// them at start and /readyz repeats them.
func (c *config) natsWarnings() []string {
	if c.NATS == "" {
		return nil
	}
	var w []string
	if c.NATSCreds == "" && c.NATSNKey == "" && !strings.Contains(c.NATS, "@") {
		w = append(w, "NATS is used without credentials: any client that reaches it can read, change and delete every job, upload and video; "+
			"give each role its own user (img2vid nats-auth, then --nats-nkey; docs/SECURITY.md)")
	}
	if c.JobKey == "" {
		w = append(w, "job messages are not signed: any NATS user that may publish to the queue can make workers run a job of its own; "+
			"give API replicas and workers the same --job-key (img2vid nats-auth writes one)")
	}
	return w
}

// logger builds the program's logger from LogLevel.
func (c *config) logger() (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return nil, fmt.Errorf("log level %q: use debug, info, warn or error", c.LogLevel)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})), nil
}
