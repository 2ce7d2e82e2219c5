package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/img2vid/img2vid"
	"github.com/img2vid/img2vid/annotate"
	"github.com/img2vid/img2vid/jobs"
)

// fakeConverter stands in for the pipeline: it records what it was given,
// reports progress per input and writes a small file as the video. With
// block set it waits for release or for its context.
type fakeConverter struct {
	mu      sync.Mutex
	inputs  [][]string
	opts    []img2vid.Options
	plans   []img2vid.Plan
	block   bool
	release chan struct{}
	started chan string // receives each job's output path as it starts
	panics  bool
	err     error
	// badInput fails the job the way the pipeline does on a damaged
	// file: naming the stored file.
	badInput bool
	// videoBytes is the size of the video written (default 5000).
	videoBytes int
}

func (f *fakeConverter) Run(ctx context.Context, plan img2vid.Plan, inputs []string, output string, _ int64,
	progress func(img2vid.Progress)) (img2vid.Result, error) {
	opts := plan.Options
	f.mu.Lock()
	f.inputs = append(f.inputs, inputs)
	f.opts = append(f.opts, opts)
	f.plans = append(f.plans, plan)
	f.mu.Unlock()
	if f.started != nil {
		f.started <- output
	}
	if f.panics {
		panic("converter exploded")
	}
	if f.block {
		select {
		case <-ctx.Done():
			return img2vid.Result{}, ctx.Err()
		case <-f.release:
		}
	}
	if f.badInput {
		return img2vid.Result{}, img2vid.Errorf(img2vid.EINVALID, "%s: cannot decode jpeg: unexpected EOF", filepath.Base(inputs[0]))
	}
	if f.err != nil {
		return img2vid.Result{}, f.err
	}
	for i := range inputs {
		progress(img2vid.Progress{Stage: img2vid.StageEncode, Done: i + 1, Total: len(inputs)})
	}
	if err := os.WriteFile(output, bytes.Repeat([]byte("video"), max(f.videoBytes, 5000)/5), 0o600); err != nil {
		return img2vid.Result{}, err
	}
	res := img2vid.Result{Output: output, Format: opts.Format, Width: 8, Height: 8, Inputs: len(inputs),
		Frames: len(inputs), FPS: opts.OutputFPS(), Duration: float64(len(inputs)) / opts.OutputFPS()}
	if opts.DetectModel != "" {
		// One fish per frame, moving right.
		l, err := annotate.NewLog(opts.Detections)
		if err != nil {
			return img2vid.Result{}, err
		}
		for i := range inputs {
			l.Frame(i, float64(i)/res.FPS, []img2vid.Detection{{Class: "fish", Score: 0.5, Box: [4]float64{float64(i), 1, float64(i) + 2.5, 3}}}, false)
		}
		if err := l.Commit(); err != nil {
			return img2vid.Result{}, err
		}
		res.Detections = l.Summary(opts.DetectModel)
	}
	return res, nil
}

// fakeCatalog lists a frame model, two interpolators (one the default), a
// detector and broken models.
type fakeCatalog struct{ panics bool }

func (f fakeCatalog) ListModels() []img2vid.ModelInfo {
	if f.panics {
		panic("catalogue exploded")
	}
	return []img2vid.ModelInfo{
		{Name: "sr2x", Kind: img2vid.KindFrame, Scale: 2, Available: true},
		{Name: "flow", Kind: img2vid.KindInterpolate, Available: true},
		{Name: img2vid.DefaultInterpModel, Kind: img2vid.KindInterpolate, Available: true},
		{Name: "boxes", Kind: img2vid.KindDetect, Available: true, Labels: []string{"fish", "crab"}},
		{Name: "broken", Kind: img2vid.KindFrame, Available: false, Reason: "sha256 does not match the manifest"},
		// A manifest that cannot be read has no kind.
		{Name: "garbled", Available: false, Reason: "garbled.json: unexpected end of JSON input"},
	}
}

func (fakeCatalog) Info() img2vid.RuntimeInfo {
	return img2vid.RuntimeInfo{Library: "/lib/libonnxruntime.so", Version: "1.24.3", Provider: "cpu"}
}

// testbed is a server's config plus the settings of the job system
// under it that a test may change.
type testbed struct {
	Config
	Workers int           // worker slots (default 1)
	Queue   int           // waiting jobs (default 8)
	TTL     time.Duration // how long finished jobs are kept (default 1h)
}

// start makes a server on a fresh work folder, over a job system on an
// embedded NATS server with one worker running conv; edit adjusts them.
// The worker's folder is beside the server's: workerDir(s).
func start(t *testing.T, conv jobs.Converter, edit func(*testbed)) (*Server, *httptest.Server) {
	t.Helper()
	root := t.TempDir()
	tb := testbed{Config: Config{Catalog: fakeCatalog{}, WorkDir: filepath.Join(root, "uploads"), Limits: img2vid.DefaultLimits(),
		Registry: prometheus.NewRegistry()}}
	if edit != nil {
		edit(&tb)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	local, err := jobs.StartLocal(ctx, root, jobs.Config{TTL: tb.TTL, Queue: tb.Queue},
		jobs.WorkerConfig{Converter: conv, Slots: tb.Workers, Limits: tb.Limits, Provider: func() string { return "cpu" }, Registerer: tb.Registry})
	if err != nil {
		t.Fatal(err)
	}
	if err := local.RegisterQueueMetrics(tb.Registry); err != nil {
		t.Fatal(err)
	}
	tb.Jobs = local
	s, err := New(tb.Config)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		ts.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := local.Stop(ctx); err != nil {
			t.Errorf("stopping the job system: %v", err)
		}
	})
	return s, ts
}

// workerDir is the folder where the test's worker runs jobs.
func workerDir(s *Server) string { return filepath.Join(filepath.Dir(s.cfg.WorkDir), "worker") }

// pngOf encodes a w x h image of one colour.
func pngOf(t *testing.T, w, h int, c color.Color) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < len(img.Pix); i += 4 {
		r, g, b, a := c.RGBA()
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = uint8(r>>8), uint8(g>>8), uint8(b>>8), uint8(a>>8)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// bombHeader is a PNG whose header claims w x h pixels and which has no
// image data: anything that trusted the header would allocate w*h*4 bytes.
func bombHeader(w, h uint32) []byte {
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 2 // 8-bit RGB
	chunk := append([]byte("IHDR"), ihdr...)
	out := []byte("\x89PNG\r\n\x1a\n")
	out = binary.BigEndian.AppendUint32(out, 13)
	out = append(out, chunk...)
	return binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(chunk))
}

// part is one multipart field: a file when name is set, else a value.
type part struct {
	field, name string
	data        []byte
}

func file(name string, data []byte) part { return part{field: "files", name: name, data: data} }
func field(k, v string) part             { return part{field: k, data: []byte(v)} }

