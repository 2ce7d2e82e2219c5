// Command load measures the server under many clients: it starts one
// server in this process on the loopback interface, with the real pipeline
// and ffmpeg, and has N clients each submit small jobs (frames made from the
// aquarium test images) and poll them to the end. It prints throughput,
// p50/p99 of job latency and of the status endpoint, the number of 503s and
// the peak memory, and exits non-zero if any request failed in another way
// or an accepted job did not complete. It stops by itself.
//
// With -soak N it then runs N jobs one after another and checks that the
// server gives back what they used: goroutines, open files and resident
// memory return to the baseline taken before them, no ffmpeg process is
// left, and the jobs folder is empty once the TTL has passed.
//
//	go run ./bench/load -clients 20 -jobs 2
//	go run ./bench/load -clients 50 -jobs 2 -frames 4 -size 320x180 -soak 500
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"log/slog"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/image/draw"

	"github.com/img2vid/img2vid"
	"github.com/img2vid/img2vid/internal/repo"
	"github.com/img2vid/img2vid/jobs"
	"github.com/img2vid/img2vid/pipeline"
	"github.com/img2vid/img2vid/server"
)

// config is what the flags set.
type config struct {
	clients, jobs, frames int
	size                  string
	workers, queue        int
	source                string
	limit                 time.Duration
	soak                  int
	ttl                   time.Duration
	rssSlack              int64 // bytes
}

func main() {
	var c config
	flag.IntVar(&c.clients, "clients", 20, "concurrent clients")
	flag.IntVar(&c.jobs, "jobs", 2, "jobs each client submits")
	flag.IntVar(&c.frames, "frames", 10, "images per job")
	flag.StringVar(&c.size, "size", "640x360", "size of each image")
	flag.IntVar(&c.workers, "workers", 2, "server workers (jobs at once)")
	flag.IntVar(&c.queue, "queue", 8, "server queue length")
	flag.StringVar(&c.source, "images", "", "folder of source JPEG frames (default ../shared/data/aquarium from the repository root)")
	flag.DurationVar(&c.limit, "timeout", 10*time.Minute, "give up after this long")
	flag.IntVar(&c.soak, "soak", 0, "then run this many jobs one after another and check that goroutines, open files and memory return to their baseline (0: no soak)")
	flag.DurationVar(&c.ttl, "ttl", 2*time.Second, "how long the server keeps finished jobs; the soak waits for their folders to go")
	rssSlack := flag.Int64("rss-slack", 32, "MiB of resident memory above the baseline that still counts as back to it")
	flag.Parse()
	c.rssSlack = *rssSlack << 20
	if err := run(c); err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

// stats collects what the clients saw.
type stats struct {
	mu          sync.Mutex
	jobLatency  []time.Duration // acceptance to done
	statusTimes []time.Duration // each GET /api/jobs/{id}
	busy        int             // 503 answers
	failures    []string        // anything else that went wrong
}

func (s *stats) fail(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, fmt.Sprintf(format, args...))
}

