// Command cluster measures the job system spread over processes, as a
// cluster deployment runs it: a NATS cluster of real nats-server processes
// (built from the Go module, as the tests build it), two `img2vid serve
// --role api` replicas and 1, then 2, then 4 `--role worker` processes,
// all on this machine. For each worker count it posts -jobs cheap jobs
// (two small images, no model: the cost is ffmpeg's start and the path
// through NATS) to API A from 4 clients as fast as they are taken, waits
// until every one is done, and reports jobs per second from the first
// post to the last end. Meanwhile
// pollers read the status of jobs not yet done from API B, and it reports
// that endpoint's p50 and p99. The ratios to one worker come from the same
// run, on the same cluster.
//
//	go run ./bench/cluster -jobs 60
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/img2vid/img2vid/bench/internal/machine"
	"github.com/img2vid/img2vid/internal/natsproc"
	"github.com/img2vid/img2vid/internal/repo"
)

func main() {
	n := flag.Int("jobs", 60, "jobs per worker count")
	nodes := flag.Int("nodes", 3, "nats-server processes in the cluster (the stream and buckets get min(nodes, 3) replicas)")
	pollers := flag.Int("pollers", 4, "clients reading job status from API B meanwhile")
	every := flag.Duration("poll-every", 50*time.Millisecond, "pause between one poller's status requests")
	flag.Parse()
	if err := run(*n, *nodes, *pollers, *every); err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		os.Exit(1)
	}
}

// procs are the processes started, stopped at the end.
type procs struct{ cmds []*exec.Cmd }

func (p *procs) stop() {
	for _, c := range p.cmds {
		c.Process.Kill()
		c.Wait()
	}
}

func run(n, nodes, pollers int, every time.Duration) error {
	if n < 1 || nodes < 1 || pollers < 0 {
		return fmt.Errorf("-jobs and -nodes must be positive, -pollers not negative")
	}
	work, err := os.MkdirTemp("", "img2vid-bench-cluster-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	root := repo.Root(wd)
	if root == "" {
		return fmt.Errorf("run it inside the checkout (no go.mod at or above %s)", wd)
	}
	natsBin, img2vidBin := filepath.Join(work, "nats-server"), filepath.Join(work, "img2vid")
	for _, b := range []struct{ out, pkg string }{{natsBin, "github.com/nats-io/nats-server/v2"}, {img2vidBin, "./cmd/img2vid"}} {
		cmd := exec.Command("go", "build", "-o", b.out, b.pkg)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("building %s: %v\n%s", b.pkg, err, out)
		}
	}
	var ps procs
	defer ps.stop()
	url, err := startCluster(&ps, natsBin, work, nodes)
	if err != nil {
		return err
	}
	common := []string{"serve", "--port", "0", "--device", "cpu", "--log-level", "warn", "--nats", url,
		"--nats-replicas", strconv.Itoa(min(nodes, 3)), "--max-jobs-per-client", "0", "--queue", strconv.Itoa(n + 8)}
	start := func(name string, args ...string) (string, error) {
		return startServe(&ps, img2vidBin, append(append(slices.Clone(common), "--work-dir", filepath.Join(work, name)), args...)...)
	}
	apiA, err := start("api-a", "--role", "api")
	if err != nil {
		return err
	}
	apiB, err := start("api-b", "--role", "api")
	if err != nil {
		return err
	}
	body, ctype, err := jobForm()
	if err != nil {
		return err
	}
	fmt.Printf("cluster: %s, %d CPUs, %s, load average %s at the start\n",
		machine.CPUModel(), runtime.NumCPU(), time.Now().UTC().Format("2006-01-02 15:04 UTC"), machine.LoadAvg())
	fmt.Printf("%d nats-server (R%d), 2 api replicas, %d jobs of 2 PNGs 64x48 per run, %d pollers on API B every %s\n",
		nodes, min(nodes, 3), n, pollers, every)
	fmt.Printf("%-8s %10s %8s %12s %12s %10s\n", "workers", "jobs/s", "ratio", "status p50", "status p99", "load avg")
	var workers int
	var base float64
	for _, want := range []int{1, 2, 4} {
		for ; workers < want; workers++ {
			if _, err := start(fmt.Sprintf("worker-%d", workers), "--role", "worker"); err != nil {
				return err
			}
		}
		rate, status, err := measure(apiA, apiB, body, ctype, n, pollers, every)
		if err != nil {
			return fmt.Errorf("%d workers: %w", workers, err)
		}
		if base == 0 {
			base = rate
		}
		fmt.Printf("%-8d %10.2f %8.2f %12s %12s %10s\n", workers, rate, rate/base,
			pct(status, 50), pct(status, 99), strings.Fields(machine.LoadAvg())[0])
	}
	fmt.Printf("load average %s at the end\n", machine.LoadAvg())
	return nil
}

