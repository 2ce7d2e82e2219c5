package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/img2vid/img2vid"
	"github.com/img2vid/img2vid/internal/repo"
	"github.com/img2vid/img2vid/internal/testenv"
	"github.com/img2vid/img2vid/internal/testimage"
	"github.com/img2vid/img2vid/jobs"
	"github.com/img2vid/img2vid/server"
)

// gatedConverter runs the real pipeline, but while hold is set each job
// waits for release first, so the test can look at the page mid-job.
type gatedConverter struct {
	jobs.Converter
	hold    atomic.Bool
	release chan struct{}
	calls   atomic.Int32
}

func (g *gatedConverter) Run(ctx context.Context, plan img2vid.Plan, inputs []string, output string, maxBytes int64, progress func(img2vid.Progress)) (img2vid.Result, error) {
	g.calls.Add(1)
	if g.hold.Load() {
		select {
		case <-g.release:
		case <-ctx.Done():
			return img2vid.Result{}, img2vid.Errorf(img2vid.ECANCELED, "canceled while held: %w", ctx.Err())
		}
	}
	return g.Converter.Run(ctx, plan, inputs, output, maxBytes, progress)
}

// slowBody reads an upload at about 4 MB/s, so that an upload of a dozen
// megabytes lasts long enough to be canceled midway, and what the sockets
// still hold after the cancel drains in a moment.
type slowBody struct{ io.ReadCloser }

func (b slowBody) Read(p []byte) (int, error) {
	time.Sleep(16 * time.Millisecond)
	return b.ReadCloser.Read(p[:min(len(p), 64<<10)])
}

// axeSource is axe-core, installed by scripts/setup.sh test.
func axeSource(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(repo.Root(wd), "server", "e2e", "testdata", "node", "node_modules", "axe-core", "axe.min.js")
	b, err := os.ReadFile(path)
	if err != nil {
		testenv.Missing(t, "axe-core is not installed (scripts/setup.sh test installs it): %v", err)
	}
	return string(b)
}

// pageChecks are the checks the test runs in the page again and again.
type pageChecks struct {
	t   *testing.T
	ctx context.Context
	axe string
}

// accessible runs axe-core on the page as it is and fails on any violation.
func (p pageChecks) accessible(state string) {
	p.t.Helper()
	type violation struct {
		ID      string   `json:"id"`
		Help    string   `json:"help"`
		Targets []string `json:"targets"`
	}
	got := eval[[]violation](p.t, p.ctx, `(async () => {
		if (!window.axe) { (0, eval)(`+jsString(p.axe)+`); }
		const r = await axe.run(document, {resultTypes: ["violations"]});
		return r.violations.map(v => ({id: v.id, help: v.help, targets: v.nodes.map(n => n.target.join(" "))}));
	})()`)
	for _, v := range got {
		p.t.Errorf("axe, %s: %s (%s) at %v", state, v.ID, v.Help, v.Targets)
	}
}

// inView fails unless the element is wholly inside the viewport.
func (p pageChecks) inView(what, id string) {
	p.t.Helper()
	box := eval[struct {
		Top, Bottom, Height float64
		Visible             bool
	}](p.t, p.ctx, `(() => {
		const r = document.getElementById(`+jsString(id)+`).getBoundingClientRect();
		return {top: r.top, bottom: r.bottom, height: innerHeight, visible: r.height > 0};
	})()`)
	if !box.Visible || box.Top < 0 || box.Bottom > box.Height+0.5 {
		p.t.Errorf("%s (#%s) is not in view: %+v", what, id, box)
	}
}

// focused returns the id (or the tag and class) of the focused element,
// failing when the focus has fallen to the page's body.
func (p pageChecks) focused(after string) string {
	p.t.Helper()
	f := eval[string](p.t, p.ctx, `(() => { const a = document.activeElement;
		return !a || a === document.body ? "BODY" : a.id || a.tagName.toLowerCase() + "." + a.className; })()`)
	if f == "BODY" {
		p.t.Errorf("after %s the focus is on the page's body", after)
	}
	return f
}

// tabTo presses Tab (Shift+Tab when back) until the element with the id
// has the focus, checking at each press that the focus is somewhere, and
// returns how many presses it took.
func (p pageChecks) tabTo(id string, back bool) int {
	p.t.Helper()
	var opts []chromedp.KeyOption
	if back {
		opts = append(opts, chromedp.KeyModifiers(chromedp.ModifierShift))
	}
	for n := 1; n <= 40; n++ {
		p.keys("tabbing to #"+id, kb.Tab, opts...)
		if p.focused("a Tab") == id {
			return n
		}
	}
	p.t.Fatalf("40 Tab presses did not reach #%s", id)
	return 0
}

