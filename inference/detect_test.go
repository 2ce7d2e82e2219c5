package inference

import (
	"context"
	"encoding/json"
	"errors"
	"image"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/img2vid/img2vid"
	"github.com/img2vid/img2vid/internal/testimage"
)

var detectLayouts = []string{"squares-yolox", "squares-yolov5", "squares-yolov8"}

// squaresScene is a 256x192 frame with three squares on even pixels, so
// that the test models' 128x128 input (half the size, letterboxed) holds
// them exactly, and the boxes they should give, best first.
func squaresScene() (*image.NRGBA, []img2vid.Detection) {
	sq := []testimage.Square{
		{Class: "red", Value: 255, Box: image.Rect(40, 60, 80, 100)},
		{Class: "green", Value: 230, Box: image.Rect(150, 20, 200, 70)},
		{Class: "blue", Value: 150, Box: image.Rect(170, 120, 236, 180)},
	}
	want := []img2vid.Detection{
		{Class: "red", Score: 1, Box: [4]float64{40, 60, 80, 100}},
		{Class: "green", Score: 230.0 / 255, Box: [4]float64{150, 20, 200, 70}},
		{Class: "blue", Score: 150.0 / 255, Box: [4]float64{170, 120, 236, 180}},
	}
	return testimage.Squares(256, 192, sq...), want
}

// sameDetections fails unless got and want hold the same classes in the
// same order, boxes within 1 pixel and scores within 0.01.
func sameDetections(t *testing.T, got, want []img2vid.Detection) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d detections %+v, want %d %+v", len(got), got, len(want), want)
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Class != w.Class || math.Abs(g.Score-w.Score) > 0.01 {
			t.Errorf("detection %d: %s %.3f, want %s %.3f", i, g.Class, g.Score, w.Class, w.Score)
		}
		for k := range g.Box {
			if math.Abs(g.Box[k]-w.Box[k]) > 1 {
				t.Errorf("detection %d (%s): box %v, want %v within 1 px", i, g.Class, g.Box, w.Box)
				break
			}
		}
	}
}

func detectorFor(t *testing.T, r *Runtime, name string) img2vid.Detector {
	t.Helper()
	d, err := r.Detector(name)
	if err != nil {
		t.Fatalf("Detector(%s): %v", name, err)
	}
	return d
}

// TestDetectLayouts: every decoder layout finds the squares within 1 pixel
// of where they are, each once although the model gives every box two or
// three times (non-maximum suppression), with the class named by the
// manifest's labels whatever the colour order.
func TestDetectLayouts(t *testing.T) {
	r := openRuntime(t, testimage.DetectModels(t))
	frame, want := squaresScene()
	for _, name := range detectLayouts {
		t.Run(name, func(t *testing.T) {
			got, err := detectorFor(t, r, name).Detect(context.Background(), frame, img2vid.DetectParams{})
			if err != nil {
				t.Fatal(err)
			}
			sameDetections(t, got, want)
		})
	}
}

// TestDetectOffCentre: a frame of another aspect ratio, letterboxed the
// other way, and not at the model's scale, still maps back to frame pixels.
func TestDetectOffCentre(t *testing.T) {
	r := openRuntime(t, testimage.DetectModels(t))
	// 96x192: scaled by 2/3 to 64x128, padded left and right (or right
	// only). Squares on multiples of 3 land on whole input pixels.
	frame := testimage.Squares(96, 192,
		testimage.Square{Class: "green", Value: 200, Box: image.Rect(12, 30, 60, 90)},
		testimage.Square{Class: "red", Value: 180, Box: image.Rect(30, 120, 90, 186)})
	want := []img2vid.Detection{
		{Class: "green", Score: 200.0 / 255, Box: [4]float64{12, 30, 60, 90}},
		{Class: "red", Score: 180.0 / 255, Box: [4]float64{30, 120, 90, 186}},
	}
	for _, name := range detectLayouts {
		t.Run(name, func(t *testing.T) {
			got, err := detectorFor(t, r, name).Detect(context.Background(), frame, img2vid.DetectParams{})
			if err != nil {
				t.Fatal(err)
			}
			sameDetections(t, got, want)
		})
	}
}