// startCluster starts nodes JetStream servers routed together and returns
// their client URLs, comma separated.
func startCluster(ps *procs, bin, work string, nodes int) (string, error) {
	ports, routes := make([]int, nodes), make([]int, nodes)
	for i := range nodes {
		var err error
		if ports[i], err = natsproc.FreePort(); err != nil {
			return "", err
		}
		if routes[i], err = natsproc.FreePort(); err != nil {
			return "", err
		}
	}
	var urls, routeURLs []string
	for i := range nodes {
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", ports[i]))
		routeURLs = append(routeURLs, fmt.Sprintf("nats://127.0.0.1:%d", routes[i]))
	}
	for i := range nodes {
		args := []string{"-a", "127.0.0.1", "-p", strconv.Itoa(ports[i]), "-n", fmt.Sprintf("n%d", i),
			"-js", "-sd", filepath.Join(work, fmt.Sprintf("nats-%d", i))}
		if nodes > 1 {
			args = append(args, "--cluster_name", "bench", "-cluster", routeURLs[i], "-routes", strings.Join(routeURLs, ","))
		}
		cmd := exec.Command(bin, args...)
		if err := cmd.Start(); err != nil {
			return "", err
		}
		ps.cmds = append(ps.cmds, cmd)
	}
	for _, p := range ports {
		if err := natsproc.WaitPort(p, 30*time.Second); err != nil {
			return "", err
		}
	}
	return strings.Join(urls, ","), nil
}

// startServe starts img2vid with args and returns the URL it says it
// serves at, once it is ready.
func startServe(ps *procs, bin string, args ...string) (string, error) {
	cmd := exec.Command(bin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return "", err
	}
	if err := cmd.Start(); err != nil {
		return "", err
	}
	ps.cmds = append(ps.cmds, cmd)
	urlRE := regexp.MustCompile(`running at (http://\S+)/`)
	sc := bufio.NewScanner(stderr)
	var said []string
	for sc.Scan() {
		if m := urlRE.FindStringSubmatch(sc.Text()); m != nil {
			go io.Copy(io.Discard, stderr)
			return m[1], waitReady(m[1])
		}
		said = append(said, sc.Text())
	}
	return "", fmt.Errorf("img2vid %s exited before it served:\n%s", strings.Join(args, " "), strings.Join(said, "\n"))
}

