package pipeline_test

import (
	"context"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/img2vid/img2vid"
	"github.com/img2vid/img2vid/ingest"
	"github.com/img2vid/img2vid/internal/testenv"
	"github.com/img2vid/img2vid/internal/testimage"
	"github.com/img2vid/img2vid/pipeline"
	"github.com/img2vid/img2vid/video"
)

func probe(t *testing.T, file string) video.Info {
	t.Helper()
	info, err := video.Probe(context.Background(), "ffprobe", file)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// leftovers lists what is in dir besides the names expected.
func leftovers(t *testing.T, dir string, expected ...string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var extra []string
outer:
	for _, e := range entries {
		for _, x := range expected {
			if e.Name() == x {
				continue outer
			}
		}
		extra = append(extra, e.Name())
	}
	return extra
}

func convert(t *testing.T, p *pipeline.Pipeline, inputs []string, out string, opts img2vid.Options) (img2vid.Result, error) {
	t.Helper()
	var last img2vid.Progress
	res, err := p.Convert(context.Background(), inputs, out, opts, func(pr img2vid.Progress) { last = pr })
	if err == nil && (last.Stage != img2vid.StageDone || last.Done != res.Frames || last.Total != res.Frames) {
		t.Errorf("last progress %+v, want done with %d/%d frames", last, res.Frames, res.Frames)
	}
	return res, err
}

// The seed's own walkthrough, frames at 5 fps in every output format,
// checked by ffprobe: on a generated clip, and on the 50 aquarium frames of
// the extended set.
func TestClipFormats(t *testing.T) {
	testenv.NeedFFmpeg(t)
	tests := []struct {
		format, codec, pixfmt string
	}{
		{img2vid.FormatMP4, "h264", "yuv420p"},
		{img2vid.FormatWebM, "vp9", "yuv420p"},
		{img2vid.FormatGIF, "gif", "bgra"}, // ffmpeg decodes GIF palettes to bgra
	}
	for _, src := range testimage.Sources(20, 320, 180) {
		t.Run(src.Name, func(t *testing.T) {
			inputs, err := ingest.List(src.Dir(t), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, tt := range tests {
				t.Run(tt.format, func(t *testing.T) {
					if testing.Short() && tt.format != img2vid.FormatMP4 {
						t.Skip("slow encoder; runs without -short")
					}
					dir := t.TempDir()
					out := filepath.Join(dir, "clip."+tt.format)
					res, err := convert(t, &pipeline.Pipeline{}, inputs, out, img2vid.DefaultOptions())
					if err != nil {
						t.Fatal(err)
					}
					seconds := float64(src.Frames) / 5
					info := probe(t, out)
					if info.Codec != tt.codec || info.PixFmt != tt.pixfmt || info.Width != src.Width || info.Height != src.Height || info.Frames != src.Frames {
						t.Errorf("probe %+v, want %s %s %dx%d with %d frames", info, tt.codec, tt.pixfmt, src.Width, src.Height, src.Frames)
					}
					if math.Abs(info.FPS-5) > 0.01 || math.Abs(info.Duration-seconds) > 0.25 {
						t.Errorf("probe says %.3f fps and %.3f s, want 5 fps and %.0f s", info.FPS, info.Duration, seconds)
					}
					if res.Frames != src.Frames || res.Inputs != src.Frames || res.Duration != seconds {
						t.Errorf("result %+v", res)
					}
					if extra := leftovers(t, dir, filepath.Base(out)); extra != nil {
						t.Errorf("left behind: %v", extra)
					}
				})
			}
		})
	}
}

func TestOddSizeIsPaddedToEven(t *testing.T) {
	testenv.NeedFFmpeg(t)
	dir := t.TempDir()
	var inputs []string
	for i := 0; i < 3; i++ {
		p := filepath.Join(dir, fmt.Sprintf("f%d.png", i))
		testimage.Write(t, p, testimage.PNG(t, testimage.Solid(641, 481, color.NRGBA{200, 200, 200, 255})))
		inputs = append(inputs, p)
	}
	out := filepath.Join(dir, "odd.mp4")
	if _, err := convert(t, &pipeline.Pipeline{}, inputs, out, img2vid.DefaultOptions()); err != nil {
		t.Fatal(err)
	}
	if info := probe(t, out); info.Width != 642 || info.Height != 482 || info.Frames != 3 {
		t.Errorf("probe %+v, want 642x482 and 3 frames", info)
	}
}

func TestMixedSizesAreLetterboxed(t *testing.T) {
	testenv.NeedFFmpeg(t)
	dir := t.TempDir()
	white := color.NRGBA{255, 255, 255, 255}
	sizes := [][2]int{{320, 240}, {240, 320}, {640, 160}, {320, 240}}
	var inputs []string
	for i, s := range sizes {
		p := filepath.Join(dir, fmt.Sprintf("f%d.png", i))
		testimage.Write(t, p, testimage.PNG(t, testimage.Solid(s[0], s[1], white)))
		inputs = append(inputs, p)
	}
	out := filepath.Join(dir, "mixed.mp4")
	if _, err := convert(t, &pipeline.Pipeline{}, inputs, out, img2vid.DefaultOptions()); err != nil {
		t.Fatal(err)
	}
	frames := testimage.DecodeVideo(t, out, 320, 240)
	if len(frames) != len(sizes) {
		t.Fatalf("%d frames, want %d: none may be dropped", len(frames), len(sizes))
	}
	isWhite := func(c [3]uint8) bool { return c[0] > 230 && c[1] > 230 && c[2] > 230 }
	isBlack := func(c [3]uint8) bool { return c[0] < 25 && c[1] < 25 && c[2] < 25 }
	// Frame 1 (portrait) is pillarboxed: 180 px wide in the middle.
	if c := testimage.RGBAt(frames[1], 320, 20, 120); !isBlack(c) {
		t.Errorf("portrait frame: left bar is %v, want black", c)
	}
	if c := testimage.RGBAt(frames[1], 320, 160, 120); !isWhite(c) {
		t.Errorf("portrait frame: centre is %v, want white", c)
	}
	// Frame 2 (4:1) is letterboxed: 80 px tall in the middle.
	if c := testimage.RGBAt(frames[2], 320, 160, 20); !isBlack(c) {
		t.Errorf("wide frame: top bar is %v, want black", c)
	}
	if c := testimage.RGBAt(frames[2], 320, 160, 120); !isWhite(c) {
		t.Errorf("wide frame: centre is %v, want white", c)
	}
}

// Photos from a camera held sideways carry an EXIF orientation; the video
// must show them upright (checked on the pixels, not the metadata).
func TestEXIFOrientationsComeOutUpright(t *testing.T) {
	testenv.NeedFFmpeg(t)
	dir := t.TempDir()
	upright := testimage.Quadrants(128, 64)
	var inputs []string
	for o := 1; o <= 8; o++ {
		p := filepath.Join(dir, fmt.Sprintf("o%d.jpg", o))
		testimage.Write(t, p, testimage.OrientedJPEG(t, upright, o))
		inputs = append(inputs, p)
	}
	out := filepath.Join(dir, "upright.mp4")
	opts := img2vid.DefaultOptions()
	opts.Quality = 10
	if _, err := convert(t, &pipeline.Pipeline{}, inputs, out, opts); err != nil {
		t.Fatal(err)
	}
	frames := testimage.DecodeVideo(t, out, 128, 64)
	if len(frames) != 8 {
		t.Fatalf("%d frames, want 8", len(frames))
	}
	for i, f := range frames {
		for _, p := range []struct {
			x, y      int
			left, top bool
		}{{24, 12, true, true}, {104, 12, false, true}, {24, 52, true, false}, {104, 52, false, false}} {
			want := testimage.QuadrantColor(p.left, p.top)
			got := testimage.RGBAt(f, 128, p.x, p.y)
			for c := 0; c < 3; c++ {
				if d := int(got[c]) - int([3]uint8{want.R, want.G, want.B}[c]); d > 48 || d < -48 {
					t.Errorf("orientation %d: pixel (%d,%d) = %v, want about %v", i+1, p.x, p.y, got, want)
					break
				}
			}
		}
	}
}

// Frames named frame_1 ... frame_12 play in that order, not frame_1,
// frame_10, frame_11, frame_12, frame_2.
func TestNaturalOrderEndToEnd(t *testing.T) {
	testenv.NeedFFmpeg(t)
	dir := t.TempDir()
	for i := 1; i <= 12; i++ {
		v := uint8(i * 20)
		testimage.Write(t, filepath.Join(dir, fmt.Sprintf("frame_%d.png", i)), testimage.PNG(t, testimage.Solid(64, 64, color.NRGBA{v, v, v, 255})))
	}
	inputs, err := ingest.List(dir, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "order.mp4")
	opts := img2vid.DefaultOptions()
	opts.Quality = 5
	if _, err := convert(t, &pipeline.Pipeline{}, inputs, out, opts); err != nil {
		t.Fatal(err)
	}
	frames := testimage.DecodeVideo(t, out, 64, 64)
	if len(frames) != 12 {
		t.Fatalf("%d frames, want 12", len(frames))
	}
	for i, f := range frames {
		want := (i + 1) * 20
		if got := int(testimage.RGBAt(f, 64, 32, 32)[0]); got < want-6 || got > want+6 {
			t.Errorf("frame %d has grey %d, want about %d (frame_%d)", i, got, want, i+1)
		}
	}
}

// A file that cannot be decoded stops the job with an error naming it, on
// both the decoding path and the JPEG pass-through path, and leaves no
// output, not even a partial one.
func TestCorruptImageLeavesNothing(t *testing.T) {
	testenv.NeedFFmpeg(t)
	good := testimage.JPEG(t, testimage.Quadrants(256, 128))
	camera := testimage.JPEG(t, testimage.Photo(640, 360))
	// Damage in the middle of the scan data keeps the markers intact: only
	// decoding finds it.
	damaged := append([]byte(nil), camera...)
	for i := len(camera) / 2; i < len(camera)/2+400; i++ {
		damaged[i] = 0x55
	}
	for _, tc := range []struct {
		name  string
		other []byte // the valid neighbours: same-size JPEGs pass through
		bad   []byte
		text  string
	}{
		{"truncated: not plain, so decoded", good, good[:len(good)-300], "f1.jpg: cannot decode jpeg"},
		{"pass-through, damaged scan data", camera, damaged, "f1.jpg: cannot decode jpeg"},
		{"decoded, truncated", testimage.WithOrientation(good, 6), testimage.WithOrientation(good[:len(good)-300], 6), "f1.jpg: cannot decode jpeg"},
		{"not an image", good, []byte("<html>oops</html>"), "f1.jpg: not a readable image"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			inputs := []string{filepath.Join(dir, "f0.jpg"), filepath.Join(dir, "f1.jpg"), filepath.Join(dir, "f2.jpg")}
			testimage.Write(t, inputs[0], tc.other)
			testimage.Write(t, inputs[1], tc.bad)
			testimage.Write(t, inputs[2], tc.other)
			outDir := t.TempDir()
			_, err := convert(t, &pipeline.Pipeline{}, inputs, filepath.Join(outDir, "v.mp4"), img2vid.DefaultOptions())
			if img2vid.ErrorCode(err) != img2vid.EINVALID || !strings.Contains(err.Error(), tc.text) {
				t.Errorf("got %v, want an invalid-input error containing %q", err, tc.text)
			}
			if extra := leftovers(t, outDir); extra != nil {
				t.Errorf("left behind: %v", extra)
			}
		})
	}
}

func TestDuplicates(t *testing.T) {
	testenv.NeedFFmpeg(t)
	dir := t.TempDir()
	a := testimage.PNG(t, testimage.Solid(64, 64, color.NRGBA{10, 10, 10, 255}))
	b := testimage.PNG(t, testimage.Solid(64, 64, color.NRGBA{250, 250, 250, 255}))
	var inputs []string
	for i, data := range [][]byte{a, a, b, b, b, a} {
		p := filepath.Join(dir, fmt.Sprintf("f%d.png", i))
		testimage.Write(t, p, data)
		inputs = append(inputs, p)
	}
	for _, dedupe := range []bool{false, true} {
		opts := img2vid.DefaultOptions()
		opts.Dedupe = dedupe
		out := filepath.Join(t.TempDir(), "d.mp4")
		res, err := convert(t, &pipeline.Pipeline{}, inputs, out, opts)
		if err != nil {
			t.Fatal(err)
		}
		want := 6
		if dedupe {
			want = 3
		}
		if res.Duplicates != 3 || res.Frames != want || probe(t, out).Frames != want {
			t.Errorf("dedupe=%v: %d duplicates and %d frames, want 3 and %d", dedupe, res.Duplicates, res.Frames, want)
		}
	}
}

// Canceling a job kills ffmpeg and removes the partial file.
func TestCancelStopsTheJob(t *testing.T) {
	testenv.NeedFFmpeg(t)
	for _, src := range testimage.Sources(50, 320, 180) {
		t.Run(src.Name, func(t *testing.T) {
			inputs, err := ingest.List(src.Dir(t), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			var many []string
			for i := 0; i < 10; i++ {
				many = append(many, inputs...)
			}
			dir := t.TempDir()
			ctx, cancel := context.WithCancel(context.Background())
			opts := img2vid.DefaultOptions()
			opts.Preset = "medium"
			start := time.Now()
			_, err = (&pipeline.Pipeline{}).Convert(ctx, many, filepath.Join(dir, "v.mp4"), opts, func(p img2vid.Progress) {
				if p.Done == 20 {
					cancel()
				}
			})
			if img2vid.ErrorCode(err) != img2vid.ECANCELED {
				t.Fatalf("got %v, want canceled", err)
			}
			if el := time.Since(start); el > 30*time.Second {
				t.Errorf("cancel took effect only after %v", el)
			}
			if extra := leftovers(t, dir); extra != nil {
				t.Errorf("left behind: %v", extra)
			}
		})
	}
}

func TestBadRequestsFailBeforeWork(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "a.png")
	testimage.Write(t, img, testimage.PNG(t, testimage.Solid(8, 8, color.NRGBA{1, 2, 3, 255})))
	bad := img2vid.DefaultOptions()
	bad.FPS = 0
	withModel := img2vid.DefaultOptions()
	withModel.FrameModel = "sr"
	for _, tc := range []struct {
		name   string
		inputs []string
		opts   img2vid.Options
		code   string
	}{
		{"no inputs", nil, img2vid.DefaultOptions(), img2vid.EINVALID},
		{"fps 0", []string{img}, bad, img2vid.EINVALID},
		{"missing file", []string{filepath.Join(dir, "nope.png")}, img2vid.DefaultOptions(), img2vid.ENOTFOUND},
		{"model without runtime", []string{img}, withModel, img2vid.EUNAVAILABLE},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := (&pipeline.Pipeline{FFmpeg: "/nonexistent/ffmpeg"}).Convert(context.Background(), tc.inputs, filepath.Join(dir, "v.mp4"), tc.opts, nil)
			if img2vid.ErrorCode(err) != tc.code {
				t.Errorf("got %v (%s), want %s", err, img2vid.ErrorCode(err), tc.code)
			}
		})
	}
	_, err := (&pipeline.Pipeline{FFmpeg: "/nonexistent/ffmpeg"}).Convert(context.Background(), []string{img}, filepath.Join(dir, "v.mp4"), img2vid.DefaultOptions(), nil)
	if img2vid.ErrorCode(err) != img2vid.EUNAVAILABLE || !strings.Contains(err.Error(), "ffmpeg not found") {
		t.Errorf("missing ffmpeg: got %v", err)
	}
}