// multipartBody encodes parts in order.
func multipartBody(t *testing.T, parts ...part) (io.Reader, string) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for _, p := range parts {
		var dst io.Writer
		var err error
		if p.name != "" {
			dst, err = w.CreateFormFile(p.field, p.name)
		} else {
			dst, err = w.CreateFormField(p.field)
		}
		if err == nil {
			_, err = dst.Write(p.data)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf, w.FormDataContentType()
}

// do sends a request and returns the response with its body read.
func do(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func get(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, req)
}

func post(t *testing.T, ts *httptest.Server, parts ...part) (*http.Response, []byte) {
	t.Helper()
	body, typ := multipartBody(t, parts...)
	req, err := http.NewRequest(http.MethodPost, ts.URL+"/api/jobs", body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", typ)
	return do(t, req)
}

// submit posts parts and returns the new job's id, failing unless 202.
func submit(t *testing.T, ts *httptest.Server, parts ...part) string {
	t.Helper()
	resp, body := post(t, ts, parts...)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /api/jobs: %d %s", resp.StatusCode, body)
	}
	var v struct{ ID string }
	if err := json.Unmarshal(body, &v); err != nil || !validID(v.ID) {
		t.Fatalf("POST /api/jobs answered %s (%v), want an id of 32 hex digits", body, err)
	}
	return v.ID
}

// errorOf decodes an error body, failing if it is not one.
func errorOf(t *testing.T, body []byte) ErrorBody {
	t.Helper()
	var e ErrorBody
	if err := json.Unmarshal(body, &e); err != nil || e.Error == "" || e.Code == "" {
		t.Fatalf("want a JSON error body, got %q (%v)", body, err)
	}
	return e
}

// jobOf fetches a job's JSON.
func jobOf(t *testing.T, ts *httptest.Server, id string) (int, JobView) {
	t.Helper()
	resp, body := get(t, ts.URL+"/api/jobs/"+id)
	var v JobView
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, &v); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode, v
}

// waitFor polls cond until it holds or a few seconds pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// event is one server-sent event.
type event struct {
	name string
	job  JobView
}

// readEvents reads a job's event stream to its end.
func readEvents(t *testing.T, url string) []event {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var out []event
	var name string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			var v JobView
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &v); err != nil {
				t.Fatalf("event data: %v", err)
			}
			out = append(out, event{name, v})
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

var red, green, blue = color.NRGBA{255, 0, 0, 255}, color.NRGBA{0, 255, 0, 255}, color.NRGBA{0, 0, 255, 255}

func TestJobRunsToDoneAndServesVideo(t *testing.T) {
	conv := &fakeConverter{}
	_, ts := start(t, conv, nil)
	id := submit(t, ts, field("fps", "2"), file("a.png", pngOf(t, 8, 8, red)), file("b.png", pngOf(t, 8, 8, green)),
		file("c.png", pngOf(t, 8, 8, blue)))

	events := readEvents(t, ts.URL+"/api/jobs/"+id+"/events")
	last := events[len(events)-1]
	if last.name != StatusDone || last.job.Status != StatusDone || last.job.Result == nil || last.job.Result.Frames != 3 {
		t.Fatalf("last event = %+v, want done with 3 frames", last)
	}
	for _, e := range events[:len(events)-1] {
		if e.name != "progress" {
			t.Errorf("event before the last is %q, want progress", e.name)
		}
	}
	if conv.opts[0].FPS != 2 || conv.opts[0].Format != img2vid.FormatMP4 {
		t.Errorf("converter got options %+v, want fps 2 and mp4", conv.opts[0])
	}

	code, v := jobOf(t, ts, id)
	if code != http.StatusOK || v.Status != StatusDone || v.Video != "/api/jobs/"+id+"/video" || v.ExpiresAt == nil {
		t.Fatalf("GET job = %d %+v", code, v)
	}
	resp, body := get(t, ts.URL+v.Video)
	if resp.StatusCode != http.StatusOK || len(body) != 5000 || resp.Header.Get("Content-Type") != "video/mp4" {
		t.Fatalf("video: %d, %d bytes, %s", resp.StatusCode, len(body), resp.Header.Get("Content-Type"))
	}
	req, _ := http.NewRequest(http.MethodGet, ts.URL+v.Video, nil)
	req.Header.Set("Range", "bytes=100-199")
	resp, body = do(t, req)
	if resp.StatusCode != http.StatusPartialContent || len(body) != 100 {
		t.Fatalf("range: %d with %d bytes, want 206 with 100", resp.StatusCode, len(body))
	}
	resp, _ = get(t, ts.URL+v.Video+"?download=1")
	if cd := resp.Header.Get("Content-Disposition"); cd != `attachment; filename="a.mp4"` {
		t.Errorf("download Content-Disposition = %q, want the first file's name", cd)
	}
	req, _ = http.NewRequest(http.MethodHead, ts.URL+v.Video, nil)
	resp, body = do(t, req)
	if resp.StatusCode != http.StatusOK || len(body) != 0 || resp.Header.Get("Content-Length") != "5000" {
		t.Errorf("HEAD video: %d, %d bytes of body, Content-Length %q", resp.StatusCode, len(body), resp.Header.Get("Content-Length"))
	}
}

func TestHeadIsAnsweredWhereGetIs(t *testing.T) {
	_, ts := start(t, &fakeConverter{}, nil)
	id := submit(t, ts, file("a.png", pngOf(t, 8, 8, red)))
	for _, path := range []string{"/", "/assets/app.js", "/assets/style.css", "/healthz", "/readyz", "/api/models", "/api/options",
		"/api/openapi.json", "/metrics", "/api/jobs/" + id, "/api/jobs/" + id + "/events"} {
		req, _ := http.NewRequest(http.MethodHead, ts.URL+path, nil)
		resp, body := do(t, req)
		getResp, _ := get(t, ts.URL+path)
		if resp.StatusCode != http.StatusOK || len(body) != 0 || resp.Header.Get("Content-Type") != getResp.Header.Get("Content-Type") {
			t.Errorf("HEAD %s: %d, %d bytes, type %q (GET: %q)", path, resp.StatusCode, len(body), resp.Header.Get("Content-Type"), getResp.Header.Get("Content-Type"))
		}
	}
}

func TestOptionsDescribeTheOptionTable(t *testing.T) {
	_, ts := start(t, &fakeConverter{}, nil)
	resp, body := get(t, ts.URL+"/api/options")
	var v struct{ Options []OptionView }
	if err := json.Unmarshal(body, &v); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/options: %d %s (%v)", resp.StatusCode, body, err)
	}
	if len(v.Options) != len(img2vid.OptionTable) {
		t.Fatalf("%d options, the table has %d", len(v.Options), len(img2vid.OptionTable))
	}
	byName := map[string]OptionView{}
	for i, o := range v.Options {
		if o.Name != img2vid.OptionTable[i].Name || o.Usage == "" {
			t.Errorf("option %d: %+v", i, o)
		}
		byName[o.Name] = o
	}
	// Every default, sent back as a form, is what the server starts from.
	opts, err := img2vid.ParseOptions(func(name string) string { return byName[name].Default })
	if err != nil || opts != img2vid.DefaultOptions() {
		t.Errorf("the defaults parse into %+v (%v), want the default options", opts, err)
	}
	if fps := byName["fps"]; fps.Min == nil || *fps.Min != img2vid.MinFPS || *fps.Max != img2vid.MaxFPS || fps.Default != "5" {
		t.Errorf("fps: %+v", fps)
	}
	if p := byName["preset"]; len(p.Enum) != 9 || p.Default != "veryfast" {
		t.Errorf("preset: %+v", p)
	}
}

