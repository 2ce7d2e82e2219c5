package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/img2vid/img2vid/internal/testenv"
	"github.com/img2vid/img2vid/internal/testimage"
	"github.com/img2vid/img2vid/jobs"
	"github.com/img2vid/img2vid/video"
)

// restartJob is the part of a job's JSON this test reads.
type restartJob struct {
	Status  string `json:"status"`
	Attempt int    `json:"attempt"`
	Note    string `json:"note"`
	Video   string `json:"video"`
	Error   *struct {
		Error string `json:"error"`
	} `json:"error"`
}

// getJob reads a job; ok is false once it is gone (404).
func getJob(t *testing.T, base, id string) (restartJob, bool) {
	t.Helper()
	resp, err := http.Get(base + "/api/jobs/" + id)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var j restartJob
	if resp.StatusCode == http.StatusNotFound {
		return j, false
	}
	if err := json.NewDecoder(resp.Body).Decode(&j); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET job %s: %s (%v)", id, resp.Status, err)
	}
	return j, true
}

// postImages submits PNGs of images with extra form fields.
func postImages(t *testing.T, base string, images []image.Image, fields map[string]string) string {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for k, v := range fields {
		mw.WriteField(k, v)
	}
	for i, img := range images {
		w, _ := mw.CreateFormFile("files", fmt.Sprintf("%03d.png", i))
		w.Write(testimage.PNG(t, img))
	}
	mw.Close()
	resp, err := http.Post(base+"/api/jobs", mw.FormDataContentType(), &body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var created struct{ ID string }
	if err := json.NewDecoder(resp.Body).Decode(&created); err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /api/jobs: %s (%v)", resp.Status, err)
	}
	return created.ID
}

// noise is an image of random pixels: slow to encode, so a job of them is
// still running when the test needs it to be.
func noise(r *rand.Rand, w, h int) image.Image {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = uint8(r.Uint32())
	}
	for i := 3; i < len(img.Pix); i += 4 {
		img.Pix[i] = 255
	}
	return img
}

