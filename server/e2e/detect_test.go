package e2e

import (
	"fmt"
	"image"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/img2vid/img2vid/inference"
	"github.com/img2vid/img2vid/internal/testenv"
	"github.com/img2vid/img2vid/internal/testimage"
	"github.com/img2vid/img2vid/jobs"
	"github.com/img2vid/img2vid/pipeline"
	"github.com/img2vid/img2vid/server"
)

// TestPageShowsDetections: images uploaded with a detector chosen come
// back as a video with the per-class summary, a chart of the counts over
// time, and the detections to download.
func TestPageShowsDetections(t *testing.T) {
	testenv.NeedFFmpeg(t)
	if _, err := inference.FindLibrary(inference.DefaultLibrarySearch(os.Getenv("ONNXRUNTIME_LIB"))); err != nil {
		testenv.Missing(t, "ONNX Runtime is not installed (run scripts/setup.sh run): %v", err)
	}
	rt, err := inference.Open(inference.Config{Library: os.Getenv("ONNXRUNTIME_LIB"), Device: inference.DeviceCPU, ModelsDir: testimage.DetectModels(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	// serve checks every model (seconds of CPU) before it answers; so does
	// this test, or the page's first model list waits for that check.
	rt.ListModels()
	// Six images: a red square moving right on all of them, a green one
	// on the last three only.
	dir := t.TempDir()
	var files []string
	for i := range 6 {
		sq := []testimage.Square{{Class: "red", Value: 255, Box: image.Rect(20+20*i, 40, 60+20*i, 80)}}
		if i >= 3 {
			sq = append(sq, testimage.Square{Class: "green", Value: 255, Box: image.Rect(200, 100, 240, 140)})
		}
		p := filepath.Join(dir, fmt.Sprintf("frame_%d.png", i))
		testimage.Write(t, p, testimage.PNG(t, testimage.Squares(320, 180, sq...)))
		files = append(files, p)
	}
	ctx := browser(t)
	s := newServerWith(t, func(c jobs.Converter) jobs.Converter {
		c.(*pipeline.Pipeline).Models = rt
		return c
	}, func(c *server.Config) { c.Catalog = rt })
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()

	step(t, ctx, "choosing the images and the detector", 30*time.Second,
		chromedp.Navigate(ts.URL),
		chromedp.WaitReady(chromedp.ID("files")),
		poll(`[...document.querySelectorAll("#detect_model option")].some(o => o.value === "squares-yolov8")`, 10*time.Second),
		chromedp.SetValue(chromedp.ID("detect_model"), "squares-yolov8"),
		chromedp.SetUploadFiles(chromedp.ID("files"), files),
		poll(`document.querySelectorAll("#thumbs li").length === 6 && !document.getElementById("convert").disabled`, 20*time.Second),
	)
	step(t, ctx, "converting", time.Minute,
		chromedp.Click(chromedp.ID("convert")),
		poll(`!document.getElementById("result").hidden && !document.getElementById("detections").hidden`, time.Minute),
		// The chart is drawn once the detections have been fetched.
		poll(`document.getElementById("det-chart").getAttribute("aria-label") !== null`, 10*time.Second),
	)
	rows := eval[[][]string](t, ctx, `[...document.querySelectorAll("#det-summary tbody tr")].map(r => [...r.cells].map(c => c.textContent))`)
	// squares-yolov8 takes BGR, so its classes run blue, green, red.
	if want := [][]string{{"green", "3", "1"}, {"red", "6", "1"}}; fmt.Sprint(rows) != fmt.Sprint(want) {
		t.Errorf("summary rows %v, want %v", rows, want)
	}
	if d := eval[string](t, ctx, `document.getElementById("details").textContent`); !strings.Contains(d, "squares-yolov8 (detection)") {
		t.Errorf("details %q do not name the detector", d)
	}
	chart := eval[struct {
		Label string `json:"label"`
		Red   int    `json:"red"`
		Green int    `json:"green"`
	}](t, ctx, `(() => {
		const c = document.getElementById("det-chart");
		const px = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
		// Pixels of each class's line colour (annotate.Colour: 2 is red's, 1 green's).
		const count = (r, g, b) => { let n = 0; for (let i = 0; i < px.length; i += 4) if (Math.abs(px[i] - r) < 30 && Math.abs(px[i + 1] - g) < 30 && Math.abs(px[i + 2] - b) < 30 && px[i + 3] > 200) n++; return n; };
		return {label: c.getAttribute("aria-label"), red: count(0xff, 0xe1, 0x19), green: count(0x3c, 0xb4, 0x4b)};
	})()`)
	if !strings.Contains(chart.Label, "red: up to 1") || !strings.Contains(chart.Label, "green: up to 1") || chart.Red < 50 || chart.Green < 20 {
		t.Errorf("chart: %+v, want lines for red and green", chart)
	}
	csv := eval[struct {
		Status int    `json:"status"`
		Type   string `json:"type"`
		Body   string `json:"body"`
	}](t, ctx, `(async () => {
		const r = await fetch(document.getElementById("det-csv").href);
		return {status: r.status, type: r.headers.get("content-type"), body: await r.text()};
	})()`)
	lines := strings.Split(strings.TrimSpace(csv.Body), "\n")
	if csv.Status != 200 || !strings.HasPrefix(csv.Type, "text/csv") || len(lines) != 1+9 || !strings.HasPrefix(lines[0], "frame,time_s,class") {
		t.Errorf("CSV download: %d %s, %d lines:\n%s", csv.Status, csv.Type, len(lines), csv.Body)
	}
	if path := os.Getenv(screenshotEnv); path != "" {
		saveScreenshot(t, ctx, strings.TrimSuffix(path, filepath.Ext(path))+"-detect"+filepath.Ext(path))
	}
}
