// Command load measures the server under many clients: it starts one
// server in this process on the loopback interface, with the real pipeline
// and ffmpeg, and has N clients each submit small jobs (frames made from the
// aquarium test images) and poll them to the end. It prints throughput,
// p50/p99 of job latency and of the status endpoint, the number of 503s and
// the peak memory, and exits non-zero if any request failed in another way
// or an accepted job did not complete. It stops by itself.
//
//	go run ./bench/load -clients 20 -jobs 2
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
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
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/image/draw"

	"github.com/img2vid/img2vid"
	"github.com/img2vid/img2vid/pipeline"
	"github.com/img2vid/img2vid/server"
)

func main() {
	clients := flag.Int("clients", 20, "concurrent clients")
	jobs := flag.Int("jobs", 2, "jobs each client submits")
	frames := flag.Int("frames", 10, "images per job")
	size := flag.String("size", "640x360", "size of each image")
	workers := flag.Int("workers", 2, "server workers (jobs at once)")
	queue := flag.Int("queue", 8, "server queue length")
	source := flag.String("images", "", "folder of source JPEG frames (default ../shared/data/aquarium from the repository root)")
	limit := flag.Duration("timeout", 10*time.Minute, "give up after this long")
	flag.Parse()
	if err := run(*clients, *jobs, *frames, *size, *workers, *queue, *source, *limit); err != nil {
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

func run(clients, jobs, frames int, size string, workers, queue int, source string, limit time.Duration) error {
	w, h, err := img2vid.ParseSize(size)
	if err != nil {
		return err
	}
	if source == "" {
		root, err := repoRoot()
		if err != nil {
			return err
		}
		source = filepath.Join(root, "..", "shared", "data", "aquarium")
	}
	images, err := makeImages(source, frames, w, h)
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "img2vid-load-")
	if err != nil {
		return fmt.Errorf("making the work folder: %w", err)
	}
	defer os.RemoveAll(work)

	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := server.New(server.Config{
		Converter:  &pipeline.Pipeline{FFmpeg: "ffmpeg", Logger: log},
		Logger:     log,
		WorkDir:    filepath.Join(work, "jobs"),
		Workers:    workers,
		Queue:      queue,
		RetryAfter: time.Second,
		// Every client here dials from 127.0.0.1: a per-client cap would
		// make them one client.
		Limits: server.Limits{JobsPerClient: -1},
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

	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	var peakHeap atomic.Uint64
	go sampleHeap(ctx, &peakHeap)

	fmt.Printf("load: %d clients x %d jobs of %d images at %dx%d; server with %d workers, queue %d; %d CPUs\n",
		clients, jobs, frames, w, h, workers, queue, runtime.NumCPU())
	st := &stats{}
	start := time.Now()
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for range jobs {
				st.runJob(ctx, base, images)
			}
		})
	}
	wg.Wait()
	wall := time.Since(start)

	shutdownCtx, stop := context.WithTimeout(context.Background(), 30*time.Second)
	defer stop()
	hs.Shutdown(shutdownCtx)
	if err := srv.Shutdown(shutdownCtx); err != nil {
		st.fail("shutdown: %v", err)
	}
	report(st, wall, frames, peakHeap.Load())
	if n := len(st.failures); n > 0 {
		for _, f := range st.failures[:min(n, 10)] {
			fmt.Fprintln(os.Stderr, "  ", f)
		}
		return fmt.Errorf("%d failures besides 503s", n)
	}
	if want := clients * jobs; len(st.jobLatency) != want {
		return fmt.Errorf("%d of %d jobs completed", len(st.jobLatency), want)
	}
	return nil
}

// runJob submits one job, retrying while the server is busy, and polls it
// to its end.
func (st *stats) runJob(ctx context.Context, base string, images [][]byte) {
	body, typ, err := multipartBody(images)
	if err != nil {
		st.fail("encoding the upload: %v", err)
		return
	}
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
		sleep(ctx, 100*time.Millisecond)
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

// repoRoot walks up from the working folder to the one holding go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working folder; pass -images")
		}
		dir = parent
	}
}