func waitReady(base string) error {
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s is not ready after a minute", base)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// jobForm is the upload of one job: two small PNGs, no model.
func jobForm() ([]byte, string, error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for i, c := range []color.NRGBA{{200, 40, 0, 255}, {0, 40, 200, 255}} {
		img := image.NewNRGBA(image.Rect(0, 0, 64, 48))
		for p := 0; p < len(img.Pix); p += 4 {
			copy(img.Pix[p:], []byte{c.R, c.G, c.B, c.A})
		}
		w, err := mw.CreateFormFile("files", fmt.Sprintf("%d.png", i))
		if err != nil {
			return nil, "", err
		}
		if err := png.Encode(w, img); err != nil {
			return nil, "", err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, "", err
	}
	return body.Bytes(), mw.FormDataContentType(), nil
}

// clients is how many clients post jobs at once.
const clients = 4

// measure posts n jobs to apiA, waits until every one is done (read from
// apiA), and returns the jobs per second over that span and the status
// times pollers saw on apiB meanwhile.
func measure(apiA, apiB string, body []byte, ctype string, n, pollers int, every time.Duration) (float64, []time.Duration, error) {
	var mu sync.Mutex
	var inFlight []string
	var status []time.Duration
	var pollErr error
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range pollers {
		wg.Go(func() {
			for k := i; ctx.Err() == nil; k++ {
				mu.Lock()
				var id string
				if len(inFlight) > 0 {
					id = inFlight[k%len(inFlight)]
				}
				mu.Unlock()
				if id != "" {
					t0 := time.Now()
					st, err := jobStatus(apiB, id)
					took := time.Since(t0)
					mu.Lock()
					if err != nil && pollErr == nil {
						pollErr = err
					}
					status = append(status, took)
					if st == "done" { // a client stops polling a job once it is done
						inFlight = slices.DeleteFunc(inFlight, func(s string) bool { return s == id })
					}
					mu.Unlock()
				}
				select {
				case <-ctx.Done():
				case <-time.After(every):
				}
			}
		})
	}
	defer func() { stop(); wg.Wait() }()

	// Posted by a few clients at once, so that one client's round trips
	// do not bound the rate the workers can reach.
	start := time.Now()
	ids := make([]string, n)
	errs := make([]error, n)
	next := make(chan int, n)
	for i := range n {
		next <- i
	}
	close(next)
	var posters sync.WaitGroup
	for range min(clients, n) {
		posters.Go(func() {
			for i := range next {
				ids[i], errs[i] = post(apiA, body, ctype)
				if errs[i] == nil {
					mu.Lock()
					inFlight = append(inFlight, ids[i])
					mu.Unlock()
				}
			}
		})
	}
	posters.Wait()
	if err := errors.Join(errs...); err != nil {
		return 0, nil, err
	}
	deadline := time.Now().Add(10 * time.Minute)
	for _, id := range ids {
		for {
			st, err := jobStatus(apiA, id)
			if err != nil {
				return 0, nil, err
			}
			if st == "done" {
				break
			}
			if st == "failed" || st == "canceled" {
				return 0, nil, fmt.Errorf("job %s ended %s", id, st)
			}
			if time.Now().After(deadline) {
				return 0, nil, fmt.Errorf("job %s still %s after 10 minutes", id, st)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	took := time.Since(start)
	stop()
	wg.Wait()
	if pollErr != nil {
		return 0, nil, fmt.Errorf("status on API B: %w", pollErr)
	}
	return float64(n) / took.Seconds(), status, nil
}

// post submits one job and returns its id, waiting and trying again while
// the queue is full.
func post(base string, body []byte, ctype string) (string, error) {
	for {
		resp, err := http.Post(base+"/api/jobs", ctype, bytes.NewReader(body))
		if err != nil {
			return "", err
		}
		var created struct {
			ID string `json:"id"`
		}
		err = json.NewDecoder(resp.Body).Decode(&created)
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusServiceUnavailable:
			time.Sleep(100 * time.Millisecond)
			continue
		case resp.StatusCode != http.StatusAccepted || err != nil:
			return "", fmt.Errorf("POST %s/api/jobs: %s (%v)", base, resp.Status, err)
		}
		return created.ID, nil
	}
}

// jobStatus reads one job's status.
func jobStatus(base, id string) (string, error) {
	resp, err := http.Get(base + "/api/jobs/" + id)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var j struct {
		Status string `json:"status"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&j); err != nil || resp.StatusCode != http.StatusOK {
		return "", errors.Join(fmt.Errorf("GET %s/api/jobs/%s: %s", base, id, resp.Status), err)
	}
	return j.Status, nil
}

// pct is the p-th percentile of d.
func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(d))
	return s[min(len(s)-1, len(s)*p/100)].Round(100 * time.Microsecond)
}