func run(c config) error {
	w, h, err := img2vid.ParseSize(c.size)
	if err != nil {
		return err
	}
	source := c.source
	if source == "" {
		shared, err := repo.Shared()
		if err != nil {
			return fmt.Errorf("%w; pass -images", err)
		}
		source = filepath.Join(shared, "data", "aquarium")
	}
	images, err := makeImages(source, c.frames, w, h)
	if err != nil {
		return err
	}
	body, typ, err := multipartBody(images)
	if err != nil {
		return fmt.Errorf("encoding the upload: %w", err)
	}
	work, err := os.MkdirTemp("", "img2vid-load-")
	if err != nil {
		return fmt.Errorf("making the work folder: %w", err)
	}
	defer os.RemoveAll(work)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	startCtx, cancelStart := context.WithTimeout(context.Background(), time.Minute)
	defer cancelStart()
	local, err := jobs.StartLocal(startCtx, work, jobs.Config{TTL: c.ttl, Queue: c.queue, Logger: log},
		jobs.WorkerConfig{Converter: &pipeline.Pipeline{FFmpeg: "ffmpeg", Limits: noPerClientLimit(), Logger: log},
			Slots: c.workers, Limits: noPerClientLimit(), Logger: log})
	if err != nil {
		return err
	}
	srv, err := server.New(server.Config{
		Jobs:       local,
		Logger:     log,
		WorkDir:    filepath.Join(work, "uploads"),
		RetryAfter: time.Second,
		// Every client here dials from 127.0.0.1: a per-client cap would
		// make them one client.
		Limits: noPerClientLimit(),
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listening on loopback: %w", err)
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	base := "http://" + ln.Addr().String()

	ctx, cancel := context.WithTimeout(context.Background(), c.limit)
	defer cancel()
	var peakHeap atomic.Uint64
	go sampleHeap(ctx, &peakHeap)
	fresh := measure()

	fmt.Printf("load: %d clients x %d jobs of %d images at %dx%d; server with %d workers, queue %d, TTL %s; %d CPUs\n",
		c.clients, c.jobs, c.frames, w, h, c.workers, c.queue, c.ttl, runtime.NumCPU())
	st := &stats{}
	start := time.Now()
	var wg sync.WaitGroup
	for range c.clients {
		wg.Go(func() {
			for range c.jobs {
				st.runJob(ctx, base, body, typ, 100*time.Millisecond)
			}
		})
	}
	wg.Wait()
	wall := time.Since(start)
	report(st, wall, c.frames, peakHeap.Load())
	if want := c.clients * c.jobs; len(st.jobLatency) != want {
		st.fail("%d of %d jobs completed", len(st.jobLatency), want)
	}

	if c.soak > 0 && len(st.failures) == 0 {
		soak(ctx, c, st, base, body, typ, local.StoredBytes, fresh)
	}

	shutdownCtx, stop := context.WithTimeout(context.Background(), 30*time.Second)
	defer stop()
	hs.Shutdown(shutdownCtx)
	if err := srv.Shutdown(shutdownCtx); err != nil {
		st.fail("shutdown: %v", err)
	}
	if err := local.Stop(shutdownCtx); err != nil {
		st.fail("stopping the job system: %v", err)
	}
	if n := len(st.failures); n > 0 {
		for _, f := range st.failures[:min(n, 10)] {
			fmt.Fprintln(os.Stderr, "  ", f)
		}
		return fmt.Errorf("%d failures besides 503s when the queue was full", n)
	}
	return nil
}

// soak lets the jobs of the concurrent phase expire, takes the baseline,
// runs c.soak jobs one after another, lets them expire too, and checks
// that the server is back where it started. fresh is the process as it was
// before any job, for the record.
func soak(ctx context.Context, c config, st *stats, base string, body []byte, typ string, stored func(context.Context) (int64, error), fresh usage) {
	if err := waitEmpty(ctx, stored, c.ttl); err != nil {
		st.fail("after the concurrent phase: %v", err)
		return
	}
	baseline := settle(ctx, usage{})
	fmt.Printf("soak: %d jobs one after another\n", c.soak)
	done := len(st.jobLatency)
	start := time.Now()
	for range c.soak {
		st.runJob(ctx, base, body, typ, 10*time.Millisecond)
		if len(st.failures) > 0 {
			return
		}
	}
	wall := time.Since(start)
	soaked := st.jobLatency[done:]
	fmt.Printf("soak jobs           %d in %.1f s: %.2f jobs/s; latency p50 %s p99 %s\n",
		len(soaked), wall.Seconds(), float64(len(soaked))/wall.Seconds(), pct(soaked, 50), pct(soaked, 99))
	last := time.Now()
	if err := waitEmpty(ctx, stored, c.ttl); err != nil {
		st.fail("after the soak: %v", err)
	} else {
		fmt.Printf("job store           empty %s after the last job (TTL %s)\n", time.Since(last).Round(10*time.Millisecond), c.ttl)
	}
	after := settle(ctx, baseline)
	fmt.Printf("%-19s %10s %10s %10s\n", "process", "goroutines", "open files", "RSS MiB")
	for _, row := range []struct {
		name string
		u    usage
	}{{"before any job", fresh}, {"baseline", baseline}, {"after the soak", after}} {
		fmt.Printf("%-19s %10d %10d %10.1f\n", row.name, row.u.goroutines, row.u.files, float64(row.u.rss)/(1<<20))
	}
	if after.goroutines > baseline.goroutines {
		st.fail("goroutines grew from %d to %d over the soak", baseline.goroutines, after.goroutines)
	}
	if after.files > baseline.files {
		st.fail("open files grew from %d to %d over the soak", baseline.files, after.files)
	}
	if after.rss > baseline.rss+c.rssSlack {
		st.fail("resident memory grew from %d to %d MiB over the soak (slack %d MiB)", baseline.rss>>20, after.rss>>20, c.rssSlack>>20)
	}
	if kids := children(); len(kids) > 0 {
		st.fail("child processes left after the soak: %v", kids)
	}
}

// usage is what the process holds at one moment.
type usage struct {
	goroutines int
	files      int   // entries of /proc/self/fd
	rss        int64 // resident bytes, VmRSS of /proc/self/status
}

// measure reads the process's usage now.
func measure() usage {
	u := usage{goroutines: runtime.NumGoroutine(), files: -1, rss: -1}
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		u.files = len(fds)
	}
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				u.rss = kb << 10
			}
		}
	}
	return u
}

