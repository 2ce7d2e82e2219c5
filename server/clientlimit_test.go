package server

import (
	"github.com/img2vid/img2vid"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

// postFrom sends a one-image job as if from the remote address addr, with
// extra request headers, and returns the recorded answer.
func postFrom(t *testing.T, s *Server, addr string, header map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	body, typ := multipartBody(t, file("a.png", pngOf(t, 8, 8, red)))
	req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1/api/jobs", body)
	req.RemoteAddr = addr
	req.Header.Set("Content-Type", typ)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	return rec
}

// idOf returns the id of an accepted job, failing unless it was accepted.
func idOf(t *testing.T, rec *httptest.ResponseRecorder) string {
	t.Helper()
	if rec.Code != http.StatusAccepted {
		t.Fatalf("POST /api/jobs: %d %s, want 202", rec.Code, rec.Body)
	}
	loc := rec.Header().Get("Location")
	id := strings.TrimPrefix(loc, "/api/jobs/")
	if !validID(id) {
		t.Fatalf("Location %q holds no job id", loc)
	}
	return id
}

func TestJobsPerClientAnswers429(t *testing.T) {
	conv := &fakeConverter{block: true, release: make(chan struct{}), started: make(chan string, 8)}
	s, ts := start(t, conv, func(c *testbed) {
		c.Workers, c.Queue, c.RetryAfter = 1, 8, 3*time.Second
		c.Limits.JobsPerClient = 2
	})
	const a, b = "192.0.2.1:40000", "192.0.2.2:40000"
	running := idOf(t, postFrom(t, s, a, nil))
	<-conv.started
	queued := idOf(t, postFrom(t, s, a+"1", nil)) // another port, the same client

	// A forwarded header must not let a client pass for another one.
	rec := postFrom(t, s, a, map[string]string{"X-Forwarded-For": "198.51.100.7", "X-Real-IP": "198.51.100.7"})
	e := errorOf(t, rec.Body.Bytes())
	if rec.Code != http.StatusTooManyRequests || e.Code != ETOOMANYJOBS || !strings.Contains(e.Error, "max_jobs_per_client=2") ||
		rec.Header().Get("Retry-After") != "3" {
		t.Fatalf("third job of one client: %d Retry-After %q %+v, want 429 too_many_jobs naming max_jobs_per_client=2 with Retry-After 3",
			rec.Code, rec.Header().Get("Retry-After"), e)
	}
	if entries := workEntries(t, s); len(entries) != 0 {
		t.Errorf("work folder holds %v after a refusal, want nothing: accepted jobs are in the job store", entries)
	}

	// Another client is not held back by the first one's jobs.
	other := idOf(t, postFrom(t, s, b, nil))

	// Deleting a queued job gives its slot back at once, without waiting
	// for the worker to reach it.
	resp, _ := do(t, mustRequest(t, http.MethodDelete, ts.URL+"/api/jobs/"+queued, nil))
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE: %d", resp.StatusCode)
	}
	again := idOf(t, postFrom(t, s, a, nil))

	// Once a job ends, its slot is free by the time a client sees it end.
	close(conv.release)
	for _, id := range []string{running, again, other} {
		waitFor(t, "job "+id+" to end", func() bool { _, v := jobOf(t, ts, id); return terminal(v.Status) })
	}
	for range 2 {
		id := idOf(t, postFrom(t, s, a, nil))
		waitFor(t, "job "+id+" to end", func() bool { _, v := jobOf(t, ts, id); return v.Status == StatusDone })
	}
}

func TestJobsPerClientZeroIsOff(t *testing.T) {
	conv := &fakeConverter{block: true, release: make(chan struct{})}
	s, _ := start(t, conv, func(c *testbed) { c.Limits.JobsPerClient = 0 })
	defer close(conv.release)
	for i := range img2vid.DefaultLimits().JobsPerClient + 2 {
		if rec := postFrom(t, s, "192.0.2.1:40000", nil); rec.Code != http.StatusAccepted {
			t.Fatalf("job %d with the limit off: %d %s", i+1, rec.Code, rec.Body)
		}
	}
}

func TestJobsPerClientStatus(t *testing.T) {
	if got := statusOf(ETOOMANYJOBS); got != http.StatusTooManyRequests {
		t.Errorf("too_many_jobs maps to %d, want 429", got)
	}
}

// workEntries lists the upload folders in the work folder.
func workEntries(t *testing.T, s *Server) []os.DirEntry {
	t.Helper()
	entries, err := os.ReadDir(s.cfg.WorkDir)
	if err != nil {
		t.Fatal(err)
	}
	return entries
}

// Uploads in progress count against their client too: one address cannot
// hold any number of slow uploads open, while others are still served.
func TestSlowUploadsCountAgainstTheClient(t *testing.T) {
	s, ts := start(t, &fakeConverter{}, func(c *testbed) { c.Limits.JobsPerClient = 1 })
	body, typ := multipartBody(t, file("a.png", pngOf(t, 8, 8, red)))
	whole, err := io.ReadAll(body)
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1/api/jobs", pr)
	req.RemoteAddr = "192.0.2.7:1000"
	req.Header.Set("Content-Type", typ)
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() { s.Handler().ServeHTTP(rec, req); close(done) }()
	pw.Write(whole[:10]) // the upload starts, then stalls
	// Its folder is made once its place is taken.
	waitFor(t, "the slow upload to be admitted", func() bool { return len(workEntries(t, s)) == 1 })

	second := postFrom(t, s, "192.0.2.7:1001", nil)
	if e := errorOf(t, second.Body.Bytes()); second.Code != http.StatusTooManyRequests ||
		!strings.Contains(e.Error, "this client already has 1 jobs uploading, queued or running; the limit is max_jobs_per_client=1") {
		t.Errorf("second upload from the same client: %d %+v, want 429 naming the upload in progress", second.Code, e)
	}
	idOf(t, postFrom(t, s, "198.51.100.1:1000", nil)) // another client is served

	pw.Write(whole[10:])
	pw.Close()
	<-done
	if rec.Code != http.StatusAccepted {
		t.Errorf("the slow upload, once complete: %d %s, want 202", rec.Code, rec.Body)
	}
	// Once its job has ended, the client's place is free.
	id := idOf(t, rec)
	waitFor(t, "the slow upload's job to end", func() bool { _, v := jobOf(t, ts, id); return terminal(v.Status) })
	idOf(t, postFrom(t, s, "192.0.2.7:1002", nil))
}
