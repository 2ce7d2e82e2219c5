package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/img2vid/img2vid/internal/testenv"
	"github.com/img2vid/img2vid/internal/testimage"
	"github.com/img2vid/img2vid/server"
	"github.com/img2vid/img2vid/video"
)

// uploadFrames posts the files as one multipart job, streaming them from
// disk the way a browser does, and returns the job's id.
func uploadFrames(t *testing.T, base string, files []string, fields map[string]string) string {
	t.Helper()
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		err := func() error {
			for k, v := range fields {
				if err := mw.WriteField(k, v); err != nil {
					return err
				}
			}
			for _, f := range files {
				dst, err := mw.CreateFormFile("files", filepath.Base(f))
				if err != nil {
					return err
				}
				src, err := os.Open(f)
				if err != nil {
					return err
				}
				_, err = io.Copy(dst, src)
				src.Close()
				if err != nil {
					return err
				}
			}
			return mw.Close()
		}()
		pw.CloseWithError(err)
	}()
	resp, err := http.Post(base+"/api/jobs", mw.FormDataContentType(), pr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v struct{ ID, Error string }
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /api/jobs: %d %+v (%v)", resp.StatusCode, v, err)
	}
	return v.ID
}

// follow reads a job's event stream to its end and returns every event.
func follow(t *testing.T, base, id string) (names []string, jobs []server.JobView) {
	t.Helper()
	resp, err := http.Get(base + "/api/jobs/" + id + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if name, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
			names = append(names, name)
		}
		if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			var v server.JobView
			if err := json.Unmarshal([]byte(data), &v); err != nil {
				t.Fatal(err)
			}
			jobs = append(jobs, v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(names) == 0 || len(names) != len(jobs) {
		t.Fatalf("event stream had %d names and %d payloads", len(names), len(jobs))
	}
	return names, jobs
}

// TestClipThroughTheAPI uploads 50 frames, follows the job's events,
// downloads and probes the video: generated frames, and the aquarium frames
// of the extended set.
func TestClipThroughTheAPI(t *testing.T) {
	testenv.NeedFFmpeg(t)
	for _, src := range testimage.Sources(50, 320, 180) {
		t.Run(src.Name, func(t *testing.T) { clipThroughTheAPI(t, src) })
	}
}

func clipThroughTheAPI(t *testing.T, src testimage.Source) {
	frames := clipFrames(t, src)
	s := newServer(t, nil)
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()

	id := uploadFrames(t, ts.URL, frames, map[string]string{"fps": "5"})
	names, jobs := follow(t, ts.URL, id)
	last := jobs[len(jobs)-1]
	if names[len(names)-1] != server.StatusDone || last.Status != server.StatusDone {
		t.Fatalf("job ended %s: %+v", names[len(names)-1], last.Error)
	}
	done := -1
	for i, j := range jobs[:len(jobs)-1] {
		if names[i] != "progress" || j.Progress.Done < done {
			t.Errorf("event %d: %s with %d frames done after %d", i, names[i], j.Progress.Done, done)
		}
		done = j.Progress.Done
	}
	if p := last.Progress; p.Done != 50 || p.Total != 50 {
		t.Errorf("final progress %d/%d, want 50/50", p.Done, p.Total)
	}

	resp, err := http.Get(ts.URL + last.Video + "?download=1")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "video.mp4")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	size, err := io.Copy(f, resp.Body)
	resp.Body.Close()
	f.Close()
	if err != nil || resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("download: %d, %s, %v", resp.StatusCode, resp.Header.Get("Content-Disposition"), err)
	}
	info, err := video.Probe(context.Background(), "ffprobe", out)
	if err != nil {
		t.Fatal(err)
	}
	if info.Codec != "h264" || info.PixFmt != "yuv420p" || info.Width != src.Width || info.Height != src.Height ||
		info.Frames != 50 || math.Abs(info.Duration-10) > 0.05 {
		t.Errorf("ffprobe: %+v, want h264 yuv420p %dx%d, 50 frames, 10 s", info, src.Width, src.Height)
	}

	req, err := http.NewRequest(http.MethodGet, ts.URL+last.Video, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Range", "bytes=1000-1999")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	part, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := fmt.Sprintf("bytes 1000-1999/%d", size); resp.StatusCode != http.StatusPartialContent ||
		len(part) != 1000 || resp.Header.Get("Content-Range") != want {
		t.Errorf("range: %d, %d bytes, Content-Range %q, want 206 with 1000 bytes, %q",
			resp.StatusCode, len(part), resp.Header.Get("Content-Range"), want)
	}

	req, _ = http.NewRequest(http.MethodDelete, ts.URL+"/api/jobs/"+id, nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("DELETE: %d", resp.StatusCode)
	}
}
