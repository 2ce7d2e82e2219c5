package server

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/img2vid/img2vid"
	"github.com/img2vid/img2vid/jobs"
)

// counts returns the streams client has open and those open in all.
func (n *streamCount) counts(client string) (mine, total int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.byClient[client], n.total
}

func TestStreamCount(t *testing.T) {
	for _, tt := range []struct {
		name      string
		perClient int
		total     int
		clients   []string // one stream each, in order
		refused   string   // the limit the last stream is refused by; "" if it opens
	}{
		{"within both", 2, 3, []string{"a", "a", "b"}, ""},
		{"client's cap", 2, 0, []string{"a", "a", "a"}, img2vid.LimitStreamsPerClient},
		{"another client is not held back", 2, 0, []string{"a", "a", "b"}, ""},
		{"server's cap", 0, 3, []string{"a", "b", "c", "d"}, img2vid.LimitStreams},
		{"zero is no limit", 0, 0, []string{"a", "a", "a", "a", "a"}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var n streamCount
			lim := img2vid.Limits{StreamsPerClient: tt.perClient, Streams: tt.total}
			var closers []func()
			var err error
			for _, c := range tt.clients {
				var closed func()
				if closed, err = n.open(c, lim); err == nil {
					closers = append(closers, closed)
				}
			}
			if got := img2vid.ErrorLimit(err); got != tt.refused || err != nil && img2vid.ErrorCode(err) != ETOOMANYSTREAMS {
				t.Fatalf("last stream: %v (limit %q), want refused by %q", err, got, tt.refused)
			}
			for _, closed := range closers {
				closed()
			}
			if mine, total := n.counts("a"); mine != 0 || total != 0 || len(n.byClient) != 0 {
				t.Errorf("after every stream closed: client a %d, total %d, %d clients counted", mine, total, len(n.byClient))
			}
		})
	}
}

// stream is an open event stream.
type stream struct {
	resp *http.Response
	r    *bufio.Reader
}

// openStream opens the events of job id as client (the address a trusted
// proxy forwards) and returns the answer; a stream that opens has sent
// its first event.
func openStream(t *testing.T, hc *http.Client, url, client string) (*http.Response, *stream) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Error(err) // not Fatal: streams open from many goroutines
		return nil, nil
	}
	req.Header.Set("X-Forwarded-For", client)
	resp, err := hc.Do(req)
	if err != nil {
		t.Error(err)
		return nil, nil
	}
	if resp.StatusCode != http.StatusOK {
		return resp, nil
	}
	st := &stream{resp: resp, r: bufio.NewReader(resp.Body)}
	if name, _ := st.next(); name != "progress" {
		t.Errorf("first event %q, want progress", name)
	}
	return resp, st
}

// next reads the stream's next event; io.EOF once it has ended.
func (st *stream) next() (string, error) {
	var name string
	for {
		line, err := st.r.ReadString('\n')
		if err != nil {
			return "", err
		}
		switch line = strings.TrimSuffix(line, "\n"); {
		case strings.HasPrefix(line, "event: "):
			name = strings.TrimPrefix(line, "event: ")
		case line == "" && name != "":
			return name, nil
		}
	}
}

// last reads the stream to its end and returns the last event's name.
func (st *stream) last() string {
	defer st.resp.Body.Close()
	var last string
	for {
		name, err := st.next()
		if err != nil {
			return last
		}
		last = name
	}
}