// The single-machine default keeps jobs across a crash: with one job
// running and two queued, `img2vid serve` is killed with SIGKILL and
// started again on the same work folder. The queued jobs run, the one that
// was running runs again and says so, every video is whole, and after the
// TTL nothing is left in the work folder or the job store.
func TestServeSurvivesSIGKILL(t *testing.T) {
	testenv.NeedFFmpeg(t)
	work := t.TempDir()
	// Long enough that the queued jobs, whose files live for the TTL, still
	// find them after the restart on a loaded machine: the restarted server
	// checks its models first (the job that was running is given back to
	// the queue at start, without waiting for its ack wait).
	const ttl = 40 * time.Second
	args := []string{"--work-dir", work, "--job-ttl", ttl.String(), "--workers", "1"}
	first, base := startServe(t, args...)

	r := rand.New(rand.NewPCG(1, 2))
	var heavy []image.Image
	for range 30 {
		heavy = append(heavy, noise(r, 320, 180))
	}
	slow := postImages(t, base, heavy, map[string]string{"preset": "veryslow"})
	deadline := time.Now().Add(30 * time.Second)
	for j, _ := getJob(t, base, slow); j.Status != "running"; j, _ = getJob(t, base, slow) {
		if time.Now().After(deadline) {
			t.Fatalf("the slow job never started: %+v", j)
		}
		time.Sleep(20 * time.Millisecond)
	}
	small := []image.Image{testimage.Solid(64, 48, color.NRGBA{200, 0, 0, 255}), testimage.Solid(64, 48, color.NRGBA{0, 0, 200, 255})}
	queued := []string{postImages(t, base, small, nil), postImages(t, base, small, nil)}
	for _, id := range queued {
		if j, _ := getJob(t, base, id); j.Status != "queued" {
			t.Fatalf("job %s is %s before the kill, want queued", id, j.Status)
		}
	}
	if j, _ := getJob(t, base, slow); j.Status != "running" {
		t.Fatalf("the slow job is %s before the kill, want running", j.Status)
	}
	if err := first.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	first.Wait()

	second, base := startServe(t, args...)
	want := map[string][2]int{slow: {320, 180}, queued[0]: {64, 48}, queued[1]: {64, 48}}
	ends := map[string]restartJob{}
	deadline = time.Now().Add(3 * time.Minute)
	for len(ends) < len(want) {
		if time.Now().After(deadline) {
			t.Fatalf("after the restart only %d of %d jobs ended: %+v", len(ends), len(want), ends)
		}
		for id, size := range want {
			if _, ended := ends[id]; ended {
				continue
			}
			j, ok := getJob(t, base, id)
			switch {
			case !ok:
				t.Fatalf("job %s is gone after the restart", id)
			case j.Status == "done":
				frames := len(small)
				if id == slow {
					frames = len(heavy)
				}
				checkVideo(t, base+j.Video, size[0], size[1], frames)
				ends[id] = j
			case j.Status == "failed" || j.Status == "canceled":
				t.Fatalf("job %s ended %s (%+v), want done", id, j.Status, j.Error)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if j := ends[slow]; j.Attempt != 2 || !strings.Contains(j.Note, "attempt 2") {
		t.Errorf("the job running at the kill ended with attempt %d, note %q; want attempt 2 saying why", j.Attempt, j.Note)
	}
	for _, id := range queued {
		if j := ends[id]; j.Attempt != 1 || j.Note != "" {
			t.Errorf("queued job %s ended with attempt %d, note %q; want its first attempt", id, j.Attempt, j.Note)
		}
	}

	// After the TTL the jobs are gone, and with them every file.
	deadline = time.Now().Add(ttl + 30*time.Second)
	for id := range want {
		for _, ok := getJob(t, base, id); ok; _, ok = getJob(t, base, id) {
			if time.Now().After(deadline) {
				t.Fatalf("job %s still there %s after it ended (TTL %s)", id, time.Since(deadline.Add(-ttl-30*time.Second)), ttl)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	time.Sleep(3 * time.Second) // the videos expire on their bucket's own clock
	if err := second.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := second.Wait(); err != nil {
		t.Fatalf("serve exited with %v after SIGTERM, want 0", err)
	}
	for _, dir := range []string{"uploads", "worker"} {
		if left, err := os.ReadDir(filepath.Join(work, dir)); err != nil || len(left) != 0 {
			t.Errorf("work folder %s holds %v (%v) after the TTL", dir, left, err)
		}
	}
	emb, err := jobs.StartEmbedded(filepath.Join(work, "jetstream"))
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Close()
	js, err := jetstream.New(emb.Conn)
	if err != nil {
		t.Fatal(err)
	}
	names := js.StreamNames(context.Background())
	seen := 0
	for name := range names.Name() {
		s, err := js.Stream(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		seen++
		if info.State.Msgs != 0 || info.State.Bytes != 0 {
			t.Errorf("stream %s holds %d messages (%d bytes) after the TTL, want none", name, info.State.Msgs, info.State.Bytes)
		}
	}
	if seen != 5 {
		t.Errorf("the job store has %d streams, want 5 (queue, states, admission, uploads, videos)", seen)
	}
}

// checkVideo downloads a video and checks it with ffprobe.
func checkVideo(t *testing.T, url string, w, h, frames int) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s (%v)", url, resp.Status, err)
	}
	out := filepath.Join(t.TempDir(), "video.mp4")
	if err := os.WriteFile(out, data, 0o600); err != nil {
		t.Fatal(err)
	}
	info, err := video.Probe(context.Background(), "ffprobe", out)
	if err != nil || info.Codec != "h264" || info.Width != w || info.Height != h || info.Frames != frames {
		t.Errorf("video %s: %+v (%v), want h264 %dx%d with %d frames", url, info, err, w, h, frames)
	}
}
