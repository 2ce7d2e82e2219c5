package e2e

import (
	"context"
	"fmt"
	"math"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/img2vid/img2vid"
	"github.com/img2vid/img2vid/inference"
	"github.com/img2vid/img2vid/internal/repo"
	"github.com/img2vid/img2vid/internal/testenv"
	"github.com/img2vid/img2vid/internal/testimage"
	"github.com/img2vid/img2vid/server"
)

// screenshotEnv names the file the browser test saves a screenshot of the
// finished page to (relative paths from the repository root); unset, no
// screenshot is written.
const screenshotEnv = "IMG2VID_SCREENSHOT"

// browser starts headless Chromium with the flags a root user in a
// container needs, on a fresh profile, or skips the test if Chromium is not
// installed. The browser lives until the test ends; each step gets its own
// deadline from step.
func browser(t *testing.T) context.Context {
	t.Helper()
	path := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		testenv.Missing(t, "Chromium is not installed (apt-get install chromium); CI installs it")
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1100, 1500),
	)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	// The first Run starts the browser, which lives as long as this
	// context: it must carry no deadline.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	return ctx
}

// step runs actions with a deadline, failing the test with what was being
// done and the page's error text if one fails.
func step(t *testing.T, ctx context.Context, what string, limit time.Duration, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	if err := chromedp.Do(sctx, actions...); err != nil {
		pageErr, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("error").textContent`))
		t.Fatalf("%s: %v (page error: %q)", what, err, pageErr)
	}
}

// eval evaluates a script (awaiting a promise it returns) into a T.
func eval[T any](t *testing.T, ctx context.Context, script string) T {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(sctx, chromedp.Evaluate[T](script, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluating %.60q: %v", script, err)
	}
	return v
}

// saveScreenshot writes a screenshot of the whole page to path (relative
// paths from the repository root).
func saveScreenshot(t *testing.T, ctx context.Context, path string) {
	t.Helper()
	if !filepath.IsAbs(path) {
		wd, err := os.Getwd()
		if err != nil {
			t.Fatal(err)
		}
		path = filepath.Join(repo.Root(wd), path)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot saved to %s", path)
}

// poll waits until the expression is truthy.
func poll(expr string, limit time.Duration) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(limit), chromedp.WithPollingInterval(100*time.Millisecond))
}

// catalog opens the real inference runtime so the page lists real models,
// or returns nil when ONNX Runtime is not installed: the conversion below
// uses no model, so the test stands without it.
func catalog(t *testing.T) server.Catalog {
	t.Helper()
	rt, err := inference.Open(inference.Config{Library: os.Getenv("ONNXRUNTIME_LIB"), Device: "cpu"})
	if err != nil {
		t.Logf("no model catalogue in the page: %v", err)
		return nil
	}
	t.Cleanup(func() { rt.Close() })
	return rt
}

// unpadded links the aquarium frames as frame_0.jpg .. frame_49.jpg, whose
// names sort wrongly as plain text (frame_10 before frame_2).
func unpadded(t *testing.T, frames []string) []string {
	t.Helper()
	dir := t.TempDir()
	var out []string
	for i := len(frames) - 1; i >= 0; i-- { // reversed: the page must sort them
		link := filepath.Join(dir, fmt.Sprintf("frame_%d.jpg", i))
		if err := os.Symlink(frames[i], link); err != nil {
			t.Fatal(err)
		}
		out = append(out, link)
	}
	return out
}

// TestPageConvertsInABrowser drives the page in Chromium from choosing 50
// frames to playing and downloading the video: generated frames, and the
// aquarium frames of the extended set.
func TestPageConvertsInABrowser(t *testing.T) {
	testenv.NeedFFmpeg(t)
	for _, src := range testimage.Sources(50, 320, 180) {
		t.Run(src.Name, func(t *testing.T) { pageConverts(t, src) })
	}
}

func pageConverts(t *testing.T, src testimage.Source) {
	frames := clipFrames(t, src)
	ctx := browser(t)
	cat := catalog(t)
	s := newServer(t, func(c *server.Config) {
		if cat != nil {
			c.Catalog = cat
		}
	})
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()

	step(t, ctx, "loading the page and choosing the frames", 30*time.Second,
		chromedp.Navigate(ts.URL),
		chromedp.WaitReady(chromedp.ID("files")),
		chromedp.SetUploadFiles(chromedp.ID("files"), unpadded(t, frames)),
		// Every image is decoded in the page as it is added; Convert waits
		// for that.
		poll(`document.querySelectorAll("#thumbs li").length === 50 && !document.getElementById("convert").disabled`, 30*time.Second),
	)
	if title := eval[string](t, ctx, `document.title`); title != "Image to Video Converter" {
		t.Errorf("title %q", title)
	}
	names := eval[[]string](t, ctx, `[...document.querySelectorAll("#thumbs .name")].map(e => e.textContent)`)
	for i, want := range map[int]string{0: "1. frame_0.jpg", 2: "3. frame_2.jpg", 10: "11. frame_10.jpg", 49: "50. frame_49.jpg"} {
		if names[i] != want {
			t.Errorf("thumbnail %d is %q, want %q (natural order)", i, names[i], want)
		}
	}

	// Keyboard reordering: move the first image later, then back.
	step(t, ctx, "moving an image later by keyboard", 10*time.Second,
		chromedp.Focus(chromedp.CSS(`#thumbs li:first-child button[aria-label="Move frame_0.jpg later"]`)),
		chromedp.KeyEvent("\r"),
	)
	moved := eval[string](t, ctx, `document.querySelector("#thumbs li:nth-child(2) .name").textContent`)
	step(t, ctx, "moving it back by keyboard", 10*time.Second,
		chromedp.Focus(chromedp.CSS(`#thumbs li:nth-child(2) button[aria-label="Move frame_0.jpg earlier"]`)),
		chromedp.KeyEvent("\r"),
	)
	back := eval[string](t, ctx, `document.querySelector("#thumbs li:first-child .name").textContent`)
	if moved != "2. frame_0.jpg" || back != "1. frame_0.jpg" {
		t.Errorf("keyboard reorder: after later %q, after earlier %q", moved, back)
	}

	step(t, ctx, "converting", 2*time.Minute,
		chromedp.Click(chromedp.ID("convert")),
		poll(`!document.getElementById("result").hidden`, 2*time.Minute),
	)
	details := eval[string](t, ctx, `document.getElementById("details").textContent`)
	if !strings.Contains(details, "50 images became 50 frames") || !strings.Contains(details, "Length10 s") {
		t.Errorf("result details %q", details)
	}

	// Seek into the video: the screenshot then shows a real frame, and
	// seeking needs Range support.
	step(t, ctx, "loading the video", 30*time.Second, poll(`document.getElementById("video").readyState >= 2`, 30*time.Second))
	state := eval[struct {
		ReadyState int     `json:"readyState"`
		Duration   float64 `json:"duration"`
		Width      int     `json:"width"`
		Mean       float64 `json:"mean"`
	}](t, ctx, `new Promise(done => {
		const v = document.getElementById("video");
		v.addEventListener("seeked", () => {
			// The mean of a downscaled copy of the frame shown: a decoder that
			// gave up would leave it black.
			const c = document.createElement("canvas");
			c.width = 64; c.height = 36;
			const g = c.getContext("2d");
			g.drawImage(v, 0, 0, 64, 36);
			const px = g.getImageData(0, 0, 64, 36).data;
			let sum = 0;
			for (let i = 0; i < px.length; i += 4) sum += px[i] + px[i + 1] + px[i + 2];
			done({readyState: v.readyState, duration: v.duration, width: v.videoWidth, mean: sum / (3 * 64 * 36)});
		}, {once: true});
		v.currentTime = 5;
	})`)
	if state.ReadyState < 2 || math.Abs(state.Duration-10) > 0.05 || state.Width != src.Width || state.Mean < 10 {
		t.Errorf("video element: %+v, want readyState >= 2, 10 s, %d wide, a frame that is not black", state, src.Width)
	}
	t.Logf("video element: %+v", state)

	download := eval[struct {
		Status int    `json:"status"`
		Type   string `json:"type"`
		Disp   string `json:"disposition"`
		Box    string `json:"box"`
		Size   int    `json:"size"`
	}](t, ctx, `(async () => {
		const r = await fetch(document.getElementById("download").href);
		const b = new Uint8Array(await r.arrayBuffer());
		return {status: r.status, type: r.headers.get("content-type"), disposition: r.headers.get("content-disposition"),
			box: String.fromCharCode(...b.slice(4, 8)), size: b.length};
	})()`)
	if download.Status != 200 || download.Type != "video/mp4" || download.Box != "ftyp" || download.Size < 10000 ||
		!strings.HasPrefix(download.Disp, "attachment") {
		t.Errorf("download link: %+v, want an MP4 attachment", download)
	}

	if path := os.Getenv(screenshotEnv); path != "" {
		saveScreenshot(t, ctx, path)
	}

	// On a phone-sized screen nothing may stick out sideways.
	step(t, ctx, "emulating a phone", 10*time.Second, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	fit := eval[struct {
		Scroll int `json:"scroll"`
		Inner  int `json:"inner"`
	}](t, ctx, `new Promise(r => requestAnimationFrame(() => r({scroll: document.documentElement.scrollWidth, inner: window.innerWidth})))`)
	if fit.Scroll > fit.Inner {
		t.Errorf("on a 390 px wide screen the page is %d px wide", fit.Scroll)
	}
}

func TestPageAsksForTheToken(t *testing.T) {
	ctx := browser(t)
	s := newServer(t, func(c *server.Config) {
		c.Token = "letmein"
		c.Catalog = staticCatalog{}
	})
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	step(t, ctx, "giving the token", 20*time.Second,
		chromedp.Navigate(ts.URL),
		chromedp.WaitVisible(chromedp.ID("token-input")),
		chromedp.SendKeys(chromedp.ID("token-input"), "letmein"),
		chromedp.KeyEvent("\r"), // Enter submits the form, as a user would
		chromedp.WaitNotVisible(chromedp.ID("token")),
		poll(`document.querySelectorAll("#interp_model option").length > 0`, 10*time.Second),
	)
	options := eval[[]string](t, ctx, `[...document.querySelectorAll("#interp_model option")].map(o => o.value)`)
	if len(options) != 1 || options[0] != "blend" {
		t.Errorf("interpolation models after the token: %v", options)
	}
}

// staticCatalog lists one model; the token test needs the catalogue only to
// see that the page loads it once the token is given.
type staticCatalog struct{}

func (staticCatalog) ListModels() []img2vid.ModelInfo {
	return []img2vid.ModelInfo{{Name: "blend", Kind: img2vid.KindInterpolate, Available: true}}
}

func (staticCatalog) Info() img2vid.RuntimeInfo { return img2vid.RuntimeInfo{Provider: "cpu"} }