// One client opens 300 event streams on one job at once, as a review did:
// exactly max_streams_per_client open, the rest are refused with 429, and
// another client still gets its stream and its /healthz.
func TestEventStreamsPerClientCapped(t *testing.T) {
	conv := &fakeConverter{block: true, release: make(chan struct{}), started: make(chan string, 1)}
	s, ts := start(t, conv, func(c *testbed) {
		c.RetryAfter = 3 * time.Second
		c.TrustedProxies = []string{"127.0.0.1"} // so that two clients can come from one test
	})
	defer close(conv.release)
	id := submit(t, ts, file("a.png", pngOf(t, 8, 8, red)))
	<-conv.started // running: its streams stay open
	url := ts.URL + "/api/jobs/" + id + "/events"
	capped := img2vid.DefaultLimits().StreamsPerClient
	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()

	const a, b, tries = "192.0.2.1", "198.51.100.1", 300
	var mu sync.Mutex
	var open []*stream
	refused := map[string]int{} // by what the refusal said
	var wg sync.WaitGroup
	for range tries {
		wg.Go(func() {
			resp, st := openStream(t, hc, url, a)
			if resp == nil {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if st != nil {
				open = append(open, st)
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var e ErrorBody
			json.Unmarshal(body, &e)
			refused[strings.Join([]string{resp.Status, resp.Header.Get("Retry-After"), e.Code, e.Limit, e.Error}, " | ")]++
		})
	}
	wg.Wait()
	want := strings.Join([]string{"429 Too Many Requests", "3", ETOOMANYSTREAMS, img2vid.LimitStreamsPerClient,
		"this client already has 16 event streams open; the limit is max_streams_per_client=16"}, " | ")
	if len(open) != capped || len(refused) != 1 || refused[want] != tries-capped {
		t.Fatalf("%d streams from one client: %d open, refusals %v; want %d open and %d times %q",
			tries, len(open), refused, capped, tries-capped, want)
	}
	if mine, total := s.streams.counts(a); mine != capped || total != capped {
		t.Errorf("the server counts %d streams of the client, %d in all, want %d", mine, total, capped)
	}

	// Another client is served: its stream and its health check.
	if resp, st := openStream(t, hc, url, b); st == nil {
		t.Errorf("another client's stream: %v, want it open", resp.Status)
	} else {
		open = append(open, st)
	}
	if resp, body := do(t, mustRequest(t, http.MethodGet, ts.URL+"/healthz", nil)); resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz while one client holds its streams: %d %s", resp.StatusCode, body)
	}

	// A stream that ends gives its slot back.
	for _, st := range open {
		st.resp.Body.Close()
	}
	waitFor(t, "the closed streams to be counted off", func() bool { _, total := s.streams.counts(a); return total == 0 })
	if resp, st := openStream(t, hc, url, a); st == nil {
		t.Errorf("a stream after the others closed: %v, want it open", resp.Status)
	} else {
		st.resp.Body.Close()
	}
}

// pacedConverter waits for proceed, then reports one frame of progress
// every gap, so that its job's state changes steps times while it runs.
type pacedConverter struct {
	steps   int
	gap     time.Duration
	started chan struct{}
	proceed chan struct{}
}

func (p *pacedConverter) Run(ctx context.Context, plan img2vid.Plan, inputs []string, output string, _ int64,
	progress func(img2vid.Progress)) (img2vid.Result, error) {
	p.started <- struct{}{}
	select {
	case <-p.proceed:
	case <-ctx.Done():
		return img2vid.Result{}, ctx.Err()
	}
	for i := range p.steps {
		select {
		case <-time.After(p.gap):
		case <-ctx.Done():
			return img2vid.Result{}, ctx.Err()
		}
		progress(img2vid.Progress{Stage: img2vid.StageEncode, Done: i + 1, Total: p.steps})
	}
	if err := os.WriteFile(output, []byte("video"), 0o600); err != nil {
		return img2vid.Result{}, err
	}
	fps := plan.Options.OutputFPS()
	return img2vid.Result{Output: output, Format: plan.Options.Format, Width: 8, Height: 8, Inputs: len(inputs),
		Frames: p.steps, FPS: fps, Duration: float64(p.steps) / fps}, nil
}

// startOnConn is start over a job system whose NATS connection the test
// holds, to count the messages that go through it.
func startOnConn(t *testing.T, conv jobs.Converter, edit func(*testbed)) (*httptest.Server, *nats.Conn) {
	t.Helper()
	root := t.TempDir()
	tb := testbed{Config: Config{WorkDir: filepath.Join(root, "uploads"), Limits: img2vid.DefaultLimits()}}
	if edit != nil {
		edit(&tb)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	emb, err := jobs.StartEmbedded(filepath.Join(root, "jetstream"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emb.Close)
	sys, err := jobs.Open(ctx, emb.Conn, jobs.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sys.Close)
	w, err := sys.StartWorker(jobs.WorkerConfig{Converter: conv, Dir: filepath.Join(root, "worker"), Limits: tb.Limits})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := w.Stop(ctx); err != nil {
			t.Errorf("stopping the worker: %v", err)
		}
	})
	tb.Jobs = sys
	s, err := New(tb.Config)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return ts, emb.Conn
}

// The streams of one job share its reads: 50 streams following a job
// through its progress cost about the NATS messages one stream costs,
// where each used to read the job again on every change (a review counted
// 4,384 messages for one 30-frame job followed 1000 times, against 382).
func TestEventStreamsOfAJobShareItsReads(t *testing.T) {
	conv := &pacedConverter{steps: 6, gap: 300 * time.Millisecond, started: make(chan struct{}), proceed: make(chan struct{})}
	ts, nc := startOnConn(t, conv, func(c *testbed) {
		c.Limits.StreamsPerClient = 0
		c.TrustedProxies = []string{"127.0.0.1"}
	})
	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	messages := func() uint64 { st := nc.Stats(); return st.InMsgs + st.OutMsgs }
	// follow runs a job followed by n streams, which open before it makes
	// progress, and returns the messages from its first step to its end.
	follow := func(n int) uint64 {
		id := submit(t, ts, file("a.png", pngOf(t, 8, 8, red)))
		<-conv.started
		var open []*stream
		for i := range n {
			if resp, st := openStream(t, hc, ts.URL+"/api/jobs/"+id+"/events", "192.0.2.1"); st == nil {
				t.Fatalf("stream %d: %v", i, resp.Status)
			} else {
				open = append(open, st)
			}
		}
		before := messages()
		conv.proceed <- struct{}{}
		var wg sync.WaitGroup
		for _, st := range open {
			wg.Go(func() {
				if last := st.last(); last != StatusDone {
					t.Errorf("a stream ended with %q, want done", last)
				}
			})
		}
		wg.Wait()
		return messages() - before
	}
	const n = 50
	one := follow(1)
	many := follow(n)
	t.Logf("NATS messages over a job's progress: %d with one stream, %d with %d", one, many, n)
	if many > one+one/4+10 {
		t.Errorf("%d streams on a job cost %d NATS messages over its progress, one stream %d: want about the same", n, many, one)
	}
}
