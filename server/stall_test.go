package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// rawUpload opens a connection to ts and sends the headers of a job
// upload promising all of body, then the first sent bytes of it.
func rawUpload(t *testing.T, ts string, typ string, body []byte, sent int) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(ts, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n", typ, len(body))
	if _, err := conn.Write(body[:sent]); err != nil {
		t.Fatal(err)
	}
	return conn
}

// An upload whose client stops sending, but keeps its connection open, gets
// 408 once UploadIdle passes with nothing arriving: its folder is removed,
// its disk counted off, and its client's upload slot freed.
func TestStalledUploadGets408AndLeavesNothing(t *testing.T) {
	s, ts := start(t, &fakeConverter{}, func(c *testbed) {
		c.UploadIdle = 300 * time.Millisecond
		c.Limits.JobsPerClient = 1
	})
	body, typ := multipartBody(t, file("a.png", pngOf(t, 64, 64, red)), file("b.png", pngOf(t, 64, 64, green)))
	all, _ := io.ReadAll(body)
	conn := rawUpload(t, ts.URL, typ, all, len(all)*2/3)
	waitFor(t, "the upload to start", func() bool { return s.disk.Load() > 0 })

	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled upload: %v", err)
	}
	data, _ := io.ReadAll(resp.Body)
	if e := errorOf(t, data); resp.StatusCode != http.StatusRequestTimeout || e.Code != ESTALLED || !strings.Contains(e.Error, "upload_idle=300ms") {
		t.Errorf("stalled upload = %d %+v, want 408 stalled naming upload_idle=300ms", resp.StatusCode, e)
	}
	waitFor(t, "the stalled upload's folder to go", func() bool {
		return len(workEntries(t, s)) == 0 && s.disk.Load() == 0
	})
	// The slot is free: the same client may upload again at once.
	submit(t, ts, file("a.png", pngOf(t, 8, 8, red)))
}

// A slow upload that keeps sending survives, however long it takes in all.
func TestSlowLiveUploadSurvives(t *testing.T) {
	_, ts := start(t, &fakeConverter{}, func(c *testbed) { c.UploadIdle = 500 * time.Millisecond })
	body, typ := multipartBody(t, file("a.png", pngOf(t, 64, 64, red)), file("b.png", pngOf(t, 64, 64, green)))
	all, _ := io.ReadAll(body)
	conn := rawUpload(t, ts.URL, typ, all, 0)
	began := time.Now()
	const pieces = 12
	for i := range pieces { // about 1.2 s in all, more than twice the idle time
		time.Sleep(100 * time.Millisecond)
		if _, err := conn.Write(all[len(all)*i/pieces : len(all)*(i+1)/pieces]); err != nil {
			t.Fatalf("piece %d: %v", i, err)
		}
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusAccepted {
		data, _ := io.ReadAll(resp.Body)
		t.Fatalf("slow upload of %s = %d %s, want 202", time.Since(began).Round(time.Millisecond), resp.StatusCode, data)
	}
}

// rawGet sends a GET for path on a fresh connection and reads the response
// headers, leaving the body unread.
func rawGet(t *testing.T, ts, path string) (net.Conn, io.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(ts, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path)
	br := bufio.NewReaderSize(conn, 4096)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %v %v", path, resp, err)
	}
	return conn, resp.Body
}

// A download whose client stops reading is cut once DownloadIdle passes,
// so that it lets go of the video it reads from the job store.
func TestStalledDownloadIsCut(t *testing.T) {
	_, ts := start(t, &fakeConverter{videoBytes: 64 << 20}, func(c *testbed) { c.DownloadIdle = 300 * time.Millisecond })
	id := submit(t, ts, file("a.png", pngOf(t, 8, 8, red)))
	waitFor(t, "the job to end", func() bool { _, v := jobOf(t, ts, id); return v.Status == StatusDone })
	conn, br := rawGet(t, ts.URL, "/api/jobs/"+id+"/video")
	if _, err := io.ReadFull(br, make([]byte, 4096)); err != nil { // the download starts, then stalls
		t.Fatal(err)
	}
	time.Sleep(time.Second) // past DownloadIdle, and the socket buffers are full
	if resp, _ := do(t, mustRequest(t, http.MethodDelete, ts.URL+"/api/jobs/"+id, nil)); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE = %d", resp.StatusCode)
	}
	// The client, reading again, finds the response cut short.
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := io.Copy(io.Discard, br); err == nil && n+4096 >= 64<<20 {
		t.Errorf("the stalled download went on to the end (%d bytes)", n+4096)
	}
}

// A slow download that keeps reading survives, however long it takes.
func TestSlowLiveDownloadSurvives(t *testing.T) {
	const size = 3_000_000
	_, ts := start(t, &fakeConverter{videoBytes: size}, func(c *testbed) { c.DownloadIdle = 500 * time.Millisecond })
	id := submit(t, ts, file("a.png", pngOf(t, 8, 8, red)))
	waitFor(t, "the job to end", func() bool { _, v := jobOf(t, ts, id); return v.Status == StatusDone })
	_, br := rawGet(t, ts.URL, "/api/jobs/"+id+"/video")
	began := time.Now()
	var got int64
	for {
		n, err := io.CopyN(io.Discard, br, 128<<10)
		got += n
		if err != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got != size {
		t.Errorf("slow download got %d of %d bytes in %s", got, size, time.Since(began).Round(time.Millisecond))
	}
}

// Shutdown ends the uploads in progress at once, folders removed, instead
// of waiting on clients that may never finish.
func TestShutdownEndsUploadsInProgress(t *testing.T) {
	s, ts := start(t, &fakeConverter{}, nil)
	body, typ := multipartBody(t, file("a.png", pngOf(t, 64, 64, red)), file("b.png", pngOf(t, 64, 64, green)))
	all, _ := io.ReadAll(body)
	conn := rawUpload(t, ts.URL, typ, all, len(all)*2/3)
	waitFor(t, "the upload to start", func() bool { return s.disk.Load() > 0 })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	began := time.Now()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took > 2*time.Second {
		t.Errorf("Shutdown took %s with an upload in progress", took)
	}
	if entries := workEntries(t, s); len(entries) != 0 || s.disk.Load() != 0 {
		t.Errorf("after Shutdown the work folder holds %v, disk counter %d", entries, s.disk.Load())
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to the upload cut by Shutdown: %v", err)
	}
	data, _ := io.ReadAll(resp.Body)
	if e := errorOf(t, data); resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(e.Error, "shutting down") {
		t.Errorf("upload cut by Shutdown = %d %+v, want 503 shutting down", resp.StatusCode, e)
	}
}

// A new server removes the job folders an earlier process left (it crashed
// or was killed), and nothing else in its work folder.
func TestStartRemovesLeftoverJobFolders(t *testing.T) {
	work := filepath.Join(t.TempDir(), "jobs")
	left := filepath.Join(work, newID())
	keep := []string{filepath.Join(work, "notes.txt"), filepath.Join(work, "mine", "a.txt"), filepath.Join(work, "0123")}
	for _, p := range append(keep, filepath.Join(left, "000001.png"), filepath.Join(left, "video.mp4")) {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	start(t, &fakeConverter{}, func(c *testbed) { c.WorkDir = work })
	if _, err := os.Stat(left); !os.IsNotExist(err) {
		t.Errorf("the leftover job folder is still there (%v)", err)
	}
	for _, p := range keep {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s, not a job folder, was touched: %v", p, err)
		}
	}
}