func TestDownloadName(t *testing.T) {
	for in, want := range map[string]string{
		"holiday_001.jpg": "holiday_001", "../../etc/passwd.png": "passwd", `C:\pics\Beach Day.JPG`: "Beach_Day",
		"ünïcode.png": "ncode", ".hidden.png": "hidden", "é.png": "", `a"b;c.png`: "abc",
	} {
		if got := downloadName(in); got != want {
			t.Errorf("downloadName(%q) = %q, want %q", in, got, want)
		}
	}
}

// probeAudio stands in for ffmpeg: files holding "sound N" last N seconds,
// anything else is refused as the pipeline's prober refuses it.
func probeAudio(_ context.Context, path, label string) (float64, error) {
	b, _ := os.ReadFile(path)
	var n float64
	if _, err := fmt.Sscanf(string(b), "sound %g", &n); err != nil {
		return 0, img2vid.Errorf(img2vid.EINVALID, "%s is not audio that can be decoded (Invalid data)", label)
	}
	return n, nil
}

func TestSoundtrackUpload(t *testing.T) {
	conv := &fakeConverter{}
	_, ts := start(t, conv, func(c *testbed) {
		c.ProbeAudio = probeAudio
		c.Limits.Duration = time.Minute
		c.Limits.Frames = 100
	})
	img := pngOf(t, 8, 8, red)
	audio := func(name, data string) part { return part{field: "audio", name: name, data: []byte(data)} }
	id := submit(t, ts, file("a.png", img), audio("song.mp3", "sound 2.5"), field("audio_fit", "extend"))
	readEvents(t, ts.URL+"/api/jobs/"+id+"/events")
	if o := conv.opts[0]; filepath.Base(o.Audio) != "soundtrack.flac" || o.AudioFit != img2vid.AudioExtend {
		t.Errorf("converter got %+v, want the stored soundtrack with audio_fit=extend", o)
	} else if _, err := os.Stat(o.Audio); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the soundtrack outlives its job: %v", err)
	}
	for _, tc := range []struct {
		name   string
		parts  []part
		status int
		text   string
	}{
		{"garbage", []part{file("a.png", img), audio("notes.mp3", "hello")}, 400, `audio file "notes.mp3" is not audio that can be decoded`},
		{"gif", []part{file("a.png", img), audio("song.mp3", "sound 1"), field("format", "gif")}, 400, "GIF cannot carry a soundtrack"},
		{"too long", []part{file("a.png", img), audio("long.mp3", "sound 61")}, 413, `audio file "long.mp3" lasts 61 s; the limit is max_duration=1m0s`},
		{"extend past the frame limit", []part{file("a.png", img), audio("song.mp3", "sound 30"), field("audio_fit", "extend")}, 413, "the video would have 150 frames; the limit is max_frames=100"},
		{"two", []part{file("a.png", img), audio("a.mp3", "sound 1"), audio("b.mp3", "sound 1")}, 400, "at most one audio field"},
		{"empty", []part{file("a.png", img), audio("a.mp3", "")}, 400, `audio file "a.mp3" is empty`},
		{"bad fit", []part{file("a.png", img), field("audio_fit", "loop")}, 400, `audio_fit must be trim, extend or spread`},
	} {
		resp, body := post(t, ts, tc.parts...)
		var e ErrorBody
		json.Unmarshal(body, &e)
		if resp.StatusCode != tc.status || !strings.Contains(e.Error, tc.text) {
			t.Errorf("%s: %d %s, want %d with %q", tc.name, resp.StatusCode, body, tc.status, tc.text)
		}
	}

	_, plain := start(t, &fakeConverter{}, nil)
	if resp, body := post(t, plain, file("a.png", img), audio("song.mp3", "sound 1")); resp.StatusCode != 503 || !strings.Contains(string(body), "does not take a soundtrack") {
		t.Errorf("no prober: %d %s", resp.StatusCode, body)
	}
}

func TestUploadsKeepOrderAndNeverUseClientNames(t *testing.T) {
	conv := &fakeConverter{}
	s, ts := start(t, conv, nil)
	colors := []color.NRGBA{blue, red, green}
	names := []string{"../../etc/passwd.png", "/abs/frame_10.txt", strings.Repeat("é", 300) + ".png"}
	var parts []part
	for i, c := range colors {
		parts = append(parts, file(names[i], pngOf(t, 4, 4, c)))
	}
	id := submit(t, ts, parts...)
	readEvents(t, ts.URL+"/api/jobs/"+id+"/events")
	inputs := conv.inputs[0]
	if len(inputs) != 3 {
		t.Fatalf("converter got %d inputs, want 3", len(inputs))
	}
	for i, in := range inputs {
		if want := filepath.Join(workerDir(s), id, fmt.Sprintf("%06d.png", i+1)); in != want {
			t.Errorf("input %d stored as %s, want %s", i, in, want)
		}
	}
	// Once the job ends its folders are gone: the video is in the job store.
	for _, dir := range []string{s.cfg.WorkDir, workerDir(s)} {
		if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
			t.Errorf("%s holds %v (%v) after the job, want nothing", dir, entries, err)
		}
	}
}

func TestUploadOrderIsTheClients(t *testing.T) {
	started := make(chan string, 1)
	conv := &fakeConverter{block: true, release: make(chan struct{}), started: started}
	_, ts := start(t, conv, nil)
	defer close(conv.release)
	colors := []color.NRGBA{green, blue, red}
	var parts []part
	for i, c := range colors {
		parts = append(parts, file(fmt.Sprintf("frame_%d.png", 3-i), pngOf(t, 4, 4, c)))
	}
	submit(t, ts, parts...)
	<-started
	conv.mu.Lock()
	inputs := conv.inputs[0]
	conv.mu.Unlock()
	for i, in := range inputs {
		f, err := os.Open(in)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got := color.NRGBAModel.Convert(img.At(0, 0)); got != colors[i] {
			t.Errorf("input %d is %v, want %v: the server must keep the order the client sent", i, got, colors[i])
		}
	}
}