// settle closes the client's idle connections, returns freed memory to the
// system and measures, waiting up to a few seconds for goroutines and open
// files to come down to target (the zero usage waits only for the first
// reading): connections close and their goroutines end asynchronously.
func settle(ctx context.Context, target usage) usage {
	deadline := time.Now().Add(5 * time.Second)
	for {
		http.DefaultClient.CloseIdleConnections()
		runtime.GC()
		debug.FreeOSMemory()
		u := measure()
		if u.goroutines <= target.goroutines && u.files <= target.files || time.Now().After(deadline) || target == (usage{}) {
			return u
		}
		sleep(ctx, 50*time.Millisecond)
	}
}

// waitEmpty waits until the job store is empty, which the job system
// makes it within the TTL and half of it after the last job ended.
func waitEmpty(ctx context.Context, stored func(context.Context) (int64, error), ttl time.Duration) error {
	start := time.Now()
	deadline := start.Add(ttl + ttl/2 + 5*time.Second)
	for {
		n, err := stored(ctx)
		if err != nil {
			return fmt.Errorf("reading the job store: %w", err)
		}
		if n == 0 {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("the job store still holds %d bytes %s after the last job ended (TTL %s)", n, time.Since(start).Round(time.Second), ttl)
		}
		sleep(ctx, 50*time.Millisecond)
	}
}

// children lists the processes this one started and has not reaped.
func children() []string {
	files, _ := filepath.Glob("/proc/self/task/*/children")
	var pids []string
	for _, f := range files {
		b, _ := os.ReadFile(f)
		pids = append(pids, strings.Fields(string(b))...)
	}
	return pids
}

