package server

import (
	"context"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/img2vid/img2vid"
)

// The Bearer scheme's name is matched without regard to case, as HTTP
// says; the token itself is matched exactly, whatever its length.
func TestTokenSchemeAnyCaseTokenExact(t *testing.T) {
	_, ts := start(t, &fakeConverter{}, func(c *testbed) { c.Token = "s3cret" })
	for header, want := range map[string]int{
		"Bearer s3cret":    200,
		"bearer s3cret":    200,
		"BEARER s3cret":    200,
		"Bearer   s3cret ": 200,
		"Basic s3cret":     401,
		"Bearer s3cre":     401,
		"Bearer s3cret0":   401,
		"Bearer ":          401,
		"bearers3cret":     401,
		"Bearer S3CRET":    401,
	} {
		req := mustRequest(t, http.MethodGet, ts.URL+"/api/models", nil)
		req.Header.Set("Authorization", header)
		if resp, _ := do(t, req); resp.StatusCode != want {
			t.Errorf("Authorization %q = %d, want %d", header, resp.StatusCode, want)
		}
	}
}

// pathCatalog is a catalogue whose library, note and model reasons name
// folders of the server.
type pathCatalog struct{}

func (pathCatalog) ListModels() []img2vid.ModelInfo {
	return []img2vid.ModelInfo{
		{Name: "flow", Kind: img2vid.KindInterpolate, Available: true},
		{Name: "broken", Kind: img2vid.KindFrame, Reason: "/srv/private-models/broken.json: sha256: open /srv/private-models/broken.onnx: no such file"},
	}
}

func (pathCatalog) Info() img2vid.RuntimeInfo {
	return img2vid.RuntimeInfo{Library: "/opt/private-ort/lib/libonnxruntime.so.1.24.3", Version: "1.24.3", Provider: "cpu",
		Note: "cuda asked for, but /opt/private-ort/lib/libonnxruntime_providers_cuda.so is missing"}
}

// pathConverter fails every job the way a failed write of the video does:
// with the full path of the output in the message.
type pathConverter struct{}

func (pathConverter) Run(_ context.Context, _ img2vid.Plan, _ []string, output string, _ int64, _ func(img2vid.Progress)) (img2vid.Result, error) {
	return img2vid.Result{}, img2vid.Errorf(img2vid.EINVALID, "cannot move the video into place at %s: permission denied", output)
}

// No response names a folder of the server: not the runtime library's, not
// the models folder, not the work folder, not ffmpeg's; the file names that
// say what went wrong stay.
func TestNoServerPathInAnyResponse(t *testing.T) {
	s, ts := start(t, pathConverter{}, func(c *testbed) {
		c.Catalog = pathCatalog{}
		c.Ready = func(context.Context) error {
			return img2vid.Errorf(img2vid.EUNAVAILABLE, "ffmpeg not found at %q: install ffmpeg or set IMG2VID_FFMPEG", "/opt/private-bin/ffmpeg")
		}
	})
	var bodies []string
	for _, path := range []string{"/readyz", "/api/models"} {
		_, body := get(t, ts.URL+path)
		bodies = append(bodies, string(body))
	}
	_, body := post(t, ts, field("frame_model", "broken"), file("a.png", pngOf(t, 8, 8, red)))
	bodies = append(bodies, string(body))
	id := submit(t, ts, file("a.png", pngOf(t, 8, 8, red)))
	evs := readEvents(t, ts.URL+"/api/jobs/"+id+"/events")
	if last := evs[len(evs)-1]; last.name != StatusFailed {
		t.Fatalf("job ended %s, want failed", last.name)
	}
	_, body = get(t, ts.URL+"/api/jobs/"+id)
	bodies = append(bodies, string(body))
	all := strings.Join(bodies, "\n")
	for _, private := range []string{"/opt/private-ort", "/srv/private-models", "/opt/private-bin", s.cfg.WorkDir, id + "/"} {
		if strings.Contains(all, private) {
			t.Errorf("a response shows %q:\n%s", private, all)
		}
	}
	for _, name := range []string{"libonnxruntime.so.1.24.3", "broken.json", "broken.onnx", `\"ffmpeg\"`, "video.mp4: permission denied"} {
		if !strings.Contains(all, name) {
			t.Errorf("responses lost the file name %q:\n%s", name, all)
		}
	}
}