func TestRefusalsAreJSONErrorsNamingTheProblem(t *testing.T) {
	img := pngOf(t, 8, 8, red)
	_, ts := start(t, &fakeConverter{}, func(c *testbed) {
		c.Limits = img2vid.Limits{Files: 3, FileMB: 1, UploadMB: 2, Pixels: 10_000, Frames: 20, Duration: time.Minute}
	})
	tests := []struct {
		name   string
		parts  []part
		status int
		code   string
		says   string
	}{
		{"no files", []part{field("fps", "5")}, 400, img2vid.EINVALID, "no images"},
		{"fps zero", []part{field("fps", "0"), file("a.png", img)}, 400, img2vid.EINVALID, "fps"},
		{"fps NaN", []part{field("fps", "NaN"), file("a.png", img)}, 400, img2vid.EINVALID, "fps"},
		{"interpolate 1000", []part{field("interpolate", "1000"), file("a.png", img)}, 400, img2vid.EINVALID, "interpolate"},
		{"unknown field", []part{field("colour", "red"), file("a.png", img)}, 400, img2vid.EINVALID, `"colour"`},
		{"text named .jpg", []part{file("a.jpg", []byte("hello, not an image"))}, 400, img2vid.EINVALID, `file 1 ("a.jpg"): not a readable image`},
		{"zero bytes", []part{file("a.png", nil)}, 400, img2vid.EINVALID, "empty"},
		{"truncated png", []part{file("a.png", img[:20])}, 400, img2vid.EINVALID, "not a readable image"},
		{"unknown model", []part{field("frame_model", "nope"), file("a.png", img)}, 400, img2vid.EINVALID, `"nope"`},
		{"unavailable model", []part{field("frame_model", "broken"), file("a.png", img)}, 503, img2vid.EUNAVAILABLE, "sha256"},
		{"broken manifest", []part{field("interpolate", "2"), field("interp_model", "garbled"), file("a.png", img)}, 503, img2vid.EUNAVAILABLE, "unexpected end of JSON"},
		{"wrong kind of model", []part{field("frame_model", "flow"), file("a.png", img)}, 400, img2vid.EINVALID, "is a interpolate model"},
		{"fps too small to last", []part{field("fps", "1e-320"), file("a.png", img)}, 400, img2vid.EINVALID, "fps must be between"},
		{"too many files", []part{file("a.png", img), file("b.png", img), file("c.png", img), file("d.png", img)}, 413, img2vid.ETOOLARGE, "max_files=3"},
		{"file too big", []part{file("a.png", pngOf(t, 90, 90, color.NRGBA{1, 2, 3, 4})), file("b.png", bytes.Repeat([]byte{1}, 1<<20+1))}, 413, img2vid.ETOOLARGE, "max_file_mb=1"},
		{"bomb header", []part{file("bomb.png", bombHeader(50000, 50000))}, 413, img2vid.ETOOLARGE, "max_pixels=10000"},
		{"too many frames", []part{field("interpolate", "16"), file("a.png", img), file("b.png", img), file("c.png", img)}, 413, img2vid.ETOOLARGE, "max_frames=20"},
		{"too long", []part{field("fps", "0.01"), file("a.png", img), file("b.png", img)}, 413, img2vid.ETOOLARGE, "max_duration=1m0s"},
		{"slowest rate, too long", []part{field("fps", "0.001"), file("a.png", img)}, 413, img2vid.ETOOLARGE, "would last 1000 s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := post(t, ts, tt.parts...)
			e := errorOf(t, body)
			if resp.StatusCode != tt.status || e.Code != tt.code || !strings.Contains(e.Error, tt.says) {
				t.Fatalf("got %d %+v, want %d %s saying %q", resp.StatusCode, e, tt.status, tt.code, tt.says)
			}
		})
	}

	t.Run("upload too big", func(t *testing.T) {
		var parts []part
		for range 3 {
			parts = append(parts, file("a.png", bytes.Repeat([]byte{1}, 900<<10)))
		}
		resp, body := post(t, ts, parts...)
		if e := errorOf(t, body); resp.StatusCode != 413 || !strings.Contains(e.Error, "max_upload_mb=2") || e.Limit != img2vid.LimitUploadMB {
			t.Fatalf("got %d %+v", resp.StatusCode, e)
		}
	})
	t.Run("not multipart", func(t *testing.T) {
		resp, body := do(t, mustRequest(t, http.MethodPost, ts.URL+"/api/jobs", strings.NewReader(`{"files":[]}`)))
		if e := errorOf(t, body); resp.StatusCode != 400 || !strings.Contains(e.Error, "multipart") {
			t.Fatalf("got %d %+v", resp.StatusCode, e)
		}
	})
	for _, path := range []string{"/api/jobs/0123456789abcdef0123456789abcdef", "/api/jobs/..%2f..%2fetc", "/api/jobs/x/video", "/nope"} {
		resp, body := get(t, ts.URL+path)
		if e := errorOf(t, body); resp.StatusCode != 404 || e.Code != img2vid.ENOTFOUND {
			t.Errorf("GET %s = %d %+v, want 404 not_found", path, resp.StatusCode, e)
		}
	}
	resp, body := get(t, ts.URL+"/api/jobs")
	if e := errorOf(t, body); resp.StatusCode != http.StatusMethodNotAllowed || e.Code != EMETHOD {
		t.Errorf("GET /api/jobs = %d %+v, want 405: jobs are never listed", resp.StatusCode, e)
	}
}

