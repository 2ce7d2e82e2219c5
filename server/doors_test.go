package server

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/img2vid/img2vid"
)

// The Bearer scheme's name is matched without regard to case, as HTTP
// says; the token itself is matched exactly, whatever its length.
func TestTokenSchemeAnyCaseTokenExact(t *testing.T) {
	_, ts := start(t, &fakeConverter{}, func(c *Config) { c.Token = "s3cret" })
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

func (pathConverter) Convert(_ context.Context, _ []string, output string, _ img2vid.Options, _ func(img2vid.Progress)) (img2vid.Result, error) {
	return img2vid.Result{}, img2vid.Errorf(img2vid.EINVALID, "cannot move the video into place at %s: permission denied", output)
}

// No response names a folder of the server: not the runtime library's, not
// the models folder, not the work folder, not ffmpeg's; the file names that
// say what went wrong stay.
func TestNoServerPathInAnyResponse(t *testing.T) {
	s, ts := start(t, pathConverter{}, func(c *Config) {
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
