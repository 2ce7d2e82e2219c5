package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image/color"
	"io/fs"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/img2vid/img2vid/internal/proctest"
	"github.com/img2vid/img2vid/internal/testenv"
	"github.com/img2vid/img2vid/internal/testimage"
)

// upload is one multipart form: files in order, then fields.
type upload struct {
	files  [][]byte
	fields map[string]string
}

// apiJob is what the tests read of a job or an error.
type apiJob struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Result *struct {
		Frames   int     `json:"frames"`
		Duration float64 `json:"duration_s"`
	} `json:"result"`
	Error *struct {
		Error string `json:"error"`
		Code  string `json:"code"`
		Limit string `json:"limit"`
	} `json:"error"`
	// The fields of an error response, when the POST is refused.
	Message string `json:"error_message"`
}

// send posts u and returns the status and the decoded body (an error body
// is read into Error).
func send(t *testing.T, base string, u upload) (int, apiJob) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for k, v := range u.fields {
		mw.WriteField(k, v)
	}
	for i, f := range u.files {
		w, _ := mw.CreateFormFile("files", fmt.Sprintf("f%03d.img", i))
		w.Write(f)
	}
	mw.Close()
	resp, err := http.Post(base+"/api/jobs", mw.FormDataContentType(), &body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var raw json.RawMessage
	json.NewDecoder(resp.Body).Decode(&raw)
	var j apiJob
	if resp.StatusCode == http.StatusAccepted {
		json.Unmarshal(raw, &j)
	} else {
		j.Error = &struct {
			Error string `json:"error"`
			Code  string `json:"code"`
			Limit string `json:"limit"`
		}{}
		json.Unmarshal(raw, j.Error)
	}
	return resp.StatusCode, j
}

