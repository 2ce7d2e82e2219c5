package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/img2vid/img2vid/internal/testimage"
)

// hostGet sends GET /healthz to base with the given Host header and
// returns the status and the body.
func hostGet(t *testing.T, base, host string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+"/healthz", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// checkHosts fails t for each Host of want that base does not answer with
// its status, and for a refusal that does not say how to serve the name.
func checkHosts(t *testing.T, what, base string, want map[string]int) {
	t.Helper()
	for host, code := range want {
		got, body := hostGet(t, base, host)
		if got != code {
			t.Errorf("%s: Host %q = %d, want %d", what, host, got, code)
		}
		if got == http.StatusForbidden && !strings.Contains(body, "IMG2VID_ALLOWED_HOSTS") {
			t.Errorf("%s: the refusal of Host %q does not say how to serve it: %s", what, host, body)
		}
	}
}

// Listening on loopback (the default), the server answers IP addresses and
// localhost, so a site that points its own name at 127.0.0.1 (DNS
// rebinding) gets nothing; --allowed-hosts adds names.
func TestServeOnLoopbackAnswersLoopbackHostsOnly(t *testing.T) {
	_, base := startServe(t)
	port := base[strings.LastIndex(base, ":"):]
	checkHosts(t, "on loopback", base, map[string]int{"localhost" + port: 200, "127.0.0.1" + port: 200, "evil.example" + port: 403, "img.example": 403})
	_, base = startServe(t, "--allowed-hosts", "img.example, other.example")
	checkHosts(t, "with --allowed-hosts", base, map[string]int{"img.example": 200, "other.example": 200, "localhost": 200, "evil.example": 403})
}

// Listening on every address, as the container does (SERVER_NAME=0.0.0.0)
// with no names given, the server still refuses DNS names, which is what
// DNS rebinding needs, and answers IP addresses and localhost, which is
// how `docker run -p 8080:8080` is reached; --allowed-hosts '*' serves any
// Host, for a proxy that rewrites it.
func TestServeOnEveryAddressRefusesDNSNames(t *testing.T) {
	_, base := startServe(t, "--host", "0.0.0.0")
	port := base[strings.LastIndex(base, ":"):]
	checkHosts(t, "on 0.0.0.0", base, map[string]int{
		"rebind.evil.example" + port: 403, "rebind.evil.example": 403, "127.0.0.1.nip.io": 403,
		"127.0.0.1" + port: 200, "192.0.2.4" + port: 200, "[::1]" + port: 200, "[2001:db8::4]": 200, "localhost" + port: 200,
	})
	_, base = startServe(t, "--host", "0.0.0.0", "--allowed-hosts", "*")
	checkHosts(t, "on 0.0.0.0 with --allowed-hosts '*'", base, map[string]int{"rebind.evil.example": 200, "192.0.2.4": 200})
}

// A worker serves no API, but its /metrics need the API token as the
// API's do; its probes stay open for the orchestrator.
func TestWorkerMetricsNeedTheToken(t *testing.T) {
	ready := func(context.Context) error { return nil }
	for _, token := range []string{"", "s3cret"} {
		h, err := probeHandler(prometheus.NewRegistry(), ready, token, nil)
		if err != nil {
			t.Fatal(err)
		}
		ts := httptest.NewServer(h)
		for _, tt := range []struct {
			path, auth string
			want       int
		}{
			{"/metrics", "", 401},
			{"/metrics", "Bearer s3cre", 401},
			{"/metrics", "Basic s3cret", 401},
			{"/metrics", "Bearer s3cret", 200},
			{"/metrics", "bearer s3cret", 200},
			{"/healthz", "", 200},
			{"/readyz", "", 200},
		} {
			want := tt.want
			if token == "" {
				want = 200
			}
			req, err := http.NewRequest(http.MethodGet, ts.URL+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			switch {
			case resp.StatusCode != want:
				t.Errorf("token %q: GET %s with Authorization %q = %d, want %d", token, tt.path, tt.auth, resp.StatusCode, want)
			case want == 401 && (resp.Header.Get("WWW-Authenticate") == "" || !strings.Contains(string(body), `"code":"unauthorized"`)):
				t.Errorf("token %q: the refusal of %s is not the API's: %s %q", token, tt.path, resp.Header, body)
			case want == 200 && tt.path == "/metrics" && !strings.Contains(string(body), "go_goroutines"):
				t.Errorf("token %q: /metrics with the token has no Go series:\n%s", token, body)
			}
		}
		ts.Close()
	}
}

// On start the server removes the upload folders a killed process left; on
// SIGTERM it ends the uploads in progress and removes their folders, so
// nothing but the job store is left in the work folder after it exits.
func TestServeLeavesNoJobFolders(t *testing.T) {
	work := t.TempDir()
	uploads := filepath.Join(work, "uploads")
	leftover := filepath.Join(uploads, "0123456789abcdef0123456789abcdef")
	if err := os.MkdirAll(leftover, 0o700); err != nil {
		t.Fatal(err)
	}
	testimage.Write(t, filepath.Join(leftover, "000001.jpg"), []byte("left by a killed server"))
	cmd, base := startServe(t, "--work-dir", work)
	if _, err := os.Stat(leftover); !os.IsNotExist(err) {
		t.Errorf("the leftover job folder is still there after start (%v)", err)
	}

	// An upload that sends part of its body, then waits.
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	w, _ := mw.CreateFormFile("files", "a.png")
	w.Write(testimage.PNG(t, testimage.Noise(64, 64, 1)))
	w, _ = mw.CreateFormFile("files", "b.png")
	w.Write(testimage.PNG(t, testimage.Noise(64, 64, 1)))
	mw.Close()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /api/jobs HTTP/1.1\r\nHost: localhost\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n", mw.FormDataContentType(), body.Len())
	conn.Write(body.Bytes()[:body.Len()*2/3])
	deadline := time.Now().Add(10 * time.Second)
	for entries, _ := os.ReadDir(uploads); len(entries) == 0; entries, _ = os.ReadDir(uploads) {
		if time.Now().After(deadline) {
			t.Fatal("the upload never made its folder")
		}
		time.Sleep(20 * time.Millisecond)
	}

	terminate(t, cmd, "serve with an upload in progress")
	for _, dir := range []string{uploads, filepath.Join(work, "worker")} {
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("after SIGTERM %s holds %v", dir, entries)
		}
	}
}