func TestHidePaths(t *testing.T) {
	for in, want := range map[string]string{
		"/a/b/c.json: bad":                "c.json: bad",
		`not found at "/usr/bin/ffmpeg"`:  `not found at "ffmpeg"`,
		"open /x/y.onnx: no such file":    "open y.onnx: no such file",
		"fps must be in (0, 240], 1/3 ok": "fps must be in (0, 240], 1/3 ok",
		"rename /w/1.part /w/1.mp4: x":    "rename 1.part 1.mp4: x",
	} {
		if got := hidePaths(in); got != want {
			t.Errorf("hidePaths(%q) = %q, want %q", in, got, want)
		}
	}
}

// A page of another site cannot make a visitor's browser start or delete
// jobs (there is no token by default); the server's own page, the origins
// listed in AllowedOrigins and clients that are not browsers can.
func TestCrossSiteChangesRefused(t *testing.T) {
	conv := &fakeConverter{block: true, release: make(chan struct{})}
	defer close(conv.release)
	s, ts := start(t, conv, func(c *testbed) {
		c.AllowedOrigins = []string{"https://tools.example"}
		c.Limits.JobsPerClient = 0
	})
	postWith := func(header map[string]string) (*http.Response, []byte) {
		body, typ := multipartBody(t, file("a.png", pngOf(t, 8, 8, red)))
		req := mustRequest(t, http.MethodPost, ts.URL+"/api/jobs", body)
		req.Header.Set("Content-Type", typ)
		for k, v := range header {
			req.Header.Set(k, v)
		}
		return do(t, req)
	}
	for _, h := range []map[string]string{
		{"Origin": "https://evil.example"},
		{"Origin": "null"},
		{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
		{"Sec-Fetch-Site": "same-site", "Origin": "http://other.localhost"},
	} {
		resp, body := postWith(h)
		if e := errorOf(t, body); resp.StatusCode != http.StatusForbidden || e.Code != EFORBIDDEN || !strings.Contains(e.Error, "allowed_origins") {
			t.Errorf("POST with %v = %d %+v, want 403 forbidden naming allowed_origins", h, resp.StatusCode, e)
		}
	}
	if n := len(workEntries(t, s)); n != 0 {
		t.Errorf("refused cross-site uploads left %d folders", n)
	}
	var ids []string
	for _, h := range []map[string]string{
		nil, // curl and scripts send neither header
		{"Origin": ts.URL},
		{"Sec-Fetch-Site": "same-origin", "Origin": ts.URL},
		{"Sec-Fetch-Site": "cross-site", "Origin": "https://tools.example"},
	} {
		resp, body := postWith(h)
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST with %v = %d %s, want 202", h, resp.StatusCode, body)
		}
		ids = append(ids, strings.Split(strings.Split(string(body), `"id":"`)[1], `"`)[0])
	}
	del := mustRequest(t, http.MethodDelete, ts.URL+"/api/jobs/"+ids[0], nil)
	del.Header.Set("Sec-Fetch-Site", "cross-site")
	del.Header.Set("Origin", "https://evil.example")
	if resp, _ := do(t, del); resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site DELETE = %d, want 403", resp.StatusCode)
	}
	if code, _ := jobOf(t, ts, ids[0]); code != http.StatusOK {
		t.Errorf("the job a cross-site DELETE named is gone (%d)", code)
	}
	del.Header.Set("Sec-Fetch-Site", "same-origin")
	del.Header.Set("Origin", ts.URL)
	if resp, _ := do(t, del); resp.StatusCode != http.StatusNoContent {
		t.Errorf("same-origin DELETE = %d, want 204", resp.StatusCode)
	}
}

