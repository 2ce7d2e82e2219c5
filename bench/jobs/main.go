// Command jobs measures what the job system adds to a job: the time from
// submitting a job to seeing it done, through the embedded NATS JetStream
// (images into the object store, the spec onto the work queue, the state
// in the key-value bucket, the video back into the object store), against
// the in-process path the server had before it, measured the same way: a
// channel to a worker goroutine that copies the images into a job folder,
// converts, and signals the end. The converter does no work, so what is
// left is the cost of the path.
//
//	go run ./bench/jobs -jobs 200
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/img2vid/img2vid"
	"github.com/img2vid/img2vid/jobs"
)

func main() {
	n := flag.Int("jobs", 200, "jobs to time on each path")
	images := flag.Int("images", 4, "images per job")
	size := flag.Int("image-kb", 64, "size of each image, KiB")
	flag.Parse()
	if err := run(*n, *images, *size<<10); err != nil {
		fmt.Fprintln(os.Stderr, "jobs:", err)
		os.Exit(1)
	}
}

// instant is a converter that does no work: it writes a small video file.
type instant struct{}

// Run reports every frame done and writes a 16 KiB file as the video.
func (instant) Run(_ context.Context, _ img2vid.Plan, inputs []string, output string, _ int64, progress func(img2vid.Progress)) (img2vid.Result, error) {
	progress(img2vid.Progress{Stage: img2vid.StageEncode, Done: len(inputs), Total: len(inputs)})
	return img2vid.Result{Frames: len(inputs)}, os.WriteFile(output, make([]byte, 16<<10), 0o600)
}

func run(n, images, size int) error {
	work, err := os.MkdirTemp("", "img2vid-bench-jobs-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	var files []string
	for i := range images {
		f := filepath.Join(work, fmt.Sprintf("in%d.png", i))
		if err := os.WriteFile(f, make([]byte, size), 0o600); err != nil {
			return err
		}
		files = append(files, f)
	}
	direct, err := timeDirect(work, files, n)
	if err != nil {
		return err
	}
	queued, err := timeJetStream(work, files, n)
	if err != nil {
		return err
	}
	fmt.Printf("jobs: %d jobs of %d images of %d KiB, one at a time, a converter that does no work\n", n, images, size>>10)
	fmt.Printf("%-28s %8s %8s\n", "path", "p50", "p99")
	fmt.Printf("%-28s %8s %8s\n", "in-process channel", pct(direct, 50), pct(direct, 99))
	fmt.Printf("%-28s %8s %8s\n", "embedded NATS JetStream", pct(queued, 50), pct(queued, 99))
	fmt.Printf("added at p50: %s (goal: under 20ms)\n", (pct(queued, 50) - pct(direct, 50)).Round(10*time.Microsecond))
	return nil
}

// timeDirect times the in-process path: a channel, a worker goroutine that
// copies the images into a job folder and converts, and a done signal.
func timeDirect(work string, files []string, n int) ([]time.Duration, error) {
	type job struct {
		dir  string
		done chan error
	}
	queue := make(chan job)
	go func() {
		for j := range queue {
			j.done <- convertIn(j.dir, files)
		}
	}()
	defer close(queue)
	var took []time.Duration
	for i := range n {
		dir := filepath.Join(work, fmt.Sprintf("direct-%d", i))
		start := time.Now()
		if err := os.Mkdir(dir, 0o700); err != nil {
			return nil, err
		}
		j := job{dir: dir, done: make(chan error, 1)}
		queue <- j
		if err := <-j.done; err != nil {
			return nil, err
		}
		took = append(took, time.Since(start))
		os.RemoveAll(dir)
	}
	return took, nil
}

// convertIn copies files into dir, as an upload lands, and converts them.
func convertIn(dir string, files []string) error {
	var inputs []string
	for i, f := range files {
		dst := filepath.Join(dir, fmt.Sprintf("%06d.png", i+1))
		if err := copyFile(f, dst); err != nil {
			return err
		}
		inputs = append(inputs, dst)
	}
	_, err := instant{}.Run(context.Background(), img2vid.Plan{}, inputs, filepath.Join(dir, "video.mp4"), 0, func(img2vid.Progress) {})
	return err
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// timeJetStream times the same jobs through the embedded job system, from
// Submit to the done state on this process's board.
func timeJetStream(work string, files []string, n int) ([]time.Duration, error) {
	ctx := context.Background()
	local, err := jobs.StartLocal(ctx, filepath.Join(work, "store"), jobs.Config{Queue: n + 1}, jobs.WorkerConfig{Converter: instant{}})
	if err != nil {
		return nil, err
	}
	defer local.Stop(ctx)
	var took []time.Duration
	for i := range n {
		id := fmt.Sprintf("%032x", i+1)
		opts := img2vid.Options{Format: img2vid.FormatMP4}
		spec := jobs.Spec{ID: id, Options: opts, Plan: &img2vid.Plan{Options: opts, Inputs: len(files)}}
		for k := range files {
			spec.Inputs = append(spec.Inputs, fmt.Sprintf("%s/%06d.png", id, k+1))
			spec.Labels = append(spec.Labels, fmt.Sprintf("file %d", k+1))
		}
		start := time.Now()
		if err := local.Submit(ctx, spec, files, "bench"); err != nil {
			return nil, err
		}
		for {
			st, changed, ok := local.Job(ctx, id)
			if !ok {
				return nil, fmt.Errorf("job %s vanished", id)
			}
			if st.Terminal() {
				if st.Status != jobs.StatusDone {
					return nil, fmt.Errorf("job %s ended %s: %+v", id, st.Status, st.Error)
				}
				break
			}
			<-changed
		}
		took = append(took, time.Since(start))
	}
	return took, nil
}

// pct is the p-th percentile of d.
func pct(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)].Round(10 * time.Microsecond)
}