// TestDetectThresholds: a higher score threshold drops the dim square, an
// IoU threshold of 1 keeps the model's duplicates, a class filter keeps
// only its classes, and an unknown class is an error naming it.
func TestDetectThresholds(t *testing.T) {
	r := openRuntime(t, testimage.DetectModels(t))
	frame, want := squaresScene()
	dups := map[string]int{"squares-yolox": 3, "squares-yolov5": 2, "squares-yolov8": 2}
	for _, name := range detectLayouts {
		t.Run(name, func(t *testing.T) {
			d := detectorFor(t, r, name)
			ctx := context.Background()
			got, err := d.Detect(ctx, frame, img2vid.DetectParams{Score: 0.7})
			if err != nil {
				t.Fatal(err)
			}
			sameDetections(t, got, want[:2])
			got, err = d.Detect(ctx, frame, img2vid.DetectParams{Score: 0.95})
			if err != nil {
				t.Fatal(err)
			}
			sameDetections(t, got, want[:1])
			got, err = d.Detect(ctx, frame, img2vid.DetectParams{IoU: 1})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 3*dups[name] {
				t.Errorf("with suppression off: %d boxes, want %d (3 squares x %d)", len(got), 3*dups[name], dups[name])
			}
			got, err = d.Detect(ctx, frame, img2vid.DetectParams{Classes: []string{"blue", "red"}})
			if err != nil {
				t.Fatal(err)
			}
			sameDetections(t, got, []img2vid.Detection{want[0], want[2]})
			_, err = d.Detect(ctx, frame, img2vid.DetectParams{Classes: []string{"fish"}})
			if err == nil || !strings.Contains(err.Error(), `"fish"`) || img2vid.ErrorCode(err) != img2vid.EINVALID {
				t.Errorf("unknown class: got %v, want an EINVALID error naming it", err)
			}
		})
	}
}

// TestDetectConcurrentBatches: frames detected at once (batched together
// where the batch is free) give what each gives alone.
func TestDetectConcurrentBatches(t *testing.T) {
	r := openRuntime(t, testimage.DetectModels(t))
	frames := make([]*image.NRGBA, 8)
	wants := make([][]img2vid.Detection, 8)
	for i := range frames {
		x := 8 * i
		frames[i] = testimage.Squares(128, 128, testimage.Square{Class: "red", Value: 255, Box: image.Rect(x, 10, x+20, 40)})
		wants[i] = []img2vid.Detection{{Class: "red", Score: 1, Box: [4]float64{float64(x), 10, float64(x + 20), 40}}}
	}
	for _, name := range detectLayouts {
		t.Run(name, func(t *testing.T) {
			d := detectorFor(t, r, name)
			got := make([][]img2vid.Detection, len(frames))
			errs := make([]error, len(frames))
			var wg sync.WaitGroup
			for i := range frames {
				wg.Go(func() { got[i], errs[i] = d.Detect(context.Background(), frames[i], img2vid.DetectParams{}) })
			}
			wg.Wait()
			for i := range frames {
				if errs[i] != nil {
					t.Fatal(errs[i])
				}
				sameDetections(t, got[i], wants[i])
			}
		})
	}
}

// TestDecodeBadValues: NaN and infinite values drop their row, and boxes
// outside the frame are clipped to it or, with nothing left, dropped.
func TestDecodeBadValues(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	// yolov5 rows of cx, cy, w, h, obj, c0, c1 on a 100x100 input.
	out := []float32{
		50, 50, 20, 20, 0.9, 1, 0, // fine
		nan, 50, 20, 20, 0.9, 1, 0, // NaN box
		50, 50, 20, 20, nan, 1, 0, // NaN score
		50, 50, inf, 20, 0.9, 0, 1, // infinite size
		95, 10, 30, 30, 0.8, 0, 1, // half outside: clipped
		300, 300, 20, 20, 0.8, 0, 1, // wholly outside: dropped
		-50, 50, 20, 20, 0.8, 1, 0, // wholly outside: dropped
	}
	cands := decode(DecoderYOLOv5, out, 2, 100, 100, 0.25, nil)
	if len(cands) != 4 {
		t.Fatalf("decoded %d candidates %+v, want the 4 with finite values", len(cands), cands)
	}
	lb := letterboxed{ratio: 1}
	dets := lb.toFrame(suppress(cands, 0.45, false), []string{"a", "b"}, 100, 100)
	want := []img2vid.Detection{
		{Class: "a", Score: 0.9, Box: [4]float64{40, 40, 60, 60}},
		{Class: "b", ClassID: 1, Score: 0.8, Box: [4]float64{80, 0, 100, 25}},
	}
	sameDetections(t, dets, want)
	// A model that gives nothing but NaN gives no boxes.
	all := slices.Repeat([]float32{nan}, 7*50)
	if c := decode(DecoderYOLOv8, all, 3, 100, 100, 0, nil); len(c) != 0 {
		t.Errorf("all-NaN output gave %d candidates", len(c))
	}
}

