// Package server is the HTTP face of img2vid: the upload page, a JSON API
// for conversion jobs with live progress, health, metrics and the OpenAPI
// document. It hands jobs to the job system (package jobs) through a small
// interface and reports them from it; cmd owns the listener, its timeouts
// and graceful shutdown.
package server

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	_ "embed"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/img2vid/img2vid"
	"github.com/img2vid/img2vid/web"
)

// Server is the HTTP face of the job system: it takes uploads into its
// work folder, hands them to Jobs, and reports and serves jobs from there.
// Make one with New, serve Handler, and call Shutdown when done.
type Server struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	router  *gin.Engine
	origins *http.CrossOriginProtection
	disk    atomic.Int64 // bytes of uploads being received, against Limits.DiskBytes
	streams streamCount  // open event streams, against Limits.StreamsPerClient and Limits.Streams

	mu sync.Mutex
	// receiving holds the uploads in progress, each with the function
	// that stops reading it, so that Shutdown can end them.
	receiving map[*job]func()
	received  sync.WaitGroup // one per entry of receiving
	closed    bool
}

// New checks cfg and creates the work folder.
func New(cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.WorkDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating work folder: %w", err)
	}
	s := &Server{
		cfg:       cfg,
		log:       logger(cfg.Logger),
		receiving: map[*job]func(){},
	}
	s.removeLeftovers()
	s.metrics, err = newMetrics(cfg.Registry)
	if err != nil {
		return nil, err
	}
	if s.origins, err = crossOrigin(cfg.AllowedOrigins); err != nil {
		return nil, err
	}
	if s.router, err = s.routes(); err != nil {
		return nil, err
	}
	return s, nil
}

// Handler returns the router with every route of the page and the API.
func (s *Server) Handler() http.Handler { return s.router }

// Shutdown stops taking uploads (from then on POST /api/jobs answers 503)
// and ends those in progress, waiting until ctx ends for their folders to
// go. Jobs already submitted stay with the job system, which keeps them
// across a restart.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	for _, stop := range s.receiving {
		stop()
	}
	s.mu.Unlock()
	// Each upload, its reading stopped, removes its own folder at once.
	received := make(chan struct{})
	go func() { s.received.Wait(); close(received) }()
	select {
	case <-received:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("uploads still being received at shutdown: %w", ctx.Err())
	}
}

// routes builds the router. Every route here is listed in openapi.json; a
// test keeps the two in step.
func (s *Server) routes() (*gin.Engine, error) {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.HandleMethodNotAllowed = true
	// gin trusts every peer's forwarded headers unless told otherwise; the
	// client's address (for its share of jobs) comes from them only when
	// the peer is a proxy the operator named.
	if err := r.SetTrustedProxies(s.cfg.TrustedProxies); err != nil {
		return nil, fmt.Errorf("server config: trusted proxies: %w", err)
	}
	r.Use(s.recovery, s.stallGuard, securityHeaders, s.accessLog, s.knownHost, s.sameOrigin)
	r.NoRoute(func(c *gin.Context) {
		s.writeError(c, img2vid.Errorf(img2vid.ENOTFOUND, "no such page: %s", truncate(c.Request.URL.Path, 80)))
	})
	r.NoMethod(func(c *gin.Context) {
		s.writeError(c, img2vid.Errorf(EMETHOD, "method %s is not allowed here", c.Request.Method))
	})

	// Every GET route answers HEAD too (gin does not on its own), so link
	// checkers and caches can ask about a page, an asset or a video
	// without fetching it; Go's server sends no body for HEAD.
	get := func(g gin.IRoutes, path string, h gin.HandlerFunc) {
		g.GET(path, h)
		g.HEAD(path, h)
	}
	get(r, "/", s.page("index.html"))
	get(r, "/assets/:file", s.asset)
	get(r, "/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	get(r, "/readyz", s.ready)

	api := r.Group("/", s.auth)
	get(api, "/metrics", gin.WrapH(s.metrics.handler()))
	get(api, "/api/openapi.json", func(c *gin.Context) { c.Data(http.StatusOK, "application/json", openAPI) })
	get(api, "/api/models", s.models)
	get(api, "/api/options", s.options)
	api.POST("/api/jobs", s.createJob)
	get(api, "/api/jobs/:id", s.getJob)
	api.DELETE("/api/jobs/:id", s.deleteJob)
	get(api, "/api/jobs/:id/events", s.events)
	get(api, "/api/jobs/:id/video", s.video)
	get(api, "/api/jobs/:id/detections", s.detections)
	return r, nil
}

//go:embed openapi.json
var openAPI []byte

// recovery turns a panic in a handler into a 500 for that request alone.
func (s *Server) recovery(c *gin.Context) {
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler { // the client went away; nothing to answer
				panic(p)
			}
			s.log.Error("handler panicked", "route", c.FullPath(), "panic", p, "stack", string(debug.Stack()))
			if !c.Writer.Written() {
				s.writeError(c, fmt.Errorf("panic: %v", p))
			}
			c.Abort()
		}
	}()
	c.Next()
}

