package server

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/img2vid/img2vid"
	"github.com/img2vid/img2vid/jobs"
)

// replicas starts n API replicas (no worker: their jobs stay queued) over
// one JetStream server, each with its own connection and job system, as
// replicas on separate machines are.
func replicas(t *testing.T, n, queue int, lim img2vid.Limits) []*Server {
	t.Helper()
	root := t.TempDir()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: filepath.Join(root, "js"), NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS server not ready")
	}
	t.Cleanup(ns.Shutdown)
	var out []*Server
	for i := range n {
		nc, err := nats.Connect(ns.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		sys, err := jobs.Open(ctx, nc, jobs.Config{Queue: queue})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(sys.Close)
		s, err := New(Config{Jobs: sys, Catalog: fakeCatalog{}, WorkDir: filepath.Join(root, fmt.Sprint("api", i)), Limits: lim, Registry: prometheus.NewRegistry()})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// uploadAll sends one upload per client address at once, spread over the
// replicas in turn, and counts those accepted; every other must be
// refused with want.
func uploadAll(t *testing.T, servers []*Server, clients []string, want int) int {
	t.Helper()
	var wg sync.WaitGroup
	codes := make([]int, len(clients))
	start := make(chan struct{})
	for i, addr := range clients {
		wg.Go(func() {
			<-start
			codes[i] = postFrom(t, servers[i%len(servers)], addr, nil).Code
		})
	}
	close(start)
	wg.Wait()
	accepted := 0
	for i, code := range codes {
		switch code {
		case http.StatusAccepted:
			accepted++
		case want:
		default:
			t.Errorf("upload %d from %s: %d, want 202 or %d", i+1, clients[i], code, want)
		}
	}
	return accepted
}

// Uploads that arrive at once, from one client or from many, on one
// replica or spread over two, are admitted up to the limit and no further:
// each takes its place in NATS before a byte of it is read.
func TestAdmissionHoldsUnderConcurrency(t *testing.T) {
	for _, n := range []int{1, 2} {
		t.Run(fmt.Sprintf("jobs per client on %d replicas", n), func(t *testing.T) {
			lim := img2vid.DefaultLimits()
			lim.JobsPerClient = 4
			servers := replicas(t, n, 100, lim)
			clients := make([]string, 8)
			for i := range clients {
				clients[i] = fmt.Sprintf("192.0.2.1:%d", 40000+i)
			}
			if got := uploadAll(t, servers, clients, http.StatusTooManyRequests); got != 4 {
				t.Errorf("%d of 8 uploads from one client admitted, want max_jobs_per_client=4", got)
			}
		})
		t.Run(fmt.Sprintf("queue on %d replicas", n), func(t *testing.T) {
			servers := replicas(t, n, 8, img2vid.DefaultLimits())
			clients := make([]string, 16)
			for i := range clients {
				clients[i] = fmt.Sprintf("198.51.100.%d:40000", i+1)
			}
			if got := uploadAll(t, servers, clients, http.StatusServiceUnavailable); got != 8 {
				t.Errorf("%d of 16 uploads from 16 clients admitted, want the queue's 8", got)
			}
		})
	}
}

// The disk budget holds over replicas too: each counts what the uploads
// arriving on the others may add, not only its own.
func TestDiskBudgetHoldsOverReplicas(t *testing.T) {
	img := noisePNG(t, 400, 400)
	lim := img2vid.DefaultLimits()
	lim.DiskMB = int64(3*len(img)+len(img)/2) >> 20
	if lim.DiskMB < 2 {
		t.Fatalf("the image is too small for the budget to count: %d bytes", len(img))
	}
	servers := replicas(t, 2, 100, lim)
	var wg sync.WaitGroup
	codes := make([]int, 8)
	start := make(chan struct{})
	for i := range codes {
		wg.Go(func() {
			<-start
			body, typ := multipartBody(t, file("a.png", img))
			req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1/api/jobs", body)
			req.RemoteAddr = fmt.Sprintf("203.0.113.%d:1000", i+1)
			req.Header.Set("Content-Type", typ)
			rec := httptest.NewRecorder()
			servers[i%2].Handler().ServeHTTP(rec, req)
			codes[i] = rec.Code
		})
	}
	close(start)
	wg.Wait()
	budget := lim.DiskBytes()
	accepted := 0
	for _, c := range codes {
		if c == http.StatusAccepted {
			accepted++
		}
	}
	if want := int(budget) / len(img); accepted > want || accepted == 0 {
		t.Errorf("%d of 8 uploads of %d bytes admitted under a %d-byte budget over two replicas (codes %v), want at most %d", accepted, len(img), budget, codes, want)
	}
}

// noisePNG is a w x h PNG of random pixels: as large as a PNG of that size
// gets.
func noisePNG(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	r := rand.New(rand.NewPCG(1, 2))
	for i := range img.Pix {
		img.Pix[i] = byte(r.Uint32())
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