// finished polls the job until it ends.
func finished(t *testing.T, base, id string, within time.Duration) apiJob {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		resp, err := http.Get(base + "/api/jobs/" + id)
		if err != nil {
			t.Fatal(err)
		}
		var j apiJob
		json.NewDecoder(resp.Body).Decode(&j)
		resp.Body.Close()
		if j.Status == "done" || j.Status == "failed" || j.Status == "canceled" {
			return j
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("job %s did not end within %s", id, within)
	return apiJob{}
}

// The cases that once got past the limits, each through the real server
// (its process and its ffmpeg): refused before any work starts, or failed
// naming the limit, with the memory of the server and its ffmpeg measured
// and within the job's ceiling.
func TestServeHoldsEveryLimit(t *testing.T) {
	testenv.NeedFFmpeg(t)
	const ceilingMB = 2048
	work := t.TempDir()
	cmd, base := startServe(t, "--max-memory-mb", fmt.Sprint(ceilingMB), "--work-dir", work, "--log-level", "warn")
	pid := cmd.Process.Pid
	// The server and its ffmpeg over every case, refused or run.
	whole := proctest.TreeRSS(pid)

	t.Run("fps too small to last", func(t *testing.T) {
		status, j := send(t, base, upload{files: [][]byte{testimage.PNG(t, testimage.Quadrants(8, 8))}, fields: map[string]string{"fps": "1e-320"}})
		if status != 400 || j.Error.Code != "invalid" || !strings.Contains(j.Error.Error, "fps must be between") {
			t.Fatalf("got %d %+v, want 400 invalid", status, j.Error)
		}
	})

	t.Run("interpolation over the memory ceiling", func(t *testing.T) {
		big := testimage.PNGHeaderOnly(4096, 4096)
		status, j := send(t, base, upload{files: [][]byte{big, big}, fields: map[string]string{"interpolate": "16", "interp_model": "blend", "size": "original"}})
		if status != 413 || j.Error.Limit != "max_memory_mb" || !strings.Contains(j.Error.Error, fmt.Sprintf("max_memory_mb=%d", ceilingMB)) {
			t.Fatalf("got %d %+v, want 413 naming max_memory_mb", status, j.Error)
		}
	})

	t.Run("interpolation streams within the ceiling", func(t *testing.T) {
		img := testimage.PNG(t, testimage.Quadrants(2048, 2048))
		stop := proctest.TreeRSS(pid)
		status, j := send(t, base, upload{files: [][]byte{img, img}, fields: map[string]string{"interpolate": "16", "interp_model": "blend", "fps": "1"}})
		if status != http.StatusAccepted {
			stop()
			t.Fatalf("got %d %+v", status, j.Error)
		}
		j = finished(t, base, j.ID, 5*time.Minute)
		peak := stop()
		t.Logf("server + ffmpeg peak RSS %d MiB, ceiling %d MiB", peak>>20, ceilingMB)
		if j.Status != "done" || j.Result.Frames != 32 {
			t.Fatalf("job %+v, want done with 32 frames", j)
		}
		if peak <= 0 || peak > ceilingMB<<20 {
			t.Errorf("peak RSS %d MiB, want within the ceiling of %d MiB", peak>>20, ceilingMB)
		}
	})

	t.Run("concatenated JPEGs are one image", func(t *testing.T) {
		one := testimage.JPEG(t, testimage.Solid(32, 32, color.NRGBA{200, 40, 40, 255}))
		status, j := send(t, base, upload{files: [][]byte{bytes.Repeat(one, 300)}})
		if status != http.StatusAccepted {
			t.Fatalf("got %d %+v", status, j.Error)
		}
		if j = finished(t, base, j.ID, time.Minute); j.Status != "done" || j.Result.Frames != 1 || j.Result.Duration != 0.2 {
			t.Fatalf("job %+v, want one frame of 0.2 s", j)
		}
	})

	t.Run("a huge JPEG behind a small one is never decoded", func(t *testing.T) {
		// A 64x64 JPEG, then one whose header says 16000x16000 (256
		// megapixels, over max_pixels): ffmpeg, given the file whole,
		// would split it at the second start-of-image and decode it.
		small := testimage.JPEG(t, testimage.Quadrants(64, 64))
		huge := bytes.Clone(small)
		sof := bytes.Index(huge, []byte{0xFF, 0xC0})
		if sof < 0 {
			t.Fatal("no SOF0 marker in the test JPEG")
		}
		huge[sof+5], huge[sof+6], huge[sof+7], huge[sof+8] = 16000>>8, 16000&0xFF, 16000>>8, 16000&0xFF
		before := proctest.TreeRSS(pid)() // what earlier cases left in the server
		stop := proctest.TreeRSS(pid)
		status, j := send(t, base, upload{files: [][]byte{append(small, huge...)}})
		if status != http.StatusAccepted {
			stop()
			t.Fatalf("got %d %+v", status, j.Error)
		}
		j = finished(t, base, j.ID, time.Minute)
		peak := stop()
		t.Logf("server + ffmpeg peak RSS %d MiB, %d MiB before the job", peak>>20, before>>20)
		if j.Status != "done" || j.Result.Frames != 1 {
			t.Fatalf("job %s %+v %+v, want done with the one 64x64 frame", j.Status, j.Error, j.Result)
		}
		if peak-before > 256<<20 { // a 256-megapixel frame alone is 384 MiB in YUV 4:2:0
			t.Errorf("peak RSS %d MiB, %d MiB before: the hidden image was decoded", peak>>20, before>>20)
		}
	})

	peak := whole()
	t.Logf("server + ffmpeg peak RSS over every case %d MiB, ceiling %d MiB", peak>>20, ceilingMB)
	if peak <= 0 || peak > ceilingMB<<20 {
		t.Errorf("peak RSS over every case %d MiB, want within the ceiling of %d MiB", peak>>20, ceilingMB)
	}
	if entries, _ := os.ReadDir(work); len(entries) > 4 {
		t.Errorf("work folder holds %d job folders", len(entries))
	}
}

// dirBytes is the size of the files under dir.
func dirBytes(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// The disk budget holds the video while it is written, through the real
// server, its job system and ffmpeg: a job whose video would outgrow what
// the budget leaves fails naming max_disk_mb, the whole work folder (the
// job store, the uploads, the worker's folder) never goes past the
// budget, nothing of the video is left, and the server goes on serving.
// (Before the worker passed the cap, a 20 MiB budget let two uploads of
// 394 KB write 352 MiB.)
func TestServeHoldsTheDiskBudget(t *testing.T) {
	testenv.NeedFFmpeg(t)
	const budgetMB = 16
	work := t.TempDir()
	_, base := startServe(t, "--max-disk-mb", fmt.Sprint(budgetMB), "--work-dir", work, "--log-level", "warn")
	// Four noise images of 1 MB; interpolated 16 times without loss, the
	// video takes about 8 MB, where the budget leaves 4 MiB for it (half
	// of what the images, stored and in the worker's folder, leave).
	r := rand.New(rand.NewPCG(1, 2))
	a, b := testimage.PNG(t, noise(r, 512, 512)), testimage.PNG(t, noise(r, 512, 512))
	var most int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			most = max(most, dirBytes(work))
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	status, j := send(t, base, upload{files: [][]byte{a, b, a, b}, fields: map[string]string{"interpolate": "16", "interp_model": "blend", "quality": "0", "scene_cut": "1"}})
	if status != http.StatusAccepted {
		close(stop)
		t.Fatalf("got %d %+v", status, j.Error)
	}
	j = finished(t, base, j.ID, 3*time.Minute)
	close(stop)
	<-sampled
	t.Logf("work folder peaked at %d KiB against a budget of %d KiB", most>>10, budgetMB<<10)
	if j.Status != "failed" || j.Error.Limit != "max_disk_mb" || j.Error.Code != "busy" || !strings.Contains(j.Error.Error, fmt.Sprintf("max_disk_mb=%d", budgetMB)) {
		t.Fatalf("job %s %+v, want failed naming max_disk_mb", j.Status, j.Error)
	}
	if most > budgetMB<<20 {
		t.Errorf("the work folder reached %d KiB, past the budget of %d KiB", most>>10, budgetMB<<10)
	}
	if resp, err := http.Get(base + "/api/jobs/" + j.ID + "/video"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("the failed job's video: %v %v, want 404", resp.Status, err)
	} else {
		resp.Body.Close()
	}
	if left := dirBytes(filepath.Join(work, "worker")); left != 0 {
		t.Errorf("the worker's folder holds %d bytes after the job", left)
	}

	// The server goes on: a job that fits is done.
	small := testimage.PNG(t, testimage.Quadrants(64, 64))
	status, j = send(t, base, upload{files: [][]byte{small, small}})
	if status != http.StatusAccepted {
		t.Fatalf("got %d %+v", status, j.Error)
	}
	if j = finished(t, base, j.ID, time.Minute); j.Status != "done" {
		t.Fatalf("job %s %+v, want done", j.Status, j.Error)
	}
}

// A job's memory does not grow with the core count: the same job of
// twelve 2048x2048 images, through the real server with GOMAXPROCS 1 and
// 16, stays within a ceiling its plan fits under, where decoding an image
// per core (as before the read-ahead was bounded in bytes) would hold
// sixteen at once. The server and its ffmpeg are measured together.
func TestServeMemoryDoesNotGrowWithCores(t *testing.T) {
	testenv.NeedFFmpeg(t)
	const ceilingMB = 1024
	img := testimage.PNG(t, testimage.Photo(2048, 2048))
	files := make([][]byte, 12)
	for i := range files {
		files[i] = img
	}
	peaks := map[int]int64{}
	for _, procs := range []int{1, 16} {
		t.Setenv("GOMAXPROCS", fmt.Sprint(procs))
		cmd, base := startServe(t, "--max-memory-mb", fmt.Sprint(ceilingMB), "--log-level", "warn")
		stop := proctest.TreeRSS(cmd.Process.Pid)
		status, j := send(t, base, upload{files: files})
		if status != http.StatusAccepted {
			stop()
			t.Fatalf("GOMAXPROCS=%d: got %d %+v", procs, status, j.Error)
		}
		j = finished(t, base, j.ID, 3*time.Minute)
		peaks[procs] = stop()
		t.Logf("GOMAXPROCS=%d: server + ffmpeg peak RSS %d MiB, ceiling %d MiB", procs, peaks[procs]>>20, ceilingMB)
		if j.Status != "done" || j.Result.Frames != 12 {
			t.Fatalf("GOMAXPROCS=%d: job %s %+v, want done with 12 frames", procs, j.Status, j.Error)
		}
		if peaks[procs] > ceilingMB<<20 {
			t.Errorf("GOMAXPROCS=%d: peak RSS %d MiB, over the ceiling of %d MiB", procs, peaks[procs]>>20, ceilingMB)
		}
		cmd.Process.Kill()
		cmd.Wait()
	}
}