// contentSecurityPolicy allows the page's own scripts, styles, blob: images
// (thumbnails) and media, and nothing inline or from elsewhere.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; " +
	"media-src 'self' blob:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// securityHeaders sets headers that keep the page from being framed,
// sniffed into another type, or extended by injected scripts.
func securityHeaders(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	c.Next()
}

// accessLog logs each request at debug level; only the path, never the
// query, which may hold user text.
func (s *Server) accessLog(c *gin.Context) {
	start := time.Now()
	c.Next()
	s.log.Debug("request", "method", c.Request.Method, "path", c.Request.URL.Path,
		"status", c.Writer.Status(), "took", time.Since(start))
}

// tokenCookie carries the API token for requests a page cannot add headers
// to: EventSource, <video> and download links.
const tokenCookie = "img2vid_token"

// errNoToken refuses a request without the API token, in every role.
var errNoToken = img2vid.Errorf(EUNAUTHORIZED, "this server needs an API token: send it as \"Authorization: Bearer <token>\"")

// bearerChallenge is the WWW-Authenticate header of that refusal.
const bearerChallenge = `Bearer realm="img2vid"`

// auth requires the API token when one is configured.
func (s *Server) auth(c *gin.Context) {
	if !hasToken(c.Request, s.cfg.Token) {
		s.writeError(c, errNoToken)
	}
}