// runJob submits one job, retrying while the queue is full, and polls it
// every poll to its end.
func (st *stats) runJob(ctx context.Context, base string, body []byte, typ string, poll time.Duration) {
	var id string
	for id == "" {
		if ctx.Err() != nil {
			st.fail("gave up submitting: %v", ctx.Err())
			return
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/jobs", bytes.NewReader(body))
		req.Header.Set("Content-Type", typ)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			st.fail("POST: %v", err)
			return
		}
		var v struct{ ID, Error string }
		json.NewDecoder(resp.Body).Decode(&v)
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusAccepted:
			id = v.ID
		case http.StatusServiceUnavailable:
			if !strings.Contains(v.Error, "queue is full") { // the only 503 a healthy server gives here
				st.fail("POST: 503 %s", v.Error)
				return
			}
			st.mu.Lock()
			st.busy++
			st.mu.Unlock()
			wait, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
			sleep(ctx, time.Duration(max(wait, 1))*time.Second)
		default:
			st.fail("POST: %d %s", resp.StatusCode, v.Error)
			return
		}
	}
	accepted := time.Now()
	for {
		t0 := time.Now()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/jobs/"+id, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			st.fail("GET job: %v", err)
			return
		}
		var v server.JobView
		err = json.NewDecoder(resp.Body).Decode(&v)
		resp.Body.Close()
		took := time.Since(t0)
		if err != nil || resp.StatusCode != http.StatusOK {
			st.fail("GET job: %d %v", resp.StatusCode, err)
			return
		}
		st.mu.Lock()
		st.statusTimes = append(st.statusTimes, took)
		st.mu.Unlock()
		switch v.Status {
		case server.StatusDone:
			st.mu.Lock()
			st.jobLatency = append(st.jobLatency, time.Since(accepted))
			st.mu.Unlock()
			return
		case server.StatusFailed, server.StatusCanceled:
			st.fail("job %s %s: %+v", id, v.Status, v.Error)
			return
		}
		sleep(ctx, poll)
	}
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// report prints the numbers.
func report(st *stats, wall time.Duration, frames int, peakHeap uint64) {
	done := len(st.jobLatency)
	fmt.Printf("jobs completed      %d in %.1f s: %.2f jobs/s, %.1f images/s\n",
		done, wall.Seconds(), float64(done)/wall.Seconds(), float64(done*frames)/wall.Seconds())
	fmt.Printf("job latency         p50 %s  p99 %s  (accepted to done)\n", pct(st.jobLatency, 50), pct(st.jobLatency, 99))
	fmt.Printf("status endpoint     p50 %s  p99 %s  (%d requests)\n", pct(st.statusTimes, 50), pct(st.statusTimes, 99), len(st.statusTimes))
	fmt.Printf("503 (queue full)    %d\n", st.busy)
	fmt.Printf("other failures      %d\n", len(st.failures))
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	var cu syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &cu)
	fmt.Printf("peak memory         server process RSS %d MiB (Go heap %d MiB), largest ffmpeg RSS %d MiB\n",
		ru.Maxrss>>10, peakHeap>>20, cu.Maxrss>>10)
}

// pct returns the p-th percentile of ds (nearest rank).
func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := min(len(s)-1, max(0, (len(s)*p+99)/100-1))
	return s[i].Round(100 * time.Microsecond)
}

// sampleHeap records the largest heap in use until ctx ends.
func sampleHeap(ctx context.Context, peak *atomic.Uint64) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	var ms runtime.MemStats
	for {
		runtime.ReadMemStats(&ms)
		if ms.HeapInuse > peak.Load() {
			peak.Store(ms.HeapInuse)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// makeImages scales the first n frames of dir to w x h JPEGs in memory.
func makeImages(dir string, n, w, h int) ([][]byte, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.jpg"))
	if err != nil || len(files) < n {
		return nil, fmt.Errorf("want at least %d JPEG frames in %s, found %d", n, dir, len(files))
	}
	slices.Sort(files)
	var out [][]byte
	for _, f := range files[:n] {
		src, err := decode(f)
		if err != nil {
			return nil, err
		}
		dst := image.NewRGBA(image.Rect(0, 0, w, h))
		draw.ApproxBiLinear.Scale(dst, dst.Bounds(), src, src.Bounds(), draw.Src, nil)
		var buf bytes.Buffer
		if err := jpeg.Encode(&buf, dst, &jpeg.Options{Quality: 90}); err != nil {
			return nil, fmt.Errorf("encoding %s: %w", f, err)
		}
		out = append(out, buf.Bytes())
	}
	return out, nil
}

func decode(path string) (image.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening a source frame: %w", err)
	}
	defer f.Close()
	img, err := jpeg.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("decoding %s: %w", path, err)
	}
	return img, nil
}

// multipartBody encodes the images as one job upload.
func multipartBody(images [][]byte) ([]byte, string, error) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for i, img := range images {
		w, err := mw.CreateFormFile("files", fmt.Sprintf("frame_%d.jpg", i))
		if err != nil {
			return nil, "", err
		}
		if _, err := io.Copy(w, bytes.NewReader(img)); err != nil {
			return nil, "", err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, "", err
	}
	return buf.Bytes(), mw.FormDataContentType(), nil
}

// noPerClientLimit is the default limits without the per-client one.
func noPerClientLimit() img2vid.Limits {
	lim := img2vid.DefaultLimits()
	lim.JobsPerClient = 0
	return lim
}