// retype selects a text field's content with Ctrl+A and types text over it.
func (p pageChecks) retype(text string) {
	p.t.Helper()
	p.keys("selecting the field's text", "a", chromedp.KeyModifiers(chromedp.ModifierCtrl))
	if text == "" {
		p.keys("clearing the field", kb.Backspace)
	} else {
		p.keys("typing "+text, text)
	}
}

func (p pageChecks) keys(what string, keys string, opts ...chromedp.KeyOption) {
	p.t.Helper()
	step(p.t, p.ctx, what, 10*time.Second, chromedp.KeyEvent(keys, opts...))
}

// contrast is the WCAG contrast ratio of two CSS rgb() colours.
func contrast(t *testing.T, a, b string) float64 {
	t.Helper()
	lum := func(css string) float64 {
		var r, g, bl float64
		if _, err := fmt.Sscanf(css, "rgb(%g, %g, %g)", &r, &g, &bl); err != nil {
			t.Fatalf("colour %q: %v", css, err)
		}
		lin := func(v float64) float64 {
			if v /= 255; v <= 0.03928 {
				return v / 12.92
			}
			return math.Pow((v+0.055)/1.055, 2.4)
		}
		return 0.2126*lin(r) + 0.7152*lin(g) + 0.0722*lin(bl)
	}
	x, y := lum(a), lum(b)
	return (max(x, y) + 0.05) / (min(x, y) + 0.05)
}

// setField sets a form field as a user's choice would, with the events.
func setField(id, value string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](`(() => { const e = document.getElementById(` + jsString(id) + `);
		e.value = ` + jsString(value) + `;
		e.dispatchEvent(new Event("input", {bubbles: true}));
		e.dispatchEvent(new Event("change", {bubbles: true})); })()`)
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// writeImages writes PNGs of the given names, each a different flat colour
// (or noise when noisy, which does not compress), and returns their paths.
func writeImages(t *testing.T, dir string, w, h int, noisy bool, names ...string) []string {
	t.Helper()
	var out []string
	for i, name := range names {
		var img *image.NRGBA
		if noisy {
			img = image.NewNRGBA(image.Rect(0, 0, w, h))
			r := rand.New(rand.NewPCG(uint64(i), 7))
			for k := range img.Pix {
				img.Pix[k] = uint8(r.Uint32())
			}
		} else { // a colour of its own for each name, so no two are alike
			var sum uint8
			for _, c := range []byte(name) {
				sum = sum*31 + c
			}
			img = testimage.Solid(w, h, color.NRGBA{sum, 255 - sum, uint8(i * 60), 255})
		}
		path := filepath.Join(dir, name)
		testimage.Write(t, path, testimage.PNG(t, img))
		out = append(out, path)
	}
	return out
}

// pageNames lists the image names on the page in order.
func pageNames(t *testing.T, ctx context.Context) []string {
	return eval[[]string](t, ctx, `[...document.querySelectorAll("#thumbs .name")].map(e => e.textContent.replace(/^\d+\. /, ""))`)
}