// IP addresses and localhost are always served, whatever AllowedHosts
// holds; any other name only when listed (or AnyHost is), so that a site
// that points its own name at the server (DNS rebinding) gets nothing even
// from a server that listens on every address and was told no names. The
// refusal says how to serve a name.
func TestUnknownHostRefused(t *testing.T) {
	always := map[string]int{
		"127.0.0.1:8080":         200,
		"localhost:8080":         200,
		"LOCALHOST":              200,
		"[::1]:8080":             200,
		"192.0.2.7":              200,
		"[2001:db8::7]":          200,
		"rebind.evil.example":    403,
		"localhost.evil.example": 403,
		"127.0.0.1.nip.io":       403,
	}
	for _, tt := range []struct {
		allowed []string
		also    map[string]int
	}{
		{nil, map[string]int{"img.example": 403}},
		{[]string{"img.example"}, map[string]int{"img.example": 200, "IMG.example:443": 200, "other.example": 403}},
		{[]string{"img.example", AnyHost}, map[string]int{"rebind.evil.example": 200, "localhost.evil.example": 200, "127.0.0.1.nip.io": 200}},
	} {
		_, ts := start(t, &fakeConverter{}, func(c *testbed) { c.AllowedHosts = tt.allowed })
		wants := maps.Clone(always)
		maps.Copy(wants, tt.also)
		for host, want := range wants {
			for _, path := range []string{"/", "/api/models", "/healthz"} {
				req := mustRequest(t, http.MethodGet, ts.URL+path, nil)
				req.Host = host
				resp, body := do(t, req)
				if resp.StatusCode != want {
					t.Errorf("allowed hosts %q: GET %s for host %q = %d, want %d", tt.allowed, path, host, resp.StatusCode, want)
				}
				if want == 403 && !strings.Contains(errorOf(t, body).Error, "IMG2VID_ALLOWED_HOSTS") {
					t.Errorf("refusal of host %q does not say how to allow it: %s", host, body)
				}
			}
		}
	}
}

// A request with no Host at all (HTTP/1.0) comes from no browser, so no
// page can rebind it: it is served.
func TestNoHostServed(t *testing.T) {
	s, _ := start(t, &fakeConverter{}, nil)
	req := httptest.NewRequest(http.MethodGet, "/healthz", nil)
	req.Host = ""
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Errorf("GET /healthz with no Host = %d %s, want 200", rec.Code, rec.Body)
	}
}

// RequireToken, which guards a worker's /metrics, refuses as the API does
// and takes the token as the API does.
func TestRequireToken(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("metrics")) })
	for _, tt := range []struct {
		token, header, cookie string
		want                  int
	}{
		{"", "", "", 200},
		{"s3cret", "", "", 401},
		{"s3cret", "Bearer s3cre", "", 401},
		{"s3cret", "Basic s3cret", "", 401},
		{"s3cret", "Bearer s3cret", "", 200},
		{"s3cret", "bearer s3cret", "", 200},
		{"s3cret", "", "s3cret", 200},
		{"s3cret", "", "other", 401},
	} {
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		if tt.header != "" {
			req.Header.Set("Authorization", tt.header)
		}
		if tt.cookie != "" {
			req.AddCookie(&http.Cookie{Name: tokenCookie, Value: tt.cookie})
		}
		rec := httptest.NewRecorder()
		RequireToken(tt.token, ok).ServeHTTP(rec, req)
		if rec.Code != tt.want {
			t.Errorf("token %q, Authorization %q, cookie %q = %d, want %d", tt.token, tt.header, tt.cookie, rec.Code, tt.want)
			continue
		}
		if tt.want == 401 {
			if e := errorOf(t, rec.Body.Bytes()); e.Code != EUNAUTHORIZED || rec.Header().Get("WWW-Authenticate") != bearerChallenge {
				t.Errorf("refusal %+v, WWW-Authenticate %q: want the API's", e, rec.Header().Get("WWW-Authenticate"))
			}
		}
	}
}

// Behind a trusted proxy each client counts on its own, by the address the
// proxy forwards; from any other peer the forwarded header is ignored.
func TestTrustedProxyNamesTheClient(t *testing.T) {
	conv := &fakeConverter{block: true, release: make(chan struct{})}
	defer close(conv.release)
	s, _ := start(t, conv, func(c *testbed) {
		c.TrustedProxies = []string{"192.0.2.0/24"}
		c.Limits.JobsPerClient = 1
		c.Queue = 16
	})
	const proxy, stranger = "192.0.2.10:5000", "203.0.113.5:5000"
	xff := func(ip string) map[string]string { return map[string]string{"X-Forwarded-For": ip} }
	idOf(t, postFrom(t, s, proxy, xff("198.51.100.1")))
	idOf(t, postFrom(t, s, proxy, xff("198.51.100.2"))) // another client behind the same proxy
	if rec := postFrom(t, s, proxy, xff("198.51.100.1")); rec.Code != http.StatusTooManyRequests {
		t.Errorf("second job of client 198.51.100.1 through the proxy = %d, want 429", rec.Code)
	}
	idOf(t, postFrom(t, s, stranger, xff("198.51.100.3")))
	if rec := postFrom(t, s, stranger, xff("198.51.100.4")); rec.Code != http.StatusTooManyRequests {
		t.Errorf("an untrusted peer named another client in X-Forwarded-For and got %d, want 429 (its own address counts)", rec.Code)
	}
}