func mustRequest(t *testing.T, method, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestRefusedUploadLeavesNothingBehind(t *testing.T) {
	s, ts := start(t, &fakeConverter{}, func(c *testbed) { c.Limits.Files = 1 })
	img := pngOf(t, 8, 8, red)
	post(t, ts, file("a.png", img), file("b.png", img))
	post(t, ts, file("a.png", []byte("nope")))
	entries, err := os.ReadDir(s.cfg.WorkDir)
	if err != nil || len(entries) != 0 {
		t.Fatalf("work folder holds %v (%v) after refused uploads, want nothing", entries, err)
	}
	if s.disk.Load() != 0 {
		t.Errorf("disk budget still counts %d bytes", s.disk.Load())
	}
}

func TestFullQueueAnswers503WithRetryAfter(t *testing.T) {
	conv := &fakeConverter{block: true, release: make(chan struct{}), started: make(chan string, 4)}
	_, ts := start(t, conv, func(c *testbed) { c.Workers, c.Queue, c.RetryAfter = 1, 1, 7*time.Second })
	img := pngOf(t, 8, 8, red)
	running := submit(t, ts, file("a.png", img))
	<-conv.started
	queued := submit(t, ts, file("a.png", img))
	resp, body := post(t, ts, file("a.png", img))
	e := errorOf(t, body)
	if resp.StatusCode != http.StatusServiceUnavailable || e.Code != img2vid.EBUSY || resp.Header.Get("Retry-After") != "7" ||
		!strings.Contains(e.Error, "queue=1") {
		t.Fatalf("third job: %d Retry-After %q %+v, want 503 busy naming queue=1 with Retry-After 7", resp.StatusCode, resp.Header.Get("Retry-After"), e)
	}
	if _, v := jobOf(t, ts, queued); v.Status != StatusQueued {
		t.Errorf("second job is %s, want queued", v.Status)
	}
	close(conv.release)
	for _, id := range []string{running, queued} {
		if ev := readEvents(t, ts.URL+"/api/jobs/"+id+"/events"); ev[len(ev)-1].name != StatusDone {
			t.Errorf("job %s ended %s, want done", id, ev[len(ev)-1].name)
		}
	}
}

func TestFinishedJobsExpireWithTheirFiles(t *testing.T) {
	s, ts := start(t, &fakeConverter{}, func(c *testbed) { c.TTL = 500 * time.Millisecond })
	id := submit(t, ts, file("a.png", pngOf(t, 8, 8, red)))
	waitFor(t, "the job to finish", func() bool { _, v := jobOf(t, ts, id); return v.Status == StatusDone })
	waitFor(t, "the job to expire", func() bool { code, _ := jobOf(t, ts, id); return code == http.StatusNotFound })
	// The images went when the job ended, the video with the TTL.
	waitFor(t, "the stored files to go", func() bool {
		n, err := s.cfg.Jobs.StoredBytes(context.Background())
		return err == nil && n == 0 && s.disk.Load() == 0
	})
}

func TestDeleteCancelsARunningJob(t *testing.T) {
	conv := &fakeConverter{block: true, release: make(chan struct{}), started: make(chan string, 1)}
	s, ts := start(t, conv, nil)
	id := submit(t, ts, file("a.png", pngOf(t, 8, 8, red)))
	<-conv.started
	stream, err := http.Get(ts.URL + "/api/jobs/" + id + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Body.Close()
	resp, _ := do(t, mustRequest(t, http.MethodDelete, ts.URL+"/api/jobs/"+id, nil))
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE = %d, want 204", resp.StatusCode)
	}
	if code, _ := jobOf(t, ts, id); code != http.StatusNotFound {
		t.Errorf("GET after DELETE = %d, want 404", code)
	}
	// The converter returns only when its context is canceled; the stream
	// ends with that outcome, then the folder goes.
	all, err := io.ReadAll(stream.Body)
	if err != nil || !strings.Contains(string(all), "event: canceled") {
		t.Fatalf("event stream ended with %q (%v), want a canceled event", all, err)
	}
	waitFor(t, "the job folder to go", func() bool {
		_, err := os.Stat(filepath.Join(workerDir(s), id))
		return errors.Is(err, os.ErrNotExist)
	})
}

func TestJobTimeLimitFailsTheJob(t *testing.T) {
	conv := &fakeConverter{block: true, release: make(chan struct{})}
	_, ts := start(t, conv, func(c *testbed) { c.Limits.JobTimeout = 50 * time.Millisecond })
	id := submit(t, ts, file("a.png", pngOf(t, 8, 8, red)))
	ev := readEvents(t, ts.URL+"/api/jobs/"+id+"/events")
	last := ev[len(ev)-1]
	if last.name != StatusFailed || last.job.Error == nil || !strings.Contains(last.job.Error.Error, "job_timeout=50ms") {
		t.Fatalf("last event %+v, want failed naming job_timeout", last)
	}
}

func TestFailuresShowOnlySafeMessages(t *testing.T) {
	tests := []struct {
		name string
		conv *fakeConverter
		want ErrorBody
	}{
		{"coded", &fakeConverter{err: img2vid.Errorf(img2vid.EINVALID, "images differ in size")},
			ErrorBody{Error: "images differ in size", Code: img2vid.EINVALID}},
		{"internal", &fakeConverter{err: fmt.Errorf("open /secret/path: permission denied")},
			ErrorBody{Error: "internal error", Code: img2vid.EINTERNAL}},
		{"panic", &fakeConverter{panics: true}, ErrorBody{Error: "internal error", Code: img2vid.EINTERNAL}},
		{"names the client's file", &fakeConverter{badInput: true},
			ErrorBody{Error: `file 1 ("a.png"): cannot decode jpeg: unexpected EOF`, Code: img2vid.EINVALID}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, ts := start(t, tt.conv, nil)
			id := submit(t, ts, file("a.png", pngOf(t, 8, 8, red)))
			ev := readEvents(t, ts.URL+"/api/jobs/"+id+"/events")
			if last := ev[len(ev)-1]; last.name != StatusFailed || last.job.Error == nil || *last.job.Error != tt.want {
				t.Fatalf("last event %+v, want failed with %+v", last, tt.want)
			}
			if resp, _ := get(t, ts.URL+"/api/jobs/"+id+"/video"); resp.StatusCode != http.StatusNotFound {
				t.Errorf("video of a failed job = %d, want 404", resp.StatusCode)
			}
			if resp, _ := get(t, ts.URL+"/healthz"); resp.StatusCode != http.StatusOK {
				t.Errorf("server stopped serving after a failed job: %d", resp.StatusCode)
			}
		})
	}
}

func TestHandlerPanicIsA500ForThatRequestOnly(t *testing.T) {
	_, ts := start(t, &fakeConverter{}, func(c *testbed) { c.Catalog = fakeCatalog{panics: true} })
	resp, body := get(t, ts.URL+"/api/models")
	if e := errorOf(t, body); resp.StatusCode != 500 || e != (ErrorBody{Error: "internal error", Code: img2vid.EINTERNAL}) {
		t.Fatalf("panicking handler = %d %+v, want 500 internal error", resp.StatusCode, e)
	}
	if resp, _ := get(t, ts.URL+"/healthz"); resp.StatusCode != http.StatusOK {
		t.Fatalf("server stopped serving after a panic: %d", resp.StatusCode)
	}
}

func TestTokenGuardsTheAPI(t *testing.T) {
	_, ts := start(t, &fakeConverter{}, func(c *testbed) { c.Token = "s3cret" })
	for _, path := range []string{"/api/models", "/api/openapi.json", "/metrics", "/api/jobs/0123456789abcdef0123456789abcdef"} {
		resp, body := get(t, ts.URL+path)
		if e := errorOf(t, body); resp.StatusCode != 401 || e.Code != EUNAUTHORIZED || resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("GET %s without token = %d %+v, want 401", path, resp.StatusCode, e)
		}
	}
	resp, _ := post(t, ts, file("a.png", pngOf(t, 8, 8, red)))
	if resp.StatusCode != 401 {
		t.Errorf("POST without token = %d, want 401", resp.StatusCode)
	}
	req := mustRequest(t, http.MethodGet, ts.URL+"/api/models", nil)
	req.Header.Set("Authorization", "Bearer wrong")
	if resp, _ := do(t, req); resp.StatusCode != 401 {
		t.Errorf("wrong token = %d, want 401", resp.StatusCode)
	}
	req.Header.Set("Authorization", "Bearer s3cret")
	if resp, _ := do(t, req); resp.StatusCode != 200 {
		t.Errorf("bearer token = %d, want 200", resp.StatusCode)
	}
	req = mustRequest(t, http.MethodGet, ts.URL+"/api/models", nil)
	req.AddCookie(&http.Cookie{Name: tokenCookie, Value: "s3cret"})
	if resp, _ := do(t, req); resp.StatusCode != 200 {
		t.Errorf("token cookie = %d, want 200", resp.StatusCode)
	}
	for _, path := range []string{"/", "/assets/app.js", "/healthz", "/readyz"} {
		if resp, _ := get(t, ts.URL+path); resp.StatusCode != 200 {
			t.Errorf("GET %s = %d, want 200 without a token", path, resp.StatusCode)
		}
	}
}

