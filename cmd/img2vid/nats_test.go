package main

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/img2vid/img2vid/internal/natsproc"
	"github.com/img2vid/img2vid/internal/testenv"
	"github.com/img2vid/img2vid/internal/testimage"
	"github.com/img2vid/img2vid/video"
)

// natsServer builds nats-server from the module this one requires (nothing
// is downloaded) and returns its path.
func natsServer(t *testing.T) string {
	t.Helper()
	bin, err := natsproc.Build(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// freePort returns a loopback port nothing listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	port, err := natsproc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// waitPort waits until something takes connections on a loopback port.
func waitPort(t *testing.T, port int) {
	t.Helper()
	if err := natsproc.WaitPort(port, 20*time.Second); err != nil {
		t.Fatal(err)
	}
}

// startNATS runs a JetStream server on port with its files in dir, and
// waits until it takes connections.
func startNATS(t *testing.T, bin string, port int, dir string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, "-a", "127.0.0.1", "-p", strconv.Itoa(port), "-js", "-sd", dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitPort(t, port)
	return cmd
}

// getBody returns the status and body of a GET.
func getBody(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitUntil polls cond until it holds or the time is up.
func waitUntil(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// An API replica and workers, each its own process, share a real NATS
// server: a job posted to the API runs on a worker and its video comes
// from the API; the worker serves no API; a worker stopped with SIGTERM
// hands its running job to another and exits 0; with NATS gone the API is
// not ready, and it is again once NATS is back. A NATS with no users and
// no job key is reported as insecure by both roles' /readyz.
func TestServeRolesShareANATSServer(t *testing.T) {
	testenv.NeedFFmpeg(t)
	bin := natsServer(t)
	port, store := freePort(t), t.TempDir()
	nats := startNATS(t, bin, port, store)
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	first, workerA := startServe(t, "--nats", url, "--role", "worker", "--work-dir", t.TempDir(), "--grace", "1s")
	_, api := startServe(t, "--nats", url, "--role", "api", "--work-dir", t.TempDir())

	for _, base := range []string{api, workerA} {
		var body string
		waitUntil(t, base+" ready", time.Minute, func() bool { code, b := getBody(t, base+"/readyz"); body = b; return code == http.StatusOK })
		if !strings.Contains(body, "NATS is used without credentials") || !strings.Contains(body, "job messages are not signed") {
			t.Errorf("/readyz of %s on an open NATS: %s, want both warnings", base, body)
		}
	}
	small := []image.Image{testimage.Solid(64, 48, color.NRGBA{200, 0, 0, 255}), testimage.Solid(64, 48, color.NRGBA{0, 0, 200, 255})}
	id := postImages(t, api, small, nil)
	var j restartJob
	waitUntil(t, "the job to end", time.Minute, func() bool { j, _ = getJob(t, api, id); return j.Status == "done" || j.Status == "failed" })
	if j.Status != "done" {
		t.Fatalf("job ended %s (%+v)", j.Status, j.Error)
	}
	checkVideo(t, api+j.Video, 64, 48, 2)
	if code, _ := getBody(t, workerA+"/api/models"); code != http.StatusNotFound {
		t.Errorf("a worker answers /api/models with %d, want 404: it serves no API", code)
	}
	if code, body := getBody(t, workerA+"/readyz"); code != http.StatusOK {
		t.Errorf("worker /readyz = %d %s", code, body)
	}
	waitMetrics(t, workerA, "the worker, which counts the job it ran, and the queue's",
		`img2vid_jobs_total{outcome="done"} 1`, "img2vid_jobs_in_progress 0", "img2vid_jobs_redelivered 0")
	if _, body := getBody(t, api+"/metrics"); strings.Contains(body, "img2vid_jobs_total") || !strings.Contains(body, "img2vid_queue_depth 0") {
		t.Errorf("the API's metrics: want the queue depth and no jobs run here")
	}

	// A second worker comes up and a slow job starts on one of the two;
	// that one is stopped with SIGTERM, and the job is handed on.
	second, workerB := startServe(t, "--nats", url, "--role", "worker", "--work-dir", t.TempDir(), "--grace", "1s")
	r := rand.New(rand.NewPCG(3, 4))
	var heavy []image.Image
	for range 24 {
		heavy = append(heavy, noise(r, 320, 180))
	}
	slow := postImages(t, api, heavy, map[string]string{"preset": "veryslow"})
	waitUntil(t, "a worker to take the slow job", time.Minute, func() bool { return runningJobs(t, workerA)+runningJobs(t, workerB) > 0 })
	stopped, other, otherDone := first, workerB, 1 // the other's finished jobs at the end
	if runningJobs(t, workerA) == 0 {
		stopped, other, otherDone = second, workerA, 2 // the first also ran the small job
	}
	terminate(t, stopped, "the drained worker")
	waitUntil(t, "the handed-on job to end", 2*time.Minute, func() bool {
		j, _ = getJob(t, api, slow)
		return j.Status == "done" || j.Status == "failed"
	})
	if j.Status != "done" || j.Attempt != 1 {
		t.Fatalf("the handed-on job ended %s at attempt %d (%+v), want done at its first counted attempt", j.Status, j.Attempt, j.Error)
	}
	checkVideo(t, api+j.Video, 320, 180, len(heavy))
	waitMetrics(t, other, "the other worker, which finished the handed-on job", fmt.Sprintf(`img2vid_jobs_total{outcome="done"} %d`, otherDone))

	// NATS goes away: the API says it is not ready, and is ready again,
	// by itself, once NATS is back.
	nats.Process.Kill()
	nats.Wait()
	waitUntil(t, "the API to say it is not ready", 30*time.Second, func() bool { code, _ := getBody(t, api+"/readyz"); return code == http.StatusServiceUnavailable })
	startNATS(t, bin, port, store)
	waitUntil(t, "the API to be ready again", time.Minute, func() bool { code, _ := getBody(t, api+"/readyz"); return code == http.StatusOK })
	id = postImages(t, api, small, nil)
	waitUntil(t, "a job after the reconnect to end", time.Minute, func() bool { j, _ = getJob(t, api, id); return j.Status == "done" })

	// doctor reports the job system's stream, buckets and consumer.
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	doctor := exec.Command(exe, "doctor", "--nats", url, "--device", "cpu")
	doctor.Env = append(os.Environ(), "IMG2VID_TEST_MAIN=1")
	out, _ := doctor.CombinedOutput() // the verdict depends on this machine's models
	for _, want := range []string{"nats:", "stream:            IMG2VID_JOBS R1", "bucket:            KV_img2vid-jobs R1",
		"bucket:            OBJ_img2vid-videos R1", "consumer:          IMG2VID_JOBS/workers R1, 0 waiting, 0 in progress"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("doctor does not say %q:\n%s", want, out)
		}
	}
}

// A NATS server that cannot be reached at start is an error naming it,
// and serve exits non-zero.
func TestServeNATSUnreachable(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("nats://127.0.0.1:%d", freePort(t))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "serve", "--port", "0", "--work-dir", t.TempDir(), "--device", "cpu", "--nats", url, "--role", "worker")
	cmd.Env = append(os.Environ(), "IMG2VID_TEST_MAIN=1")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(string(out), url) {
		t.Fatalf("serve with NATS away: %v\n%s\nwant exit status 1 naming %s", err, out, url)
	}
	for _, tc := range [][]string{{"--role", "api"}, {"--role", "boss", "--nats", url}} {
		cmd := exec.CommandContext(ctx, exe, append([]string{"serve", "--port", "0", "--work-dir", t.TempDir()}, tc...)...)
		cmd.Env = append(os.Environ(), "IMG2VID_TEST_MAIN=1")
		if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "--role") {
			t.Errorf("serve %v: %v\n%s\nwant a refusal naming --role", tc, err, out)
		}
	}
}

// A worker whose ONNX Runtime cannot be opened (a library that is not
// there, a models folder that is not there yet) stays up, says why on
// /readyz, and takes no job. Once its models folder appears it opens the
// runtime by itself, becomes ready and runs the job, while the worker
// without a library never takes one. The worker's /metrics then show the
// model runs and the job.
func TestServeWorkerNotReadyTakesNoJob(t *testing.T) {
	testenv.NeedFFmpeg(t)
	port := freePort(t)
	startNATS(t, natsServer(t), port, t.TempDir())
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	models := filepath.Join(t.TempDir(), "models")
	_, noLib := startServe(t, "--nats", url, "--role", "worker", "--ort-lib", "/nonexistent/libonnxruntime.so")
	_, late := startServe(t, "--nats", url, "--role", "worker", "--models-dir", models)
	_, api := startServe(t, "--nats", url, "--role", "api")
	// The reason names the file, not the folders it is in (docs/SECURITY.md).
	for _, broken := range []struct{ base, says, folder string }{{noLib, "libonnxruntime.so", "/nonexistent/"}, {late, "is not a folder", models}} {
		code, body := getBody(t, broken.base+"/readyz")
		if code != http.StatusServiceUnavailable || !strings.Contains(body, "ONNX Runtime does not work") || !strings.Contains(body, broken.says) ||
			strings.Contains(body, broken.folder) {
			t.Errorf("/readyz of a worker without a runtime = %d %s, want 503 saying why (%s) without the folder %s", code, body, broken.says, broken.folder)
		}
	}

	// Two close images, so that the frame between them is the model's and
	// not a scene cut's copy.
	near := []image.Image{testimage.Solid(64, 48, color.NRGBA{200, 40, 0, 255}), testimage.Solid(64, 48, color.NRGBA{190, 50, 10, 255})}
	id := postImages(t, api, near, map[string]string{"interpolate": "2", "interp_model": "blend"})
	// Two fetch windows of the workers (2 s each): a worker that took jobs
	// while not ready would have taken this one by now.
	time.Sleep(5 * time.Second)
	if j, _ := getJob(t, api, id); j.Status != "queued" {
		t.Fatalf("with only workers that are not ready, the job is %s, want queued", j.Status)
	}
	if err := os.Mkdir(models, 0o700); err != nil {
		t.Fatal(err)
	}
	var j restartJob
	waitUntil(t, "the worker whose models folder appeared to run the job", time.Minute, func() bool {
		j, _ = getJob(t, api, id)
		return j.Status == "done" || j.Status == "failed"
	})
	if j.Status != "done" {
		t.Fatalf("job ended %s (%+v)", j.Status, j.Error)
	}
	info, err := video.Probe(context.Background(), "ffprobe", download(t, api+j.Video))
	if err != nil || info.Width != 64 || info.Height != 48 || info.Frames < 3 {
		t.Errorf("video: %+v (%v), want 64x48 with the interpolated frames", info, err)
	}
	if code, body := getBody(t, late+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz of the worker once its models folder is there = %d %s, want 200", code, body)
	}
	if _, body := getBody(t, noLib+"/metrics"); !strings.Contains(body, "img2vid_worker_ready 0") || strings.Contains(body, "img2vid_jobs_total{") {
		t.Errorf("the worker without a library: want img2vid_worker_ready 0 and no job run, metrics:\n%s", grepLines(body, "img2vid_"))
	}
	waitMetrics(t, late, "the worker that ran the job", `img2vid_worker_ready 1`, `img2vid_jobs_total{outcome="done"} 1`, `img2vid_jobs_running 0`,
		`img2vid_queue_depth 0`, `img2vid_inference_duration_seconds_count{model="blend",provider="cpu"}`, "process_cpu_seconds_total")
}

// waitMetrics reads base's /metrics until it holds every one of want, 10 s
// at most, and then reports those it lacks: a job's state turns done
// before its worker counts it, leaves it and acknowledges it, so the
// counts settle a moment after a client sees the job end. A want is a
// whole line ("name value"), or a series' name whatever its value.
func waitMetrics(t *testing.T, base, what string, want ...string) {
	t.Helper()
	var body string
	var missing []string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		_, body = getBody(t, base+"/metrics")
		missing = missing[:0]
		for _, w := range want {
			if !slices.ContainsFunc(strings.Split(body, "\n"), func(line string) bool { return line == w || strings.HasPrefix(line, w+" ") }) {
				missing = append(missing, w)
			}
		}
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("the metrics of %s lack %s:\n%s", what, strings.Join(missing, ", "), grepLines(body, "img2vid_"))
			return
		}
	}
}

// grepLines keeps the lines of text that start with prefix.
func grepLines(text, prefix string) string {
	var out []string
	for line := range strings.Lines(text) {
		if strings.HasPrefix(line, prefix) {
			out = append(out, strings.TrimSuffix(line, "\n"))
		}
	}
	return strings.Join(out, "\n")
}