// TestPageAsUsersMeetIt walks the page as a user does, by keyboard where a
// user can, at desktop and phone sizes, and checks after each state that
// axe-core finds nothing and the focus is never lost.
func TestPageAsUsersMeetIt(t *testing.T) {
	testenv.NeedFFmpeg(t)
	axe := axeSource(t)
	ctx := browser(t)
	gate := &gatedConverter{release: make(chan struct{})}
	var workDir string
	s := newServerWith(t, func(c jobs.Converter) jobs.Converter {
		gate.Converter = c
		return gate
	}, func(c *server.Config) { workDir = c.WorkDir })
	var slow atomic.Bool
	h := s.Handler()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if slow.Load() && r.Method == http.MethodPost {
			r.Body = slowBody{r.Body}
		}
		h.ServeHTTP(w, r)
	}))
	defer func() { ts.CloseClientConnections(); ts.Close() }()
	p := pageChecks{t: t, ctx: ctx, axe: axe}
	dir := t.TempDir()

	// A reload mid-job meets the page's "leave this page?" question: say
	// yes, and count it, since that warning is part of what is tested.
	var dialogs atomic.Int32
	target := chromedp.FromContext(ctx).Target
	// Every script error and console error the page makes, which must be
	// none (a CSP violation is a console error too).
	var pageErrors atomic.Int32
	go func() {
		for ev, err := range cdp.Events(ctx, target, cdpruntime.ExceptionThrown) {
			if err != nil {
				return
			}
			pageErrors.Add(1)
			what := ev.ExceptionDetails.Text
			if ex := ev.ExceptionDetails.Exception; ex != nil {
				what += " " + ex.Description
			}
			t.Logf("page exception: %s", what)
		}
	}()
	go func() {
		for ev, err := range cdp.Events(ctx, target, cdpruntime.ConsoleAPICalled) {
			if err != nil {
				return
			}
			if ev.Type == cdpruntime.ConsoleAPICalledTypeError {
				pageErrors.Add(1)
				t.Logf("console error: %v", ev.Args)
			}
		}
	}()
	go func() {
		for ev, err := range cdp.Events(ctx, target, page.JavascriptDialogOpening) {
			if err != nil {
				return
			}
			if ev.Type == page.DialogTypeBeforeunload {
				dialogs.Add(1)
			}
			cdp.Call(ctx, target, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}()

	step(t, ctx, "opening the page at 1280x800", 20*time.Second,
		chromedp.EmulateViewport(1280, 800),
		chromedp.Navigate(ts.URL),
		chromedp.WaitReady(chromedp.ID("files")),
	)
	// The error listener hears a thrown error (so its silence later means
	// something); that one is not the page's.
	step(t, ctx, "throwing a probe error", 5*time.Second,
		chromedp.Evaluate[chromedp.Void](`setTimeout(() => { throw new Error("probe") })`))
	for start := time.Now(); pageErrors.Load() == 0 && time.Since(start) < 5*time.Second; {
		time.Sleep(20 * time.Millisecond)
	}
	if pageErrors.Add(-1) != 0 {
		t.Fatalf("the page's errors cannot be heard")
	}
	p.accessible("empty page")

	// Keyboard only from here: the first Tab reaches the file chooser.
	p.keys("tabbing to the file chooser", kb.Tab)
	if f := p.focused("the first Tab"); f != "files" {
		t.Fatalf("the first Tab focuses %q, want the file chooser", f)
	}
	// The chooser's dialog belongs to the system; the files it would
	// return are set directly. One is text named like a JPEG.
	first := writeImages(t, dir, 320, 180, false, "shot_10.png", "shot_2.png")
	bad := filepath.Join(dir, "notes.jpg")
	os.WriteFile(bad, []byte("shopping list: eggs, milk"), 0o600)
	step(t, ctx, "choosing two images and a broken file", 20*time.Second,
		chromedp.SetUploadFiles(chromedp.ID("files"), append(first, bad)),
		poll(`document.querySelectorAll("#thumbs li").length === 3 && !document.getElementById("count").textContent.includes("checking")`, 15*time.Second),
	)
	if got := pageNames(t, ctx); strings.Join(got, ",") != "notes.jpg,shot_2.png,shot_10.png" {
		t.Errorf("after the first batch: %v, want natural order", got)
	}
	marked := eval[struct {
		Card    string `json:"card"`
		Note    string `json:"note"`
		Convert bool   `json:"convert"`
	}](t, ctx, `({card: (document.querySelector("#thumbs li.bad") || {}).textContent || "",
		note: document.getElementById("files-note").textContent, convert: !document.getElementById("convert").disabled})`)
	if !strings.Contains(marked.Card, "notes.jpg") || !strings.Contains(marked.Card, "Cannot be read") || !strings.Contains(marked.Note, "notes.jpg") {
		t.Errorf("the broken file is not marked before upload: %+v", marked)
	}
	p.accessible("a broken file marked")

	// One Tab stop for the whole list; Home, then Delete removes the
	// broken file, and its message goes with it.
	p.keys("tabbing into the list", kb.Tab)
	p.keys("going to the first image", kb.Home)
	if f := p.focused("Home in the list"); !strings.HasPrefix(f, "li.") {
		t.Fatalf("focus in the list is on %q, want an image", f)
	}
	ring := eval[struct {
		Color string  `json:"color"`
		Width float64 `json:"width"`
		Style string  `json:"style"`
	}](t, ctx, `(() => { const s = getComputedStyle(document.activeElement);
		return {color: s.outlineColor, width: parseFloat(s.outlineWidth), style: s.outlineStyle}; })()`)
	if c := contrast(t, ring.Color, "rgb(255, 255, 255)"); ring.Style == "none" || ring.Width < 3 || c < 3 {
		t.Errorf("focus ring %+v: contrast %.2f:1 on white, want a 3 px ring at 3:1 or more", ring, c)
	}
	p.keys("removing the broken file", kb.Delete)
	p.focused("Delete in the list")
	if note := eval[bool](t, ctx, `document.getElementById("files-note").hidden`); !note {
		t.Errorf("the broken file's message stays after it is removed")
	}

	// A second batch merges in natural order; a copy is flagged.
	second := writeImages(t, dir, 320, 180, false, "shot_1.png", "shot_3.png")
	copyOf := filepath.Join(dir, "shot_2 copy.png")
	b, _ := os.ReadFile(first[1])
	os.WriteFile(copyOf, b, 0o600)
	step(t, ctx, "choosing a second batch", 20*time.Second,
		chromedp.SetUploadFiles(chromedp.ID("files"), append(second, copyOf)),
		poll(`document.querySelectorAll("#thumbs li").length === 5 && !document.getElementById("count").textContent.includes("checking")`, 15*time.Second),
	)
	// A space sorts before a dot, as in plain text.
	if got := pageNames(t, ctx); strings.Join(got, ",") != "shot_1.png,shot_2 copy.png,shot_2.png,shot_3.png,shot_10.png" {
		t.Errorf("after the second batch: %v, want it merged in natural order", got)
	}
	note := eval[string](t, ctx, `document.getElementById("files-note").textContent`)
	flags := eval[[]string](t, ctx, `[...document.querySelectorAll("#thumbs li.dup .flag")].map(e => e.textContent)`)
	if note != "Exact duplicates: shot_2 copy.png and shot_2.png." || len(flags) != 2 {
		t.Errorf("the duplicates are not flagged: %q, cards %v", note, flags)
	}
	p.accessible("a duplicate flagged")

	// Reorder by keyboard: the focus stayed in the list; go to the second
	// image, move it later with Alt+Right and back with Alt+Left; one Tab
	// leaves the list.
	if f := p.focused("the second batch"); !strings.HasPrefix(f, "li.") {
		t.Errorf("after the second batch the focus is on %q, want the list", f)
	}
	p.keys("going to the first image", kb.Home)
	p.keys("going to the second image", kb.ArrowRight)
	secondName := pageNames(t, ctx)[1]
	p.keys("moving it later", kb.ArrowRight, chromedp.KeyModifiers(chromedp.ModifierAlt))
	moved := pageNames(t, ctx)
	p.keys("moving it back", kb.ArrowLeft, chromedp.KeyModifiers(chromedp.ModifierAlt))
	if moved[2] != secondName || pageNames(t, ctx)[1] != secondName {
		t.Errorf("Alt+arrows: after later %v, after earlier %v", moved, pageNames(t, ctx))
	}
	p.keys("moving the first image earlier, where it cannot go", kb.Home)
	p.keys("", kb.ArrowLeft, chromedp.KeyModifiers(chromedp.ModifierAlt))
	p.focused("moving an image past the start")
	// A caption by keyboard: Enter on the card edits it, Enter again
	// goes back to the card; it is sent with the job.
	p.keys("editing a caption", kb.Enter)
	if f := p.focused("Enter on a card"); f != "input.caption" {
		t.Errorf("Enter on a card focuses %q, want its caption", f)
	}
	p.keys("typing a caption", "Sunset, día 1")
	// Tab goes on to the card's own time; a time that is not one is
	// marked; a good one makes the preview count each image's own time.
	p.keys("on to the card's time", kb.Tab)
	if f := p.focused("Tab from a caption"); f != "input.duration" {
		t.Errorf("Tab from a card's caption focuses %q, want its time", f)
	}
	p.keys("typing a time that is none", "soon")
	if inv := eval[bool](t, ctx, `document.querySelector("#thumbs li input.duration").hasAttribute("aria-invalid")`); !inv {
		t.Error(`a card's time "soon" is not marked invalid`)
	}
	p.retype("2s")
	if pv := eval[string](t, ctx, `document.getElementById("preview").textContent`); !strings.Contains(pv, "each for its own time, at 30 frames/s") {
		t.Errorf("preview with one image's own time: %q", pv)
	}
	p.retype("")
	p.keys("back to the caption", kb.Tab, chromedp.KeyModifiers(chromedp.ModifierShift))
	p.keys("finishing the caption", kb.Enter)
	if c := eval[string](t, ctx, `document.querySelector("#thumbs li input.caption").value`); c != "Sunset, día 1" {
		t.Errorf("the first card's caption is %q", c)
	}
	p.keys("leaving the list", kb.Tab)
	if f := p.focused("Tab out of the list"); f != "clear" {
		t.Errorf("one Tab from the list reaches %q, want Remove all (one Tab stop per image)", f)
	}

	// Remove all, then Undo, by keyboard.
	p.keys("removing all", kb.Enter)
	if f := p.focused("Remove all"); f != "undo" || len(pageNames(t, ctx)) != 0 {
		t.Errorf("after Remove all: focus %q, %d images", f, len(pageNames(t, ctx)))
	}
	p.accessible("all removed, Undo offered")
	p.keys("undoing", kb.Enter)
	if got := pageNames(t, ctx); len(got) != 5 {
		t.Errorf("Undo brought back %v", got)
	}
	p.focused("Undo")

	// The page's size rule is the server's.
	for _, in := range []string{"1280x720", "1280 x 720", " 640X480 ", "1920×1080", "0x0", "0x10", "+5x5", "-5x5", "5x",
		"12 80x720", "1280x720x3", "1280*720", "big", "1e3x1", "99999999999x1", "\t320\tx\t200\t"} {
		w, h, err := img2vid.ParseSize(in)
		page := eval[*struct{ W, H int }](t, ctx, `parseSize(`+jsString(in)+`)`)
		if (err == nil) != (page != nil) || (page != nil && (page.W != w || page.H != h)) {
			t.Errorf("size %q: server %dx%d (%v), page %+v", in, w, h, err, page)
		}
	}
	// From the list (Undo gave it the focus) on, by Tab alone.
	p.tabTo("size", false)
	p.keys("typing a size of 0x0", "0x0")
	p.keys("leaving the size", kb.Tab)
	sizeErr := eval[struct {
		Invalid string `json:"invalid"`
		Text    string `json:"text"`
	}](t, ctx, `({invalid: document.getElementById("size").getAttribute("aria-invalid"), text: document.getElementById("settings-error").textContent})`)
	if sizeErr.Invalid != "true" || !strings.Contains(sizeErr.Text, "1280x720") {
		t.Errorf("0x0 in size: %+v, want the field marked and a message", sizeErr)
	}
	p.accessible("a size refused")
	p.tabTo("size", true)
	p.retype("1280 x 720")
	p.keys("leaving the size", kb.Tab)
	if inv := eval[bool](t, ctx, `document.getElementById("size").hasAttribute("aria-invalid")`); inv {
		t.Errorf("1280 x 720 is marked invalid")
	}

	// Every option is on the page, the rarer ones under More, and the
	// preview says what they make.
	p.tabTo("fps", true)
	p.retype("4")
	if pv := eval[string](t, ctx, `document.getElementById("preview").textContent`); pv != "5 images at 4/s = 1.3 s, 5 frames." {
		t.Errorf("preview %q", pv)
	}
	p.tabTo("more-summary", false)
	p.keys("opening More", kb.Enter)
	p.tabTo("fps_out", false)
	p.keys("setting the output rate", "2")
	// Without smoothing, a rate conversion: the images keep their pace,
	// 2.5 frames' worth at 2 frames/s, so 3 frames.
	if pv := eval[string](t, ctx, `document.getElementById("preview").textContent`); pv != "5 images at 4/s, converted to 2 frames/s = 1.5 s, 3 frames." {
		t.Errorf("preview with an output rate %q", pv)
	}
	// A slideshow: a transition longer than each image's time is refused
	// by its label before anything is sent; with a time per image, the
	// preview counts each image's frames at the output rate.
	choose := func(id, v string) {
		eval[bool](t, ctx, `(() => { const e = document.getElementById("`+id+`"); e.value = "`+v+`";
			e.dispatchEvent(new Event("input", {bubbles: true})); e.dispatchEvent(new Event("change", {bubbles: true})); return true })()`)
	}
	choose("transition", "crossfade")
	if msg := eval[string](t, ctx, `document.getElementById("settings-error").textContent`); !strings.Contains(msg, "Transition time (0.5 s) must be shorter than each image's time (0.25 s)") {
		t.Errorf("a crossfade longer than an image's time: %q, want it refused by its label", msg)
	}
	choose("duration", "2s")
	if pv := eval[string](t, ctx, `document.getElementById("preview").textContent`); pv != "5 images, 2.0 s each, at 2 frames/s = 10 s, 20 frames." {
		t.Errorf("preview of a slideshow %q", pv)
	}
	choose("duration", "")
	choose("transition", "none")
	// Every option of the server's table has a labelled field with a
	// one-line explanation, and the table's bounds and defaults.
	fields := eval[[]struct {
		Name    string `json:"name"`
		Label   string `json:"label"`
		Hint    string `json:"hint"`
		Min     string `json:"min"`
		WantMin string `json:"wantMin"`
	}](t, ctx, `fetch("/api/options").then(r => r.json()).then(d => d.options.map(o => {
		const e = document.querySelector("#settings [name=" + o.name + "]");
		const hint = e && e.getAttribute("aria-describedby");
		const label = e && document.querySelector("label[for=" + e.id + "]");
		return {name: o.name, label: label ? label.textContent : "", hint: hint ? document.getElementById(hint).textContent : "",
			min: e && e.type === "number" ? e.min : "", wantMin: e && e.type === "number" && o.min !== undefined ? String(o.min) : ""};
	}))`)
	if len(fields) != len(img2vid.OptionTable) {
		t.Errorf("the page sees %d options, the table has %d", len(fields), len(img2vid.OptionTable))
	}
	for _, f := range fields {
		if f.Label == "" || f.Hint == "" || f.Min != f.WantMin {
			t.Errorf("option %s on the page: %+v, want a label, an explanation and the table's bounds", f.Name, f)
		}
	}
	for _, id := range []string{"audio"} {
		hint := eval[string](t, ctx, `(() => { const e = document.getElementById(`+jsString(id)+`);
			return e.getAttribute("aria-describedby") ? document.getElementById(e.getAttribute("aria-describedby")).textContent : ""; })()`)
		if hint == "" {
			t.Errorf("option %s has no explanation", id)
		}
	}
	p.accessible("More open")
	p.keys("clearing slow motion", kb.Backspace)
	p.tabTo("format", true)
	p.keys("choosing GIF", kb.End)
	if f := eval[string](t, ctx, `document.getElementById("format").value`); f != "gif" {
		t.Fatalf("End on the format list chose %q, want gif", f)
	}

	// Convert by keyboard, with the job held: the status comes into view,
	// the focus goes to Cancel, and everything else is locked.
	gate.hold.Store(true)
	p.tabTo("convert", false)
	step(t, ctx, "converting by keyboard", 10*time.Second,
		chromedp.KeyEvent(kb.Enter),
		poll(`!!localStorage.getItem("img2vid.job")`, 8*time.Second),
	)
	if f := p.focused("Convert"); f != "cancel" {
		t.Errorf("after Convert the focus is on %q, want Cancel", f)
	}
	p.inView("the status at 1280x800", "progress-box")
	locked := eval[map[string]bool](t, ctx, `({files: document.getElementById("files").disabled,
		settings: document.getElementById("settings-set").disabled, clear: document.getElementById("clear").disabled,
		remove: [...document.querySelectorAll("#thumbs button")].every(b => b.disabled),
		convert: document.getElementById("convert").disabled, title: document.title.includes("%")})`)
	for what, ok := range locked {
		if !ok {
			t.Errorf("during the job, %s is not locked (or the title shows no progress)", what)
		}
	}
	p.accessible("job running")

	// A reload mid-job: the page warns first, then finds the job again.
	step(t, ctx, "reloading mid-job", 20*time.Second,
		chromedp.Reload(),
		poll(`!document.getElementById("cancel").hidden && !document.getElementById("progress-box").hidden`, 10*time.Second),
	)
	if n := dialogs.Load(); n != 1 {
		t.Errorf("%d warnings before leaving a running job, want 1", n)
	}
	if f := p.focused("the reload finding the job"); f != "cancel" {
		t.Errorf("after the reload the focus is on %q, want Cancel", f)
	}
	p.accessible("job found after a reload")

	gate.hold.Store(false)
	close(gate.release)
	step(t, ctx, "finishing the job", 60*time.Second,
		poll(`!document.getElementById("result").hidden`, 60*time.Second),
		poll(`document.getElementById("gif").complete && document.getElementById("gif").naturalWidth > 0`, 10*time.Second),
	)
	if f := p.focused("the job's end"); f != "result-title" {
		t.Errorf("at the end the focus is on %q, want the result", f)
	}
	p.inView("the result at 1280x800", "result-title")
	done := eval[struct {
		Width   int    `json:"width"`
		Video   bool   `json:"video"`
		Details string `json:"details"`
		Title   string `json:"title"`
	}](t, ctx, `({width: document.getElementById("gif").naturalWidth, video: !document.getElementById("video").hidden,
		details: document.getElementById("details").textContent, title: document.title})`)
	for _, want := range []string{"Length1.3 s", "Frames5 images became 5 frames at 4 frames per second", "Resolution1280 x 720", "File size", "Models usednone", "Time taken"} {
		if !strings.Contains(done.Details, want) {
			t.Errorf("result details %q lack %q", done.Details, want)
		}
	}
	if done.Width != 1280 || done.Video || !strings.HasPrefix(done.Title, "Done") {
		t.Errorf("GIF result: %+v, want a 1280 wide image, no video element, Done in the title", done)
	}
	p.accessible("GIF result")
	p.keys("tabbing to the download", kb.Tab)
	if f := p.focused("Tab from the result"); f != "download" {
		t.Errorf("Tab from the result reaches %q, want the download link", f)
	}
	dl := eval[struct {
		Status int    `json:"status"`
		Type   string `json:"type"`
		Disp   string `json:"disposition"`
	}](t, ctx, `fetch(document.getElementById("download").href).then(r => ({status: r.status, type: r.headers.get("content-type"), disposition: r.headers.get("content-disposition")}))`)
	if dl.Status != 200 || dl.Type != "image/gif" || dl.Disp != `attachment; filename="shot_1.gif"` {
		t.Errorf("download: %+v, want shot_1.gif", dl)
	}

	// Cancel mid-upload: a slow server, images that do not compress.
	jobsBefore, _ := os.ReadDir(workDir)
	big := writeImages(t, dir, 900, 900, true, "big_1.png", "big_2.png", "big_3.png", "big_4.png", "big_5.png", "big_6.png")
	slow.Store(true)
	step(t, ctx, "choosing large images", 30*time.Second,
		chromedp.SetUploadFiles(chromedp.ID("files"), big),
		poll(`document.querySelectorAll("#thumbs li").length === 6 && !document.getElementById("convert").disabled`, 20*time.Second),
		setField("format", "mp4"),
		setField("size", ""),
		chromedp.Click(chromedp.ID("convert")),
	)
	if hidden := eval[bool](t, ctx, `document.getElementById("cancel").hidden`); hidden {
		t.Errorf("Cancel is not offered from the start of the upload")
	}
	step(t, ctx, "uploading", 20*time.Second, poll(`/Uploading — [1-9]/.test(document.getElementById("status").textContent)`, 20*time.Second))
	p.accessible("uploading")
	step(t, ctx, "canceling mid-upload", 10*time.Second,
		chromedp.Click(chromedp.ID("cancel")),
		poll(`document.getElementById("progress-box").hidden && !document.getElementById("convert").disabled`, 5*time.Second),
	)
	if f := p.focused("Cancel"); f != "convert" {
		t.Errorf("after Cancel the focus is on %q, want Convert", f)
	}
	// Chromium stops sending but may keep the connection open (the
	// server's read timeouts deal with such stalls); closing it ends the
	// upload, and the server must keep nothing of it.
	time.Sleep(300 * time.Millisecond)
	ts.CloseClientConnections()
	for start := time.Now(); ; time.Sleep(50 * time.Millisecond) {
		left, _ := os.ReadDir(workDir)
		if len(left) == len(jobsBefore) {
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("the canceled upload left %v on the server", left)
		}
	}
	if n := gate.calls.Load(); n != 1 {
		t.Errorf("%d jobs ran, want only the first: the canceled upload must not become a job", n)
	}
	slow.Store(false)

	// A soundtrack the browser cannot judge but the server refuses: the
	// error comes into view with the focus.
	junk := filepath.Join(dir, "junk.ogg")
	os.WriteFile(junk, []byte("OggS but not really"), 0o600)
	step(t, ctx, "converting with a broken soundtrack", 30*time.Second,
		chromedp.SetUploadFiles(chromedp.ID("audio"), []string{junk}),
		poll(`!document.getElementById("audio-clear").hidden`, 5*time.Second),
		chromedp.Click(chromedp.ID("convert")),
		poll(`!document.getElementById("error").hidden`, 20*time.Second),
	)
	if f := p.focused("the refusal"); f != "error" {
		t.Errorf("after a refusal the focus is on %q, want the error", f)
	}
	p.inView("the error", "error")
	if msg := eval[string](t, ctx, `document.getElementById("error").textContent`); !strings.Contains(msg, `audio file "junk.ogg" is not audio`) {
		t.Errorf("error %q", msg)
	}
	p.accessible("an error")

	// A real soundtrack, held to: 6 images at 4/s are 1.5 s, the sound 3 s.
	tone := filepath.Join(dir, "tone.wav")
	os.WriteFile(tone, sineTone(t, "tone.wav", 3), 0o600)
	step(t, ctx, "converting with a soundtrack", 90*time.Second,
		chromedp.SetUploadFiles(chromedp.ID("audio"), []string{tone}),
		setField("audio_fit", "extend"),
		poll(`document.getElementById("preview").textContent.includes("held for the 3.0 s sound")`, 5*time.Second),
		chromedp.Click(chromedp.ID("convert")),
		poll(`!document.getElementById("result").hidden && document.getElementById("video").readyState >= 2`, 90*time.Second),
	)
	p.inView("the video's result", "result-title")
	withSound := eval[string](t, ctx, `document.getElementById("details").textContent`)
	if !strings.Contains(withSound, "Sound3.0 s") || !strings.Contains(withSound, "Length3.0 s") {
		t.Errorf("details %q, want 3.0 s of video and sound", withSound)
	}
	href := eval[string](t, ctx, `document.getElementById("download").href`)
	resp, err := http.Get(href)
	if err != nil {
		t.Fatal(err)
	}
	video := filepath.Join(dir, "with-sound.mp4")
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	os.WriteFile(video, body, 0o600)
	kinds, length := ffprobeStreams(t, video)
	if strings.Join(kinds, ",") != "video:h264,audio:aac" || math.Abs(length-3) > 0.06 {
		t.Errorf("the page's video: streams %v, sound %.3f s; want h264 and aac, 3 s", kinds, length)
	}
	if name := eval[string](t, ctx, `document.getElementById("audio-name").textContent`); name != "tone.wav (3.0 s)" {
		t.Errorf("the soundtrack is shown as %q", name)
	}
	p.accessible("video result")

	// A phone: the stored job's result is shown after a reload; a new job's
	// status and result come into view; nothing sticks out; touch targets
	// are 44x44 px or more.
	step(t, ctx, "opening the page on a phone", 20*time.Second,
		chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateTouch),
		chromedp.Reload(),
		poll(`!document.getElementById("result").hidden`, 10*time.Second),
	)
	step(t, ctx, "choosing images on a phone", 20*time.Second,
		chromedp.SetUploadFiles(chromedp.ID("files"), first),
		poll(`!document.getElementById("convert").disabled`, 10*time.Second),
	)
	small := eval[[]string](t, ctx, `[...document.querySelectorAll("button, a, summary, label.button, input[type=checkbox]")]
		.filter(e => e.getClientRects().length && getComputedStyle(e).visibility !== "hidden")
		.map(e => [e, e.getBoundingClientRect()]).filter(([e, r]) => r.width < 44 || r.height < 44)
		.map(([e, r]) => (e.id || e.getAttribute("aria-label") || e.textContent.trim()) + " " + Math.round(r.width) + "x" + Math.round(r.height))`)
	if len(small) > 0 {
		t.Errorf("touch targets under 44x44 px at 390 px wide: %v", small)
	}
	p.accessible("phone, images chosen")
	gate.release = make(chan struct{})
	gate.hold.Store(true)
	step(t, ctx, "converting on a phone", 20*time.Second,
		chromedp.Click(chromedp.ID("convert")),
		poll(`!!localStorage.getItem("img2vid.job")`, 10*time.Second),
	)
	p.inView("the status at 390x844", "progress-box")
	gate.hold.Store(false)
	close(gate.release)
	step(t, ctx, "finishing on a phone", 60*time.Second, poll(`!document.getElementById("result").hidden && document.getElementById("video").readyState >= 2`, 60*time.Second))
	p.inView("the result at 390x844", "result-title")
	p.focused("the job's end on a phone")
	p.accessible("phone result")
	fit := eval[struct {
		Scroll int `json:"scroll"`
		Inner  int `json:"inner"`
	}](t, ctx, `({scroll: document.documentElement.scrollWidth, inner: innerWidth})`)
	if fit.Scroll > fit.Inner {
		t.Errorf("on a 390 px wide screen the page is %d px wide", fit.Scroll)
	}
	// HEAD where GET: the page, an asset and the video.
	for _, path := range []string{"/", "/assets/app.js", strings.TrimPrefix(href, ts.URL)} {
		resp, err := http.Head(ts.URL + path)
		if err != nil {
			t.Errorf("HEAD %s: %v", path, err)
		} else if resp.Body.Close(); resp.StatusCode != http.StatusOK {
			t.Errorf("HEAD %s: %s", path, resp.Status)
		}
	}
	if n := pageErrors.Load(); n != 0 {
		t.Errorf("the page made %d script or console errors", n)
	}
	t.Logf("%d beforeunload warnings; details with sound: %s", dialogs.Load(), withSound)
}