func TestPageHeadersAndNoInlineScript(t *testing.T) {
	_, ts := start(t, &fakeConverter{}, nil)
	resp, body := get(t, ts.URL+"/")
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("CSP = %q", csp)
	}
	if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("no nosniff header")
	}
	page := string(body)
	if !strings.Contains(page, "<title>Image to Video Converter</title>") {
		t.Errorf("page title missing")
	}
	// Every script is a file of our own, and no element carries an inline
	// handler: the CSP would block both.
	for _, tag := range strings.Split(page, "<script")[1:] {
		if !strings.HasPrefix(strings.TrimSpace(tag), `src="/assets/`) || !strings.Contains(tag, "></script>") {
			t.Errorf("inline or foreign script: <script%s", tag[:min(len(tag), 80)])
		}
	}
	for _, attr := range []string{" onclick=", " onload=", " onchange=", " onsubmit=", "javascript:", "http://", "https://"} {
		if strings.Contains(page, attr) {
			t.Errorf("page contains %q", attr)
		}
	}
	for _, asset := range []string{"app.js", "style.css"} {
		if resp, body := get(t, ts.URL+"/assets/"+asset); resp.StatusCode != 200 || len(body) == 0 {
			t.Errorf("asset %s = %d", asset, resp.StatusCode)
		}
	}
	for _, path := range []string{"/assets/", "/assets/web.go", "/assets/..%2fweb.go", "/assets/index.html"} {
		if resp, _ := get(t, ts.URL+path); resp.StatusCode != 404 {
			t.Errorf("GET %s = %d, want 404: nothing but the assets is served or listed", path, resp.StatusCode)
		}
	}
}

func TestModelsAndReadiness(t *testing.T) {
	var notReady error = img2vid.Errorf(img2vid.EUNAVAILABLE, "ffmpeg not found on PATH")
	_, ts := start(t, &fakeConverter{}, func(c *testbed) {
		c.Ready = func(context.Context) error { return notReady }
	})
	resp, body := get(t, ts.URL+"/api/models")
	var m ModelsView
	if err := json.Unmarshal(body, &m); err != nil || resp.StatusCode != 200 || len(m.Models) != 6 || m.Runtime.Provider != "cpu" || m.DefaultInterpModel != img2vid.DefaultInterpModel {
		t.Fatalf("models = %d %s", resp.StatusCode, body)
	}
	resp, body = get(t, ts.URL+"/readyz")
	if e := errorOf(t, body); resp.StatusCode != 503 || e.Code != img2vid.EUNAVAILABLE || !strings.Contains(e.Error, "ffmpeg") {
		t.Fatalf("readyz when not ready = %d %+v", resp.StatusCode, e)
	}
	notReady = errors.New("exec: permission denied on /secret/path")
	if resp, body = get(t, ts.URL+"/readyz"); resp.StatusCode != 503 || strings.Contains(string(body), "/secret/path") {
		t.Fatalf("readyz with an internal fault = %d %s, want 503 without the detail", resp.StatusCode, body)
	}
	notReady = nil
	if resp, body = get(t, ts.URL+"/readyz"); resp.StatusCode != 200 || !strings.Contains(string(body), `"provider":"cpu"`) {
		t.Fatalf("readyz when ready = %d %s", resp.StatusCode, body)
	}
}

func TestMetricsCountJobsAndFrames(t *testing.T) {
	_, ts := start(t, &fakeConverter{}, nil)
	img := pngOf(t, 8, 8, red)
	id := submit(t, ts, field("frame_model", "sr2x"), file("a.png", img), file("b.png", img))
	readEvents(t, ts.URL+"/api/jobs/"+id+"/events")
	wants := []string{
		`img2vid_jobs_total{outcome="done"} 1`,
		`img2vid_frames_processed_total 2`,
		`img2vid_queue_depth 0`,
		`img2vid_convert_duration_seconds_count{frame_model="sr2x",interp_model="none",provider="cpu"} 1`,
		`img2vid_job_duration_seconds_count{outcome="done"} 1`,
		`go_goroutines`,
	}
	// The worker counts a job once its end is recorded, which is also when
	// the event stream sees it end: the counts may land a moment after.
	var missing []string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		_, body := get(t, ts.URL+"/metrics")
		missing = missing[:0]
		for _, want := range wants {
			// Whole lines, or a name with any value: "} 1" must not match 12.
			if !strings.Contains("\n"+string(body), "\n"+want+"\n") && !strings.Contains(string(body), "\n"+want+" ") {
				missing = append(missing, want)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
	}
	for _, want := range missing {
		t.Errorf("metrics lack %s", want)
	}
}

func TestOpenAPIListsEveryRoute(t *testing.T) {
	s, _ := start(t, &fakeConverter{}, nil)
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil || !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi.json: %v (version %q)", err, doc.OpenAPI)
	}
	routes := s.router.Routes()
	if len(routes) < 10 {
		t.Fatalf("only %d routes registered", len(routes))
	}
	seen := map[string]bool{}
	for _, r := range routes {
		path := r.Path
		for _, seg := range strings.Split(path, "/") {
			if strings.HasPrefix(seg, ":") {
				path = strings.Replace(path, seg, "{"+seg[1:]+"}", 1)
			}
		}
		seen[path] = true
		if _, ok := doc.Paths[path][strings.ToLower(r.Method)]; !ok {
			t.Errorf("route %s %s is not in openapi.json", r.Method, path)
		}
	}
	for path := range doc.Paths {
		if !seen[path] {
			t.Errorf("openapi.json lists %s, which no route serves", path)
		}
	}
}

func TestShutdownRefusesUploads(t *testing.T) {
	s, ts := start(t, &fakeConverter{}, nil)
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	resp, body := post(t, ts, file("a.png", pngOf(t, 8, 8, red)))
	if e := errorOf(t, body); resp.StatusCode != 503 || !strings.Contains(e.Error, "shutting down") {
		t.Errorf("POST after shutdown = %d %+v", resp.StatusCode, e)
	}
	if entries, err := os.ReadDir(s.cfg.WorkDir); err != nil || len(entries) != 0 {
		t.Errorf("work folder holds %v (%v) after a refused upload", entries, err)
	}
}