// TestSuppress: the lower-scored of two overlapping boxes of a class goes,
// boxes of another class stay unless suppression is class-agnostic.
func TestSuppress(t *testing.T) {
	c := []candidate{
		{box: [4]float32{0, 0, 10, 10}, score: 0.5, class: 0},
		{box: [4]float32{1, 0, 11, 10}, score: 0.9, class: 0},
		{box: [4]float32{1, 1, 11, 11}, score: 0.7, class: 1},
		{box: [4]float32{50, 50, 60, 60}, score: 0.6, class: 0},
	}
	got := suppress(slices.Clone(c), 0.45, false)
	if len(got) != 3 || got[0].score != 0.9 || got[1].score != 0.7 || got[2].score != 0.6 {
		t.Errorf("per class: %+v", got)
	}
	got = suppress(slices.Clone(c), 0.45, true)
	if len(got) != 2 || got[0].score != 0.9 || got[1].score != 0.6 {
		t.Errorf("agnostic: %+v", got)
	}
}

// TestDetectManifestRefused: manifests that do not fit their model are
// refused at load, naming the field.
func TestDetectManifestRefused(t *testing.T) {
	src := testimage.DetectModels(t)
	tests := []struct {
		name, model, edit, field, says string
	}{
		{"decoder does not fit", "squares-yolov8", `"decoder": "yolox"`, "decoder", "yolov8"},
		{"yolov5 read as yolov8", "squares-yolov5", `"decoder": "yolov8"`, "labels", "classes"},
		{"fewer labels", "squares-yolox", `"labels": ["blue", "green"]`, "labels", "3 classes"},
		{"more labels", "squares-yolox", `"labels": ["blue", "green", "red", "cyan"]`, "labels", "4 labels"},
		{"score out of range", "squares-yolov5", `"score_threshold": 1.5`, "score_threshold", "0 to 1"},
		{"iou out of range", "squares-yolov5", `"iou_threshold": -0.1`, "iou_threshold", "0 to 1"},
		{"unknown class filter", "squares-yolov5", `"classes": ["fish"]`, "classes[0]", `"fish"`},
		{"bad decoder", "squares-yolov5", `"decoder": "ssd"`, "decoder", `"ssd"`},
		{"bad letterbox", "squares-yolov5", `"letterbox": "middle"`, "letterbox", `"middle"`},
		{"pad above 255", "squares-yolov5", `"pad": 300`, "pad", "0 to 255"},
		{"repeated label", "squares-yolov5", `"labels": ["red", "red", "blue"]`, "labels[1]", "repeats"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			data, err := os.ReadFile(filepath.Join(src, tt.model+".json"))
			if err != nil {
				t.Fatal(err)
			}
			m := editJSON(t, data, tt.edit)
			writeFile(t, filepath.Join(dir, tt.model+".json"), m)
			if err := os.Symlink(filepath.Join(src, tt.model+".onnx"), filepath.Join(dir, tt.model+".onnx")); err != nil {
				t.Fatal(err)
			}
			r := openRuntime(t, dir)
			for _, info := range r.ListModels() {
				if info.Name != tt.model {
					continue
				}
				want := tt.model + ".json: " + tt.field + ": "
				if info.Available || !strings.Contains(info.Reason, want) || !strings.Contains(info.Reason, tt.says) {
					t.Errorf("reason %q, want it to contain %q and %q", info.Reason, want, tt.says)
				}
				return
			}
			t.Fatalf("%s not listed", tt.model)
		})
	}
}

