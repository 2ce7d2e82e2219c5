package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image/color"
	"io"
	"io/fs"
	"maps"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/img2vid/img2vid"
	"github.com/img2vid/img2vid/internal/proctest"
	"github.com/img2vid/img2vid/internal/testenv"
	"github.com/img2vid/img2vid/internal/testimage"
	"github.com/img2vid/img2vid/server"
	"github.com/img2vid/img2vid/video"
)

// upload is one file of a job, under the name the client gives it.
type upload struct {
	name string
	data []byte
}

// badInput is one hostile or odd upload and what the server must make of
// it: a refusal, a job that fails with a clear error, or a correct video.
type badInput struct {
	name   string
	files  []upload
	fields map[string]string
	// status is the answer to POST /api/jobs; 202 means the job was taken.
	status int
	// code and says describe the error: of the refusal, or, for a job that
	// was taken, of its failure. No code means the job must make a video.
	code, says string
	// w, h and frames describe that video; look, if set, checks its pixels.
	w, h, frames int
	look         func(t *testing.T, frames [][]byte, w int)
}

// solid checks that the centre of every frame is near c.
func solid(c color.NRGBA) func(*testing.T, [][]byte, int) {
	return func(t *testing.T, frames [][]byte, w int) {
		t.Helper()
		h := len(frames[0]) / 3 / w
		for i, f := range frames {
			if got := testimage.RGBAt(f, w, w/2, h/2); !near(got, c, 24) {
				t.Errorf("frame %d: centre is %v, want %v", i, got, c)
			}
		}
	}
}

// upright checks that every frame shows the Quadrants pattern upright.
func upright(t *testing.T, frames [][]byte, w int) {
	t.Helper()
	h := len(frames[0]) / 3 / w
	for i, f := range frames {
		for _, left := range []bool{true, false} {
			for _, top := range []bool{true, false} {
				x, y := w/4, h/4
				if !left {
					x = 3 * w / 4
				}
				if !top {
					y = 3 * h / 4
				}
				if got, want := testimage.RGBAt(f, w, x, y), testimage.QuadrantColor(left, top); !near(got, want, 48) {
					t.Errorf("frame %d at (%d,%d): %v, want %v", i, x, y, got, want)
				}
			}
		}
	}
}

// near reports whether an RGB sample is within tol of c in every channel.
func near(got [3]uint8, c color.NRGBA, tol int) bool {
	for i, want := range []uint8{c.R, c.G, c.B} {
		if d := int(got[i]) - int(want); d > tol || d < -tol {
			return false
		}
	}
	return true
}

