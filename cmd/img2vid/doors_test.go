package main

import (
	"bytes"
	"fmt"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/img2vid/img2vid/internal/testimage"
)

func hostStatus(t *testing.T, base, host string) int {
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
	resp.Body.Close()
	return resp.StatusCode
}

// Listening on loopback (the default), the server answers only to loopback
// host names, so a site that points its own name at 127.0.0.1 (DNS
// rebinding) gets nothing; --allowed-hosts adds names.
func TestServeOnLoopbackAnswersLoopbackHostsOnly(t *testing.T) {
	_, base := startServe(t)
	port := base[strings.LastIndex(base, ":"):]
	for host, want := range map[string]int{"localhost" + port: 200, "127.0.0.1" + port: 200, "evil.example" + port: 403, "img.example": 403} {
		if got := hostStatus(t, base, host); got != want {
			t.Errorf("Host %q = %d, want %d", host, got, want)
		}
	}
	_, base = startServe(t, "--allowed-hosts", "img.example, other.example")
	for host, want := range map[string]int{"img.example": 200, "other.example": 200, "localhost": 200, "evil.example": 403} {
		if got := hostStatus(t, base, host); got != want {
			t.Errorf("with --allowed-hosts, Host %q = %d, want %d", host, got, want)
		}
	}
}

func TestServedHosts(t *testing.T) {
	loop := []string{"localhost", "127.0.0.1", "::1"}
	for _, tt := range []struct {
		listen string
		named  []string
		want   []string
	}{
		{"127.0.0.1", nil, loop},
		{"::1", nil, loop},
		{"localhost", []string{"a.example"}, append(loop, "a.example")},
		{"0.0.0.0", nil, nil},
		{"192.0.2.4", []string{"a.example"}, append(loop, "a.example")},
	} {
		if got := servedHosts(tt.listen, tt.named); !slices.Equal(got, tt.want) {
			t.Errorf("servedHosts(%q, %q) = %q, want %q", tt.listen, tt.named, got, tt.want)
		}
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