// TestDetectLabelsFile: labels may come from a file beside the manifest,
// and then must match the model's classes too.
func TestDetectLabelsFile(t *testing.T) {
	src := testimage.DetectModels(t)
	for _, tc := range []struct {
		labels string
		ok     bool
	}{{"red\ngreen\nblue\n", true}, {"red\r\ngreen\r\n", false}} {
		dir := t.TempDir()
		data, err := os.ReadFile(filepath.Join(src, "squares-yolov5.json"))
		if err != nil {
			t.Fatal(err)
		}
		m := editJSON(t, data, `"labels_file": "squares.txt", "labels": null`)
		writeFile(t, filepath.Join(dir, "squares-yolov5.json"), m)
		writeFile(t, filepath.Join(dir, "squares.txt"), tc.labels)
		if err := os.Symlink(filepath.Join(src, "squares-yolov5.onnx"), filepath.Join(dir, "squares-yolov5.onnx")); err != nil {
			t.Fatal(err)
		}
		r := openRuntime(t, dir)
		info := r.ListModels()[len(r.ListModels())-1]
		if info.Available != tc.ok {
			t.Errorf("labels %q: available %v (%s), want %v", tc.labels, info.Available, info.Reason, tc.ok)
		}
		if tc.ok && !slices.Equal(info.Labels, []string{"red", "green", "blue"}) {
			t.Errorf("labels %v", info.Labels)
		}
		if !tc.ok && !strings.Contains(info.Reason, "labels_file: ") {
			t.Errorf("reason %q does not name labels_file", info.Reason)
		}
	}
}

// editJSON returns the manifest data with the fields of edit (the inside
// of a JSON object) set; a field set to null is removed.
func editJSON(t *testing.T, data []byte, edit string) string {
	t.Helper()
	var m, e map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte("{"+edit+"}"), &e); err != nil {
		t.Fatal(err)
	}
	for k, v := range e {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// TestParseDetectManifest: a detect manifest's defaults, and its fields
// refused on other kinds and it refusing the frame-only ones.
func TestParseDetectManifest(t *testing.T) {
	m, err := ParseManifest([]byte(`{"name":"d","kind":"detect","file":"d.onnx","decoder":"yolov8","labels":["a"]}`))
	if err != nil {
		t.Fatal(err)
	}
	if m.Letterbox != LetterboxCenter || *m.Pad != DefaultPad || *m.ScoreThreshold != DefaultScoreThreshold ||
		*m.IoUThreshold != DefaultIoUThreshold || m.NMS != NMSPerClass {
		t.Errorf("defaults not filled: %+v", m)
	}
	for _, tc := range []struct{ json, field string }{
		{`{"name":"a","kind":"frame","file":"a.onnx","decoder":"yolox"}`, "decoder"},
		{`{"name":"a","kind":"interpolate","file":"a.onnx","labels":["x"]}`, "labels"},
		{`{"name":"a","kind":"detect","file":"a.onnx","labels":["x"]}`, "decoder"},
		{`{"name":"a","kind":"detect","file":"a.onnx","decoder":"yolox"}`, "labels"},
		{`{"name":"a","kind":"detect","file":"a.onnx","decoder":"yolox","labels":["x"],"labels_file":"l.txt"}`, "labels_file"},
		{`{"name":"a","kind":"detect","file":"a.onnx","decoder":"yolox","labels_file":"../l.txt"}`, "labels_file"},
		{`{"name":"a","kind":"detect","file":"a.onnx","decoder":"yolox","labels":["x"],"scale":2}`, "scale"},
		{`{"name":"a","kind":"detect","file":"a.onnx","decoder":"yolox","labels":["x"],"nms":"soft"}`, "nms"},
		{`{"name":"a","kind":"detect","file":"a.onnx","decoder":"yolox","labels":[""]}`, "labels[0]"},
	} {
		_, err := ParseManifest([]byte(tc.json))
		var me *ManifestError
		if !errors.As(err, &me) || me.Field != tc.field {
			t.Errorf("%s: got %v, want an error naming %s", tc.json, err, tc.field)
		}
	}
}
