package main

import (
	"bufio"
	"fmt"
	"image"
	"image/color"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/img2vid/img2vid/internal/testenv"
	"github.com/img2vid/img2vid/internal/testimage"
)

// startClusterNode runs one of three JetStream servers routed together.
func startClusterNode(t *testing.T, bin string, i int, ports, routes []int) *exec.Cmd {
	t.Helper()
	var urls []string
	for _, p := range routes {
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", p))
	}
	cmd := exec.Command(bin, "-a", "127.0.0.1", "-p", strconv.Itoa(ports[i]), "-n", fmt.Sprintf("n%d", i),
		"-js", "-sd", t.TempDir(), "--cluster_name", "img2vid", "-cluster", fmt.Sprintf("nats://127.0.0.1:%d", routes[i]),
		"-routes", strings.Join(urls, ","))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

// runningJobs reads img2vid_jobs_running from a worker's metrics.
func runningJobs(t *testing.T, base string) int {
	t.Helper()
	_, body := getBody(t, base+"/metrics")
	m := regexp.MustCompile(`(?m)^img2vid_jobs_running (\d+)`).FindStringSubmatch(body)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// followEvents reads a job's event stream to its end and returns the name
// of its last event.
func followEvents(url string) (string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", url, resp.Status)
	}
	last := ""
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if name, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
			last = name
		}
	}
	return last, sc.Err()
}

// A three-node NATS cluster, two API replicas and two workers, every one a
// process of its own. Twenty jobs posted to API A are followed through API
// B's status and event stream, and each video is downloaded from A or B
// and checked. Meanwhile a worker is killed with SIGKILL in the middle of
// a job and one NATS node is killed too: every job still ends done, each
// video is the one its job asked for.
func TestServeOnANATSCluster(t *testing.T) {
	testenv.NeedFFmpeg(t)
	bin := natsServer(t)
	ports := []int{freePort(t), freePort(t), freePort(t)}
	routes := []int{freePort(t), freePort(t), freePort(t)}
	var nodes []*exec.Cmd
	var urls []string
	for i := range 3 {
		nodes = append(nodes, startClusterNode(t, bin, i, ports, routes))
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", ports[i]))
	}
	for _, p := range ports {
		waitPort(t, p)
	}
	url := strings.Join(urls, ",")
	common := []string{"--nats", url, "--nats-replicas", "3", "--max-jobs-per-client", "0", "--max-streams-per-client", "0", "--queue", "64"}
	doomed, _ := startServe(t, append(common, "--role", "worker", "--work-dir", t.TempDir())...)
	_, apiA := startServe(t, append(common, "--role", "api", "--work-dir", t.TempDir())...)
	_, apiB := startServe(t, append(common, "--role", "api", "--work-dir", t.TempDir())...)

	// A slow job starts on the first worker, which is killed in the middle
	// of it; the second worker comes up, and the other jobs are queued.
	r := rand.New(rand.NewPCG(5, 6))
	var heavy []image.Image
	for range 24 {
		heavy = append(heavy, noise(r, 320, 180))
	}
	slow := postImages(t, apiA, heavy, map[string]string{"preset": "veryslow"})
	waitUntil(t, "the slow job to start", time.Minute, func() bool { j, _ := getJob(t, apiB, slow); return j.Status == "running" })
	doomed.Process.Kill()
	_, survivor := startServe(t, append(common, "--role", "worker", "--work-dir", t.TempDir())...)
	const n = 20
	colors := make([]color.NRGBA, n)
	ids := make([]string, n)
	for i := range n {
		colors[i] = color.NRGBA{uint8(20 + 10*i), uint8(230 - 10*i), 128, 255}
		ids[i] = postImages(t, apiA, []image.Image{testimage.Solid(64, 48, colors[i]), testimage.Solid(64, 48, colors[i])}, nil)
	}
	var wg sync.WaitGroup
	ends := make([]string, n+1)
	errs := make([]error, n+1)
	for i, id := range append(ids, slow) {
		wg.Go(func() { ends[i], errs[i] = followEvents(apiB + "/api/jobs/" + id + "/events") })
	}

	// One NATS node goes while the jobs run.
	time.Sleep(time.Second)
	nodes[1].Process.Kill()

	wg.Wait()
	for i := range n + 1 {
		if errs[i] != nil || ends[i] != "done" {
			t.Errorf("job %d: the event stream on API B ended %q (%v), want done", i, ends[i], errs[i])
		}
	}
	for i, id := range ids {
		api := []string{apiA, apiB}[i%2]
		j, ok := getJob(t, api, id)
		if !ok || j.Status != "done" {
			t.Fatalf("job %d on %s: %+v", i, api, j)
		}
		out := download(t, api+j.Video)
		frames := testimage.DecodeVideo(t, out, 64, 48)
		if len(frames) != 2 {
			t.Fatalf("job %d: %d frames, want 2", i, len(frames))
		}
		got := testimage.RGBAt(frames[0], 64, 32, 24)
		want := colors[i]
		if d := max(diff(got[0], want.R), diff(got[1], want.G), diff(got[2], want.B)); d > 12 {
			t.Errorf("job %d's video shows %v, want about %v: a video of another job?", i, got, want)
		}
	}
	j, _ := getJob(t, apiA, slow)
	if j.Attempt != 2 || !strings.Contains(j.Note, "attempt 2") {
		t.Errorf("the job whose worker was killed ended at attempt %d, note %q; want attempt 2 saying why", j.Attempt, j.Note)
	}
	checkVideo(t, apiB+j.Video, 320, 180, len(heavy))
	waitMetrics(t, survivor, "the surviving worker, which ran every job once", fmt.Sprintf(`img2vid_jobs_total{outcome="done"} %d`, n+1))
}

// download fetches a URL into a file and returns its path.
func download(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := filepath.Join(t.TempDir(), "video.mp4")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.Copy(f, resp.Body); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s (%v)", url, resp.Status, err)
	}
	return out
}

func diff(a, b uint8) int { return max(int(a)-int(b), int(b)-int(a)) }