func TestDisconnectMidUploadLeavesNothing(t *testing.T) {
	s, ts := start(t, &fakeConverter{}, nil)
	body, typ := multipartBody(t, file("a.png", pngOf(t, 64, 64, red)), file("b.png", pngOf(t, 64, 64, green)))
	all, _ := io.ReadAll(body)
	conn, err := net.Dial("tcp", strings.TrimPrefix(ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	// Promise the whole body, send two thirds of it, and hang up.
	fmt.Fprintf(conn, "POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n", typ, len(all))
	conn.Write(all[:len(all)*2/3])
	waitFor(t, "the upload to start", func() bool { return s.disk.Load() > 0 })
	conn.Close()
	waitFor(t, "the partial upload to be removed", func() bool {
		entries, err := os.ReadDir(s.cfg.WorkDir)
		return err == nil && len(entries) == 0 && s.disk.Load() == 0
	})
}

func TestDiskBudgetRefusesWithBusy(t *testing.T) {
	_, ts := start(t, &fakeConverter{}, func(c *testbed) { c.Limits.DiskMB = 1 })
	resp, body := post(t, ts, file("a.png", pngOf(t, 64, 64, color.NRGBA{10, 200, 30, 255})), file("b.png", bytes.Repeat([]byte{7}, 2<<20)))
	e := errorOf(t, body)
	if resp.StatusCode != 503 || e.Code != img2vid.EBUSY || !strings.Contains(e.Error, "max_disk_mb=1") || resp.Header.Get("Retry-After") == "" ||
		e.Limit != img2vid.LimitDiskMB {
		t.Fatalf("got %d %+v, want 503 busy naming max_disk_mb=1", resp.StatusCode, e)
	}
	_, metrics := get(t, ts.URL+"/metrics")
	if want := `img2vid_limit_refusals_total{limit="max_disk_mb"} 1`; !strings.Contains(string(metrics), want) {
		t.Errorf("metrics lack %s", want)
	}
}

// A job deleted while it waits in the queue leaves the queue and the job
// store at once, without waiting for a worker to reach it.
func TestDeletingAQueuedJobFreesItsPlace(t *testing.T) {
	conv := &fakeConverter{block: true, release: make(chan struct{}), started: make(chan string, 4)}
	s, ts := start(t, conv, func(c *testbed) { c.Workers, c.Queue = 1, 2 })
	img := pngOf(t, 64, 64, red)
	running := submit(t, ts, file("a.png", img))
	<-conv.started
	queued := submit(t, ts, file("a.png", img), file("b.png", img))
	ctx := context.Background()
	queue := s.cfg.Jobs.(*jobs.Local)
	if n, err := queue.Waiting(ctx); err != nil || n != 1 {
		t.Fatalf("waiting jobs = %d (%v), want 1", n, err)
	}
	for _, id := range []string{queued, running} {
		if resp, _ := do(t, mustRequest(t, http.MethodDelete, ts.URL+"/api/jobs/"+id, nil)); resp.StatusCode != http.StatusNoContent {
			t.Fatalf("DELETE %s = %d", id, resp.StatusCode)
		}
	}
	if n, err := queue.Waiting(ctx); err != nil || n != 0 {
		t.Errorf("waiting jobs after DELETE = %d (%v), want 0", n, err)
	}
	close(conv.release)
	waitFor(t, "the job store to be empty", func() bool {
		n, err := s.cfg.Jobs.StoredBytes(ctx)
		return err == nil && n == 0 && s.disk.Load() == 0
	})
	conv.mu.Lock()
	defer conv.mu.Unlock()
	if len(conv.inputs) != 1 {
		t.Errorf("the converter ran %d jobs, want 1: the deleted queued job must never start", len(conv.inputs))
	}
}

// TestDetectionsServed: a job with a detect model has its detections at
// /detections, as JSON Lines or CSV, and its summary in the result; a
// class the model lacks is refused at upload; a job without detection
// has none.
func TestDetectionsServed(t *testing.T) {
	conv := &fakeConverter{}
	_, ts := start(t, conv, nil)
	id := submit(t, ts, field("detect_model", "boxes"), field("detect_classes", "fish"), field("detect_score", "0.4"),
		file("a.png", pngOf(t, 8, 8, red)), file("b.png", pngOf(t, 8, 8, green)))
	waitFor(t, "the job", func() bool { _, v := jobOf(t, ts, id); return v.Status == StatusDone })
	_, v := jobOf(t, ts, id)
	if d := v.Result.Detections; d == nil || d.Total != 2 || len(d.Classes) != 1 || d.Classes[0] != (img2vid.ClassSummary{Class: "fish", Frames: 2, Most: 1}) {
		t.Errorf("summary %+v", v.Result.Detections)
	}
	if o := conv.opts[0]; o.DetectModel != "boxes" || o.DetectClasses != "fish" || o.DetectScore != 0.4 || filepath.Base(o.Detections) != "detections.jsonl" {
		t.Errorf("converter got %+v", o)
	}
	url := ts.URL + "/api/jobs/" + id + "/detections"
	resp, body := get(t, url)
	lines := strings.Split(strings.TrimSpace(string(body)), "\n")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/jsonl") || len(lines) != 2 ||
		lines[1] != `{"frame":1,"time_s":0.2,"class":"fish","class_id":0,"score":0.5,"box":[1,1,3.5,3]}` {
		t.Errorf("JSON Lines: %d %s\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	wantCSV := "frame,time_s,class,class_id,score,x1,y1,x2,y2,interpolated\n0,0,fish,0,0.5,0,1,2.5,3,false\n1,0.2,fish,0,0.5,1,1,3.5,3,false\n"
	resp, body = get(t, url+"?format=csv&download=1")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") || string(body) != wantCSV ||
		resp.Header.Get("Content-Disposition") != `attachment; filename="a-detections.csv"` {
		t.Errorf("CSV: %d %s %s\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Content-Disposition"), body)
	}
	req := mustRequest(t, http.MethodGet, url, nil)
	req.Header.Set("Accept", "text/csv")
	if resp, body = do(t, req); string(body) != wantCSV {
		t.Errorf("Accept: text/csv gave %s", body)
	}
	if resp, body = get(t, url+"?format=xml"); resp.StatusCode != 400 || !strings.Contains(errorOf(t, body).Error, "format must be jsonl or csv") {
		t.Errorf("format=xml: %d %s", resp.StatusCode, body)
	}

	plain := submit(t, ts, file("a.png", pngOf(t, 8, 8, red)))
	waitFor(t, "the job", func() bool { _, v := jobOf(t, ts, plain); return v.Status == StatusDone })
	if resp, body = get(t, ts.URL+"/api/jobs/"+plain+"/detections"); resp.StatusCode != 404 || !strings.Contains(errorOf(t, body).Error, "no detect model") {
		t.Errorf("no detector: %d %s", resp.StatusCode, body)
	}
	for _, tc := range []struct{ field, value, says string }{
		{"detect_classes", "fish,whale", `"whale" is not a class of boxes (it has fish, crab)`},
		{"detect_model", "flow", "is a interpolate model, not a detect model"},
		{"detect_model", "nope", `detect_model "nope" is not a known detect model`},
	} {
		parts := []part{field(tc.field, tc.value), file("a.png", pngOf(t, 8, 8, red))}
		if tc.field == "detect_classes" {
			parts = append(parts, field("detect_model", "boxes"))
		}
		resp, body := post(t, ts, parts...)
		if resp.StatusCode != 400 || !strings.Contains(errorOf(t, body).Error, tc.says) {
			t.Errorf("%s=%s: %d %s, want 400 saying %q", tc.field, tc.value, resp.StatusCode, body, tc.says)
		}
	}
}

// TestEveryOptionThroughTheAPI sends each option of img2vid.OptionTable
// through POST /api/jobs with a value other than its default (and the
// options it needs beside it), and checks the job is taken and the
// converter gets that value: an option the API refuses or loses, as
// fps_out without interpolate once was, fails here. A new option without a
// case fails too.
func TestEveryOptionThroughTheAPI(t *testing.T) {
	cases := map[string][]part{
		"fps":                 {field("fps", "2")},
		"fps_out":             {field("fps", "5"), field("fps_out", "12")},
		"duration":            {field("duration", "3s")},
		"transition":          {field("duration", "3s"), field("transition", "crossfade")},
		"transition_duration": {field("duration", "3s"), field("transition", "wipe"), field("transition_duration", "1.5s")},
		"motion":              {field("motion", "kenburns")},
		"caption":             {field("caption", "name")},
		"motion_zoom":         {field("motion", "kenburns"), field("motion_zoom", "1.3")},
		"motion_focus":        {field("motion", "kenburns"), field("motion_focus", "0.3,0.6")},
		"motion_direction":    {field("motion", "kenburns"), field("motion_direction", "out")},
		"format":              {field("format", "webm")},
		"size":                {field("size", "16x16")},
		"aspect":              {field("aspect", "9:16")},
		"fit":                 {field("fit", "blur")},
		"quality":             {field("quality", "30")},
		"preset":              {field("preset", "fast")},
		"dedupe":              {field("dedupe", "true")},
		"interpolate":         {field("interpolate", "2")},
		"interp_model":        {field("interpolate", "2"), field("interp_model", "flow")},
		"frame_model":         {field("frame_model", "sr2x")},
		"scene_cut":           {field("interpolate", "2"), field("scene_cut", "0.3")},
		"detect_model":        {field("detect_model", "boxes")},
		"detect_score":        {field("detect_model", "boxes"), field("detect_score", "0.5")},
		"detect_iou":          {field("detect_model", "boxes"), field("detect_iou", "0.3")},
		"detect_classes":      {field("detect_model", "boxes"), field("detect_classes", "fish")},
		"audio_fit":           {field("audio_fit", "extend")},
	}
	conv := &fakeConverter{}
	_, ts := start(t, conv, nil)
	img := pngOf(t, 8, 8, red)
	for _, spec := range img2vid.OptionTable {
		t.Run(spec.Name, func(t *testing.T) {
			parts, ok := cases[spec.Name]
			if !ok {
				t.Fatalf("no case sends option %s through the API", spec.Name)
			}
			want := ""
			for _, p := range parts {
				if p.field == spec.Name {
					want = string(p.data)
				}
			}
			id := submit(t, ts, append(slices.Clone(parts), file("a.png", img), file("b.png", img))...)
			events := readEvents(t, ts.URL+"/api/jobs/"+id+"/events")
			if last := events[len(events)-1]; last.name != StatusDone {
				t.Fatalf("job ended %+v", last)
			}
			conv.mu.Lock()
			got := conv.opts[len(conv.opts)-1]
			conv.mu.Unlock()
			if v := spec.Get(&got); v != want {
				t.Errorf("the converter got %s=%q, want %q", spec.Name, v, want)
			}
		})
	}
}

// TestCSVCellsAreInert: a label that a spreadsheet would run as a formula
// reaches the detections CSV as text.
func TestCSVCellsAreInert(t *testing.T) {
	for label, want := range map[string]string{
		`=HYPERLINK("http://x.example","y")`: `'=HYPERLINK("http://x.example","y")`,
		"+1":                                 "'+1", "-2": "'-2", "@SUM(A1)": "'@SUM(A1)", "\tx": "'\tx", "\rx": "'\rx",
		"fish": "fish", "a=b": "a=b", "": "",
	} {
		rec := httptest.NewRecorder()
		line, err := json.Marshal(annotate.Record{Frame: 1, Detection: img2vid.Detection{Class: label, Box: [4]float64{-1, 0, 2, 3}}})
		if err != nil {
			t.Fatal(err)
		}
		if err := writeCSV(rec, bytes.NewReader(line)); err != nil {
			t.Fatal(err)
		}
		rows, err := csv.NewReader(rec.Body).ReadAll()
		if err != nil || len(rows) != 2 {
			t.Fatalf("label %q: %d rows, %v", label, len(rows), err)
		}
		if row := rows[1]; row[2] != want || strings.Join(row[5:9], ",") != "-1,0,2,3" {
			t.Errorf("label %q: row %q, want the class cell %q and the numbers as they are", label, row, want)
		}
	}
}

// Captions come one per file in the files' order (captions fields); with
// caption=name, each file given none is captioned with its name as the
// client sent it. Too many captions, or one that is not plain text, are
// refused naming what is wrong, before anything is queued.
func TestCaptionsThroughTheAPI(t *testing.T) {
	conv := &fakeConverter{}
	_, ts := start(t, conv, nil)
	img := pngOf(t, 8, 8, red)
	id := submit(t, ts, file("beach.png", img), file("harbour at dawn.png", img), file("c.png", img),
		field("captions", "The beach, 2026"), field("captions", ""), field("caption", "name"))
	readEvents(t, ts.URL+"/api/jobs/"+id+"/events")
	conv.mu.Lock()
	images := conv.plans[0].Images
	conv.mu.Unlock()
	var got []string
	for _, im := range images {
		got = append(got, im.Caption)
	}
	if want := []string{"The beach, 2026", "harbour at dawn", "c"}; !slices.Equal(got, want) {
		t.Errorf("captions %q, want %q", got, want)
	}
	for _, tc := range []struct {
		name  string
		parts []part
		want  string
	}{
		{"too many", []part{file("a.png", img), field("captions", "one"), field("captions", "two")}, "2 captions for 1 images"},
		{"control characters", []part{file("a.png", img), field("captions", "one\ntwo")}, `the caption of file 1 ("a.png") holds control characters`},
		{"too long", []part{file("a.png", img), field("captions", strings.Repeat("é", img2vid.MaxCaptionRunes+1))}, "has 201 characters"},
	} {
		resp, body := post(t, ts, tc.parts...)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(errorOf(t, body).Error, tc.want) {
			t.Errorf("%s: %d %s, want 400 saying %q", tc.name, resp.StatusCode, body, tc.want)
		}
	}
}

// Durations come one per file in the files' order, like captions; an
// empty field leaves the job's time; a time that is not one is refused
// naming the file.
func TestDurationsThroughTheAPI(t *testing.T) {
	conv := &fakeConverter{}
	_, ts := start(t, conv, nil)
	img := pngOf(t, 8, 8, red)
	id := submit(t, ts, file("a.png", img), file("b.png", img), field("durations", "3s"), field("durations", ""))
	readEvents(t, ts.URL+"/api/jobs/"+id+"/events")
	conv.mu.Lock()
	plan := conv.plans[0]
	conv.mu.Unlock()
	if plan.Images[0].Seconds != 3 || plan.Images[1].Seconds != 0 || !slices.Equal(plan.Slots, []int{90, 6}) {
		t.Errorf("images %+v, slots %v; want 3 s then the job's 0.2 s, at 30 fps: 90 and 6 frames", plan.Images, plan.Slots)
	}
	resp, body := post(t, ts, file("a.png", img), field("durations", "three"))
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(errorOf(t, body).Error, `the duration of file 1 ("a.png") must be a time such as 3s`) {
		t.Errorf("a duration that is not a time: %d %s", resp.StatusCode, body)
	}
}