// RequireToken wraps h so that, when token is set, a request without it
// gets the API's own refusal: 401, its JSON error and the Bearer
// challenge. cmd puts a worker's /metrics behind it, so that every role
// takes the token the same way.
func RequireToken(token string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !hasToken(r, token) {
			body := errorBody(errNoToken)
			w.Header().Set("WWW-Authenticate", bearerChallenge)
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.WriteHeader(statusOf(body.Code))
			json.NewEncoder(w).Encode(body)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// hasToken reports whether r carries token, in the Authorization header
// or the cookie (unescaped, as gin reads cookies); every request does
// when token is empty.
func hasToken(r *http.Request, token string) bool {
	if token == "" {
		return true
	}
	got, ok := bearer(r.Header.Get("Authorization"))
	if !ok {
		if c, err := r.Cookie(tokenCookie); err == nil {
			got, _ = url.QueryUnescape(c.Value)
		}
	}
	return tokenMatches(got, token)
}

// bearer returns the credentials of an Authorization header in the Bearer
// scheme, whose name HTTP matches without regard to case.
func bearer(header string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(token), true
}

// tokenMatches compares the digests of got and token, which have the
// same length whatever was sent, so the time taken tells nothing of the
// token, not even its length.
func tokenMatches(got, token string) bool {
	a, b := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// page serves one embedded page; no-cache so a new binary's page is picked
// up at once.
func (s *Server) page(name string) gin.HandlerFunc {
	return func(c *gin.Context) {
		b, err := web.Files.ReadFile(name)
		if err != nil {
			s.writeError(c, fmt.Errorf("embedded page %s: %w", name, err))
			return
		}
		c.Header("Cache-Control", "no-cache")
		c.Data(http.StatusOK, "text/html; charset=utf-8", b)
	}
}

// assetTypes are the content types of the files the page loads; anything
// else under /assets is not found, so nothing can be listed or guessed.
var assetTypes = map[string]string{
	".js":  "text/javascript; charset=utf-8",
	".css": "text/css; charset=utf-8",
	".svg": "image/svg+xml",
}

// asset serves one embedded script, style sheet or icon.
func (s *Server) asset(c *gin.Context) {
	name := c.Param("file")
	typ, known := assetTypes[filepath.Ext(name)]
	b, err := web.Files.ReadFile(name)
	if !known || err != nil {
		s.writeError(c, img2vid.Errorf(img2vid.ENOTFOUND, "no such asset: %s", truncate(name, 80)))
		return
	}
	c.Header("Cache-Control", "no-cache")
	c.Data(http.StatusOK, typ, b)
}

// ready answers 200 when the dependencies of a job work, else 503 with why.
func (s *Server) ready(c *gin.Context) {
	body := gin.H{"status": "ready"}
	if len(s.cfg.Warnings) > 0 {
		body["warnings"] = s.cfg.Warnings
	}
	if s.cfg.Catalog != nil {
		body["runtime"] = s.publicInfo()
	}
	if s.cfg.Ready != nil {
		ctx, cancel := context.WithTimeout(c.Request.Context(), 5*time.Second)
		defer cancel()
		if err := s.cfg.Ready(ctx); err != nil {
			s.log.Warn("not ready", "err", err)
			s.writeError(c, &img2vid.Error{Code: img2vid.EUNAVAILABLE, Message: PublicReason(err), Err: err})
			return
		}
	}
	c.JSON(http.StatusOK, body)
}

// ModelsView is the JSON of GET /api/models.
type ModelsView struct {
	Models  []img2vid.ModelInfo  `json:"models"`
	Runtime *img2vid.RuntimeInfo `json:"runtime,omitempty"`
	// DefaultInterpModel is the interpolation model a job gets when it
	// names none, so the page can preselect it.
	DefaultInterpModel string `json:"default_interp_model"`
}

// models lists the models a job may name and the execution provider.
func (s *Server) models(c *gin.Context) {
	v := ModelsView{Models: []img2vid.ModelInfo{}, DefaultInterpModel: img2vid.DefaultInterpModel}
	if s.cfg.Catalog != nil {
		v.Models = append(v.Models, s.publicModels()...)
		info := s.publicInfo()
		v.Runtime = &info
	}
	c.JSON(http.StatusOK, v)
}

// OptionView is one job option as GET /api/options describes it: what the
// form field takes, its default, and what it does. The page builds its
// checks and defaults from these, so it takes what the server takes.
type OptionView struct {
	Name    string   `json:"name"`
	Type    string   `json:"type"`
	Enum    []string `json:"enum,omitempty"`
	Min     *float64 `json:"min,omitempty"`
	Max     *float64 `json:"max,omitempty"`
	Default string   `json:"default"`
	Usage   string   `json:"usage"`
}

// optionViews is img2vid.OptionTable as the API shows it.
func optionViews() []OptionView {
	defaults := img2vid.DefaultOptions()
	out := make([]OptionView, 0, len(img2vid.OptionTable))
	for _, spec := range img2vid.OptionTable {
		v := OptionView{Name: spec.Name, Type: spec.Type, Enum: spec.Enum, Default: spec.Get(&defaults), Usage: spec.Usage}
		if spec.Bounded {
			lo, hi := spec.Min, spec.Max
			v.Min, v.Max = &lo, &hi
		}
		out = append(out, v)
	}
	return out
}

// options lists the job options a POST /api/jobs form may carry.
func (s *Server) options(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"options": optionViews()})
}

// getJob reports a job's status, progress and outcome.
func (s *Server) getJob(c *gin.Context) {
	st, _, err := s.lookup(c.Request.Context(), c.Param("id"))
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, view(st))
}

// deleteJob cancels a job wherever it runs and deletes its files.
func (s *Server) deleteJob(c *gin.Context) {
	st, _, err := s.lookup(c.Request.Context(), c.Param("id"))
	if err == nil {
		err = s.cfg.Jobs.Cancel(c.Request.Context(), st.ID)
	}
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// video serves the finished video with Range support, so a <video> element
// can seek, and as an attachment when ?download=1.
func (s *Server) video(c *gin.Context) {
	st, _, err := s.lookup(c.Request.Context(), c.Param("id"))
	if err != nil {
		s.writeError(c, err)
		return
	}
	if st.Status != StatusDone {
		s.writeError(c, img2vid.Errorf(img2vid.ENOTFOUND, "job %s has no video yet: it is %s", st.ID, st.Status))
		return
	}
	v, err := s.cfg.Jobs.Video(c.Request.Context(), st.ID)
	if err != nil {
		s.writeError(c, err)
		return
	}
	defer v.Close()
	ext := outputExtensions[st.Format]
	name := cmp.Or(st.Name, "img2vid-"+st.ID[:8]) + ext
	c.Header("Content-Type", contentTypes[ext])
	c.Header("Cache-Control", "private, max-age=3600")
	if c.Query("download") == "1" {
		c.Header("Content-Disposition", `attachment; filename="`+name+`"`)
	}
	http.ServeContent(c.Writer, c.Request, name, v.ModTime, v)
}

// contentTypes maps an output's extension to its media type.
var contentTypes = map[string]string{".mp4": "video/mp4", ".webm": "video/webm", ".gif": "image/gif"}