// snapshot records every file and folder under root, except the folders
// named in skip, by mode, size, modification time and content hash.
func snapshot(t *testing.T, root string, skip ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && slices.Contains(skip, path) {
			return filepath.SkipDir
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		sum := ""
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			h := sha256.Sum256(b)
			sum = hex.EncodeToString(h[:])
		}
		out[path] = fmt.Sprintf("%v %d %d %s", fi.Mode(), fi.Size(), fi.ModTime().UnixNano(), sum)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// postFiles sends the files and fields as one job, writing each part's
// header by hand so that file names reach the server byte for byte.
func postFiles(t *testing.T, base string, files []upload, fields map[string]string) (int, []byte) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		if err := mw.WriteField(k, fields[k]); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range files {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", `form-data; name="files"; filename="`+f.name+`"`)
		h.Set("Content-Type", "application/octet-stream")
		w, err := mw.CreatePart(h)
		if err == nil {
			_, err = w.Write(f.data)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(base+"/api/jobs", mw.FormDataContentType(), &body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// request sends a body-less request and returns the status and body.
func request(t *testing.T, method, url string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// checkBadInput sends one case and checks the answer, the job's end and
// the video, then deletes the job.
func checkBadInput(t *testing.T, base, videos string, tc badInput) {
	status, body := postFiles(t, base, tc.files, tc.fields)
	if status != tc.status {
		t.Fatalf("POST /api/jobs = %d %s, want %d", status, body, tc.status)
	}
	if status != http.StatusAccepted {
		var e server.ErrorBody
		if err := json.Unmarshal(body, &e); err != nil || e.Code != tc.code || !strings.Contains(e.Error, tc.says) {
			t.Fatalf("refusal %s (%v), want code %s saying %q", body, err, tc.code, tc.says)
		}
		t.Logf("refused: %d %s", status, e.Error)
		return
	}
	var created struct{ ID string }
	if err := json.Unmarshal(body, &created); err != nil || created.ID == "" {
		t.Fatalf("POST /api/jobs answered %s (%v)", body, err)
	}
	defer func() {
		if code, b := request(t, http.MethodDelete, base+"/api/jobs/"+created.ID); code != http.StatusNoContent {
			t.Errorf("DELETE: %d %s", code, b)
		}
	}()
	_, jobs := follow(t, base, created.ID)
	last := jobs[len(jobs)-1]
	if tc.code != "" {
		if last.Status != server.StatusFailed || last.Error == nil || last.Error.Code != tc.code || !strings.Contains(last.Error.Error, tc.says) {
			t.Fatalf("job ended %s with %+v, want failed with code %s saying %q", last.Status, last.Error, tc.code, tc.says)
		}
		if code, b := request(t, http.MethodGet, base+"/api/jobs/"+created.ID+"/video"); code != http.StatusNotFound {
			t.Errorf("video of a failed job: %d %.100s, want 404", code, b)
		}
		t.Logf("failed: %s", last.Error.Error)
		return
	}
	if last.Status != server.StatusDone {
		t.Fatalf("job ended %s with %+v, want done", last.Status, last.Error)
	}
	code, data := request(t, http.MethodGet, base+last.Video)
	if code != http.StatusOK {
		t.Fatalf("GET video: %d", code)
	}
	out := filepath.Join(videos, created.ID+".mp4")
	if err := os.WriteFile(out, data, 0o600); err != nil {
		t.Fatal(err)
	}
	info, err := video.Probe(context.Background(), "ffprobe", out)
	if err != nil {
		t.Fatal(err)
	}
	if info.Codec != "h264" || info.PixFmt != "yuv420p" || info.Width != tc.w || info.Height != tc.h || info.Frames != tc.frames {
		t.Fatalf("ffprobe: %+v, want h264 yuv420p %dx%d with %d frames", info, tc.w, tc.h, tc.frames)
	}
	if tc.look != nil {
		tc.look(t, testimage.DecodeVideo(t, out, tc.w, tc.h), tc.w)
	}
}

// badInputs are the cases: files the test makes, hostile names, and
// option values out of range.
func badInputs(t *testing.T, sandbox string) []badInput {
	green := color.NRGBA{30, 200, 60, 255}
	greenPNG := testimage.PNG(t, testimage.Solid(32, 16, green))
	quadrants := testimage.Quadrants(64, 32)
	jpg := testimage.JPEG(t, quadrants)
	one := func(name string, data []byte) []upload { return []upload{{name, data}} }
	named := func(label, name string) badInput {
		return badInput{name: "name " + label, files: one(name, greenPNG), status: 202, w: 32, h: 16, frames: 1, look: solid(green)}
	}
	option := func(field, value string) badInput {
		return badInput{name: field + " " + value, files: one("a.png", greenPNG), fields: map[string]string{field: value},
			status: 400, code: img2vid.EINVALID, says: field}
	}

	var orientations []upload
	for o := 1; o <= 8; o++ {
		orientations = append(orientations, upload{fmt.Sprintf("o%d.jpg", o), testimage.OrientedJPEG(t, quadrants, o)})
	}
	var many []upload
	for i := range 1000 {
		v := uint8(i % 2 * 255) // alternate black and white, so order and count both show
		many = append(many, upload{fmt.Sprintf("tiny_%d.png", i), testimage.PNG(t, testimage.Solid(16, 16, color.NRGBA{v, v, v, 255}))})
	}
	alternating := func(t *testing.T, frames [][]byte, w int) {
		t.Helper()
		for i, f := range frames {
			v := uint8(i % 2 * 255)
			if got := testimage.RGBAt(f, w, 8, 8); !near(got, color.NRGBA{v, v, v, 255}, 40) {
				t.Fatalf("frame %d: %v, want %d grey: frames out of order or lost", i, got, v)
			}
		}
	}
	red := color.NRGBA{220, 30, 30, 255}

	return []badInput{
		// Cut inside the scan, past the header: it reads as an image up
		// to its pixels. Not plain (no end-of-image marker), it is never
		// given to ffmpeg whole (which would fill in grey), upright or not.
		{name: "truncated JPEG", files: one("cut.jpg", jpg[:len(jpg)-40]), status: 202, code: img2vid.EINVALID, says: "cannot decode jpeg"},
		{name: "truncated rotated JPEG", files: one("cut.jpg", testimage.WithOrientation(jpg[:len(jpg)-40], 6)),
			status: 202, code: img2vid.EINVALID, says: "cannot decode jpeg"},
		{name: "JPEG cut inside its header", files: one("cut.jpg", jpg[:len(jpg)/3]), status: 400, code: img2vid.EINVALID, says: "not a readable image"},
		{name: "PNG with a bad CRC", files: one("crc.png", testimage.BadCRC(t, greenPNG)), status: 202, code: img2vid.EINVALID, says: "checksum"},
		{name: "text named .jpg", files: one("notes.jpg", []byte("these are my holiday notes, not a picture\n")),
			status: 400, code: img2vid.EINVALID, says: "not a readable image"},
		{name: "zero bytes", files: one("empty.png", nil), status: 400, code: img2vid.EINVALID, says: "empty"},
		{name: "1x1", files: one("dot.png", testimage.PNG(t, testimage.Solid(1, 1, green))), status: 202, w: 2, h: 2, frames: 1},
		{name: "decompression bomb header", files: one("bomb.png", testimage.PNGHeaderOnly(50000, 50000)),
			status: 413, code: img2vid.ETOOLARGE, says: "pixels=1000000"},
		{name: "CMYK JPEG", files: one("cmyk.jpg", testimage.CMYKJPEG()), status: 202, w: 64, h: 32, frames: 1, look: upright},
		{name: "16-bit PNG", files: one("deep.png", testimage.PNG(t, testimage.Deep(32, 16, red))), status: 202, w: 32, h: 16, frames: 1, look: solid(red)},
		{name: "grayscale PNG", files: one("gray.png", testimage.PNG(t, testimage.Gray(32, 16, 90))),
			status: 202, w: 32, h: 16, frames: 1, look: solid(color.NRGBA{90, 90, 90, 255})},
		{name: "paletted PNG", files: one("pal.png", testimage.PNG(t, testimage.Paletted(32, 16, red))), status: 202, w: 32, h: 16, frames: 1, look: solid(red)},
		{name: "animated GIF: its first frame", files: one("anim.gif", testimage.AnimatedGIF(t, 32, 16, red, green, color.NRGBA{0, 0, 255, 255})),
			status: 202, w: 32, h: 16, frames: 1, look: solid(red)},
		{name: "every EXIF orientation", files: orientations, status: 202, w: 64, h: 32, frames: 8, look: upright},
		named("../ to a file beside the work folder", "../../outside.png"),
		named("../ to a sentinel file", "../../sentinel/keep.txt"),
		named("absolute", filepath.Join(sandbox, "sentinel", "absolute.png")),
		named("with backslashes", `..\..\windows.png`),
		// A NUL cannot be in a MIME header: the part is refused as malformed.
		{name: "name with NUL", files: one("nul\x00byte.png", greenPNG), status: 400, code: img2vid.EINVALID, says: "malformed MIME header"},
		named("8000 bytes long", strings.Repeat("long", 2000)+".png"),
		named("non-ASCII", "кадр 01 🐟 ünïcödé.png"),
		{name: "1000 tiny images", files: many, fields: map[string]string{"fps": "50"}, status: 202, w: 16, h: 16, frames: 1000, look: alternating},
		option("fps", "0"),
		option("fps", "-1"),
		option("fps", "1e9"),
		option("fps", "NaN"),
		option("fps", "Inf"),
		option("fps_out", "-5"),
		option("interpolate", "0"),
		option("interpolate", "1000"),
		option("interpolate", "2.5"),
		option("quality", "99"),
		option("size", "0x0"),
		option("size", "100000x100000"),
		option("format", "../../x"),
		option("fit", "' ; rm -rf /"),
	}
}

// Every hostile or odd upload gets a correct video or a clear error, the
// server keeps serving, and when the jobs are deleted nothing is left: no
// file in the work or temp folder, no ffmpeg process, and nothing outside
// the job folders touched.
func TestBadInputEndToEnd(t *testing.T) {
	testenv.NeedFFmpeg(t)
	videos := t.TempDir()
	sandbox := t.TempDir()
	work, tmp := filepath.Join(sandbox, "jobs"), filepath.Join(sandbox, "tmp")
	for _, d := range []string{work, tmp, filepath.Join(sandbox, "sentinel", "sub")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	testimage.Write(t, filepath.Join(sandbox, "outside.png"), []byte("a file beside the work folder"))
	testimage.Write(t, filepath.Join(sandbox, "sentinel", "keep.txt"), []byte("keep me"))
	testimage.Write(t, filepath.Join(sandbox, "sentinel", "sub", "deep.png"), testimage.PNG(t, testimage.Solid(4, 4, color.NRGBA{1, 2, 3, 255})))
	// Anything the pipeline or ffmpeg puts in the temp folder lands here.
	t.Setenv("TMPDIR", tmp)
	cases := badInputs(t, sandbox)
	before := snapshot(t, sandbox, work, tmp)
	kids := proctest.Children(t)

	s := newServer(t, func(c *server.Config) {
		c.WorkDir = work
		c.Limits.Pixels = 1_000_000
	})
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { checkBadInput(t, ts.URL, videos, tc) })
		if code, b := request(t, http.MethodGet, ts.URL+"/healthz"); code != http.StatusOK {
			t.Fatalf("after %q, /healthz = %d %s", tc.name, code, b)
		}
	}

	for dir, what := range map[string]string{work: "work", tmp: "temp"} {
		if left, err := os.ReadDir(dir); err != nil || len(left) != 0 {
			t.Errorf("%s folder holds %v (%v) once every job is deleted", what, names(left), err)
		}
	}
	if now := proctest.Children(t); !slices.Equal(now, kids) {
		t.Errorf("child processes before %v, after %v: a process (ffmpeg?) was left behind", kids, now)
	}
	after := snapshot(t, sandbox, work, tmp)
	for path, was := range before {
		if now, ok := after[path]; !ok {
			t.Errorf("%s was removed", path)
		} else if now != was {
			t.Errorf("%s changed: %s -> %s", path, was, now)
		}
	}
	for path := range after {
		if _, ok := before[path]; !ok {
			t.Errorf("%s appeared outside the job folders", path)
		}
	}
}

// names lists directory entries by name, for messages.
func names(entries []os.DirEntry) []string {
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}
