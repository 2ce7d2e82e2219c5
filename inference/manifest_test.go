package inference

import (
	"context"
	"encoding/json"
	"errors"
	"image"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/img2vid/img2vid"
	"github.com/img2vid/img2vid/internal/testimage"
	"github.com/img2vid/img2vid/models"
	ort "github.com/yalue/onnxruntime_go"
)

func TestParseManifestDefaults(t *testing.T) {
	m, err := ParseManifest([]byte(`{"name": "sr-2x", "kind": "frame", "file": "sr-2x.onnx"}`))
	if err != nil {
		t.Fatal(err)
	}
	if m.Layout != LayoutNCHW || m.Channels != ChannelsRGB || !reflect.DeepEqual(m.Range, []float64{0, 1}) ||
		m.Multiple != 1 || m.TileOverlap == nil || *m.TileOverlap != DefaultTileOverlap || m.Scale != 0 {
		t.Errorf("defaults not filled: %+v", m)
	}
}

// TestParseManifestErrors: each mistake is an error naming its field.
func TestParseManifestErrors(t *testing.T) {
	tests := []struct{ name, json, field, says string }{
		{"empty", ``, "json", "empty"},
		{"bad JSON", `{"name": "a",`, "json", "bad JSON"},
		{"syntax", `{"name" "a"}`, "json", "bad JSON at byte"},
		{"not an object", `[1]`, "json", "object"},
		{"trailing data", `{"name":"a","kind":"frame","file":"a.onnx"} {}`, "json", "follows"},
		{"unknown field", `{"name":"a","kind":"frame","file":"a.onnx","scael":2}`, `"scael"`, "unknown field"},
		{"field name in another case", `{"Name":"a","kind":"frame","file":"a.onnx"}`, `"Name"`, "unknown field"},
		{"wrong type", `{"name":"a","kind":"frame","file":"a.onnx","scale":"2"}`, "scale", "want a number"},
		{"wrong type in array", `{"name":"a","kind":"frame","file":"a.onnx","range":[0,"1"]}`, "range", "number"},
		{"missing name", `{"kind":"frame","file":"a.onnx"}`, "name", "missing"},
		{"bad name", `{"name":"../x","kind":"frame","file":"a.onnx"}`, "name", "letters"},
		{"missing kind", `{"name":"a","file":"a.onnx"}`, "kind", "missing"},
		{"bad kind", `{"name":"a","kind":"video","file":"a.onnx"}`, "kind", `"video"`},
		{"missing file", `{"name":"a","kind":"frame"}`, "file", "missing"},
		{"file outside the folder", `{"name":"a","kind":"frame","file":"../a.onnx"}`, "file", "plain file name"},
		{"too many inputs", `{"name":"a","kind":"frame","file":"a.onnx","inputs":["x","y"]}`, "inputs", "takes 1 inputs"},
		{"interpolate needs three inputs", `{"name":"a","kind":"interpolate","file":"a.onnx","inputs":["x"]}`, "inputs", "takes 3 inputs"},
		{"empty tensor name", `{"name":"a","kind":"frame","file":"a.onnx","outputs":[""]}`, "outputs[0]", "empty"},
		{"bad layout", `{"name":"a","kind":"frame","file":"a.onnx","layout":"CHW"}`, "layout", `"CHW"`},
		{"bad channels", `{"name":"a","kind":"frame","file":"a.onnx","channels":"RGBA"}`, "channels", `"RGBA"`},
		{"range of one", `{"name":"a","kind":"frame","file":"a.onnx","range":[1]}`, "range", "two numbers"},
		{"range upside down", `{"name":"a","kind":"frame","file":"a.onnx","range":[1,0]}`, "range", "black below white"},
		{"negative scale", `{"name":"a","kind":"frame","file":"a.onnx","scale":-2}`, "scale", "1 to"},
		{"scaling interpolator", `{"name":"a","kind":"interpolate","file":"a.onnx","scale":2}`, "scale", "keeps the frame size"},
		{"bad multiple", `{"name":"a","kind":"frame","file":"a.onnx","multiple":-8}`, "multiple", "1 to"},
		{"negative overlap", `{"name":"a","kind":"frame","file":"a.onnx","tile_overlap":-1}`, "tile_overlap", "0 or more"},
		{"bad sha256", `{"name":"a","kind":"frame","file":"a.onnx","sha256":"abc"}`, "sha256", "64 hex digits"},
		{"motion on a frame model", `{"name":"a","kind":"frame","file":"a.onnx","motion":{"file":"m.onnx","outputs":["v"]}}`, "motion", "only an interpolate model"},
		{"motion without inputs", `{"name":"a","kind":"interpolate","file":"a.onnx","motion":{"file":"m.onnx","outputs":["v"]}}`, "inputs", "names its inputs"},
		{"motion file missing", `{"name":"a","kind":"interpolate","file":"a.onnx","inputs":["f0","f1","t"],"motion":{"outputs":["v"]}}`, "motion.file", "plain file name"},
		{"motion file outside", `{"name":"a","kind":"interpolate","file":"a.onnx","inputs":["f0","f1","t"],"motion":{"file":"../m.onnx","outputs":["v"]}}`, "motion.file", "plain file name"},
		{"motion in the main file", `{"name":"a","kind":"interpolate","file":"a.onnx","inputs":["f0","f1","t"],"motion":{"file":"a.onnx","outputs":["v"]}}`, "motion.file", "file of its own"},
		{"motion without outputs", `{"name":"a","kind":"interpolate","file":"a.onnx","inputs":["f0","f1","t"],"motion":{"file":"m.onnx"}}`, "motion.outputs", "missing"},
		{"motion output named as an input", `{"name":"a","kind":"interpolate","file":"a.onnx","inputs":["f0","f1","t"],"motion":{"file":"m.onnx","outputs":["t"]}}`, "motion.outputs[0]", "name of its own"},
		{"motion output twice", `{"name":"a","kind":"interpolate","file":"a.onnx","inputs":["f0","f1","t"],"motion":{"file":"m.onnx","outputs":["v","v"]}}`, "motion.outputs[1]", "name of its own"},
		{"bad motion sha256", `{"name":"a","kind":"interpolate","file":"a.onnx","inputs":["f0","f1","t"],"motion":{"file":"m.onnx","outputs":["v"],"sha256":"x"}}`, "motion.sha256", "64 hex digits"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseManifest([]byte(tt.json))
			var me *ManifestError
			if !errors.As(err, &me) {
				t.Fatalf("got %v, want a *ManifestError", err)
			}
			if me.Field != tt.field || !strings.Contains(err.Error(), tt.says) {
				t.Errorf("got field %q, %q; want field %q saying %q", me.Field, err, tt.field, tt.says)
			}
		})
	}
}

// TestCheckModel matches manifests against tensor descriptions as ONNX
// Runtime reports them.
func TestCheckModel(t *testing.T) {
	tensor := func(name string, dims ...int64) ort.InputOutputInfo {
		return ort.InputOutputInfo{Name: name, OrtValueType: ort.ONNXTypeTensor, DataType: ort.TensorElementDataTypeFloat, Dimensions: dims}
	}
	sr := []ort.InputOutputInfo{tensor("image", 1, 3, 360, 640)}
	srOut := []ort.InputOutputInfo{tensor("upscaled_image", 1, 3, 720, 1280)}
	frame := `{"name":"m","kind":"frame","file":"m.onnx"`
	tests := []struct {
		name, json string
		ins, outs  []ort.InputOutputInfo
		field      string // "" for success
		says       string
	}{
		{"fixed size read from the model", frame + `}`, sr, srOut, "", ""},
		{"wrong input name", frame + `,"inputs":["input"]}`, sr, srOut, "inputs[0]", `no input named "input"`},
		{"wrong output name", frame + `,"outputs":["out"]}`, sr, srOut, "outputs[0]", `no output named "out"`},
		{"wrong rank", frame + `}`, []ort.InputOutputInfo{tensor("image", 3, 360, 640)}, srOut, "inputs[0]", "rank 3"},
		{"wrong element type", frame + `}`, []ort.InputOutputInfo{{Name: "image", OrtValueType: ort.ONNXTypeTensor, DataType: ort.TensorElementDataTypeUint8, Dimensions: []int64{1, 3, 360, 640}}}, srOut, "inputs[0]", "want float32"},
		{"four channels", frame + `}`, []ort.InputOutputInfo{tensor("image", 1, 4, 360, 640)}, srOut, "inputs[0]", "4 channels"},
		{"NHWC declared for an NCHW model", frame + `,"layout":"NHWC"}`, sr, srOut, "inputs[0]", "layout NHWC"},
		{"two inputs", frame + `}`, append(sr, tensor("extra", 1)), srOut, "inputs", "has 2"},
		{"scale disagrees", frame + `,"scale":4}`, sr, srOut, "scale", "scales by 2"},
		{"uneven scale", frame + `}`, sr, []ort.InputOutputInfo{tensor("o", 1, 3, 720, 1920)}, "outputs[0]", "whole multiple"},
		{"overlap too large", frame + `,"tile_overlap":200}`, sr, srOut, "tile_overlap", "too large"},
		{"batch of 2", frame + `}`, []ort.InputOutputInfo{tensor("image", 2, 3, 360, 640)}, srOut, "inputs[0]", "batch size 2"},
		{"free size", frame + `,"multiple":8}`, []ort.InputOutputInfo{tensor("x", -1, 3, -1, -1)}, []ort.InputOutputInfo{tensor("y", -1, 3, -1, -1)}, "", ""},
		{"interpolate", `{"name":"b","kind":"interpolate","file":"b.onnx","inputs":["frame0","frame1","t"]}`,
			[]ort.InputOutputInfo{tensor("t", 1), tensor("frame0", 1, 3, -1, -1), tensor("frame1", 1, 3, -1, -1)}, []ort.InputOutputInfo{tensor("frame", 1, 3, -1, -1)}, "", ""},
		{"interpolate t of rank 2", `{"name":"b","kind":"interpolate","file":"b.onnx"}`,
			[]ort.InputOutputInfo{tensor("frame0", 1, 3, -1, -1), tensor("frame1", 1, 3, -1, -1), tensor("t", 1, 1)}, []ort.InputOutputInfo{tensor("frame", 1, 3, -1, -1)}, "inputs[2]", "rank 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseManifest([]byte(tt.json))
			if err != nil {
				t.Fatal(err)
			}
			s, err := checkModel(m, tt.ins, tt.outs)
			if tt.field == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				if tt.name == "fixed size read from the model" && (s.tileW != 640 || s.tileH != 360 || s.Scale != 2 || s.inputs[0] != "image" || s.output != "upscaled_image") {
					t.Errorf("spec %+v", s)
				}
				if tt.name == "interpolate" && !reflect.DeepEqual(s.inputs, []string{"frame0", "frame1", "t"}) {
					t.Errorf("inputs %v, want the manifest's order", s.inputs)
				}
				return
			}
			var me *ManifestError
			if !errors.As(err, &me) || me.Field != tt.field || !strings.Contains(err.Error(), tt.says) {
				t.Errorf("got %v; want field %q saying %q", err, tt.field, tt.says)
			}
		})
	}
}

// TestRegistryReportsWhy: the registry lists every model in the folder,
// loadable or not, and names the file and the field at fault.
func TestRegistryReportsWhy(t *testing.T) {
	dir := testimage.FrameModelDir(t) // sr2x: a 2x frame model, input "image"
	src := filepath.Join(dir, "sr2x.onnx")
	link := func(name string) {
		if err := os.Symlink(src, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	link("b.onnx")
	link("c.onnx")
	link("d.onnx")
	link("e.onnx")
	writeFile(t, filepath.Join(dir, "a.json"), `{"name":"a","kind":"frame","file":"missing.onnx"}`)
	writeFile(t, filepath.Join(dir, "b.json"), `{"name":"b","kind":"frame","file":"b.onnx","inputs":["input"]}`)
	writeFile(t, filepath.Join(dir, "c.json"), `{"name":"c","kind":"frame","file":"c.onnx","sha256":"`+strings.Repeat("0", 64)+`"}`)
	writeFile(t, filepath.Join(dir, "d.json"), `{"name":"d","kind":"interpolate","file":"d.onnx"}`)
	writeFile(t, filepath.Join(dir, "e.json"), `{"name":"e","kind":"frame","file":"e.onnx","scale":"2"}`)
	writeFile(t, filepath.Join(dir, "f.json"), `{"name":"g","kind":"frame","file":"b.onnx"}`)
	writeFile(t, filepath.Join(dir, "blend.json"), `{"name":"blend","kind":"frame","file":"b.onnx"}`)
	r := openRuntime(t, dir)
	want := map[string]string{
		"a":    "a.json: file: missing.onnx does not exist",
		"b":    `b.json: inputs[0]: the model has no input named "input"`,
		"c":    "c.json: sha256: the manifest says 0000",
		"d":    "d.json: inputs: kind interpolate takes 3 inputs, the model has 1",
		"e":    "e.json: scale: want a number",
		"f":    `f.json: name: "g" differs from the manifest's file name`,
		"sr2x": "",
	}
	seen := map[string]bool{}
	for _, m := range r.ListModels() {
		if m.Builtin {
			if m.Name == "blend" && !m.Available {
				t.Errorf("built-in blend: %s", m.Reason)
			}
			continue
		}
		seen[m.Name] = true
		if m.Name == "blend" {
			if m.Available || !strings.Contains(m.Reason, "built-in") {
				t.Errorf("user model named blend: available %v, %q", m.Available, m.Reason)
			}
			continue
		}
		w, ok := want[m.Name]
		switch {
		case !ok:
			t.Errorf("unexpected model %+v", m)
		case w == "" && (!m.Available || m.Scale != 2 || m.Kind != img2vid.KindFrame):
			t.Errorf("%s: %+v, want an available 2x frame model", m.Name, m)
		case w != "" && (m.Available || !strings.Contains(m.Reason, w)):
			t.Errorf("%s: available %v, reason %q; want %q", m.Name, m.Available, m.Reason, w)
		}
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("model %s not listed", name)
		}
	}

	if _, err := r.FrameModel("nope"); img2vid.ErrorCode(err) != img2vid.ENOTFOUND {
		t.Errorf("unknown model: %v, want not found", err)
	}
	if _, err := r.FrameModel("c"); img2vid.ErrorCode(err) != img2vid.EUNAVAILABLE || !strings.Contains(err.Error(), "sha256") {
		t.Errorf("broken model: %v, want unavailable naming sha256", err)
	}
	if _, err := r.FrameModel("blend"); img2vid.ErrorCode(err) != img2vid.EINVALID {
		t.Errorf("interpolate model as a frame model: %v, want invalid", err)
	}
	if _, err := r.Interpolator("sr2x"); img2vid.ErrorCode(err) != img2vid.EINVALID {
		t.Errorf("frame model as an interpolator: %v, want invalid", err)
	}
}

// FuzzParseManifest: any input either parses into a manifest that passes
// its own checks again after a round trip through JSON, or fails with a
// *ManifestError; nothing panics.
func FuzzParseManifest(f *testing.F) {
	for _, seed := range []string{
		`{"name": "sr-2x", "kind": "frame", "file": "sr-2x.onnx", "inputs": ["image"], "outputs": ["upscaled_image"], "layout": "NCHW", "channels": "RGB", "range": [0, 1], "scale": 2, "multiple": 1, "tile_overlap": 16, "sha256": "381e6f7fe960a7361faab593f99f266d3e40e2030bc55e0e88ebf7d6acdb3a81"}`,
		`{"name": "blend", "kind": "interpolate", "file": "blend.onnx", "inputs": ["frame0", "frame1", "t"], "range": [-1, 1], "channels": "BGR", "layout": "NHWC"}`,
		`{"name": "a", "kind": "frame", "file": "a.onnx", "tile_overlap": 0}`,
		`{"name": "a", "kind": "frame"}`,
		`{"name": 1}`,
		`[]`,
		`null`,
		`{"name":"a","kind":"frame","file":"a.onnx"} x`,
	} {
		f.Add([]byte(seed))
	}
	if data, err := os.ReadFile("../models/blend.json"); err == nil {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest(data)
		if err != nil {
			var me *ManifestError
			if !errors.As(err, &me) || me.Field == "" {
				t.Fatalf("error %v is not a *ManifestError naming a field", err)
			}
			return
		}
		again, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		m2, err := ParseManifest(again)
		if err != nil {
			t.Fatalf("a parsed manifest does not parse again: %v\n%s", err, again)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip changed the manifest:\n%+v\n%+v", m, m2)
		}
	})
}

// TestTwoGraphModel brings built-in flow's two graphs as a user's model:
// it interpolates exactly as flow does, lists the nodes of both graphs,
// and each mistake in its motion graph is reported naming the field.
func TestTwoGraphModel(t *testing.T) {
	dir := t.TempDir()
	for from, to := range map[string]string{"flow.onnx": "mine.onnx", "flow.motion.onnx": "mine.motion.onnx"} {
		data, err := fs.ReadFile(models.Builtin, from)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, to), string(data))
	}
	manifest := func(name, motion string) {
		writeFile(t, filepath.Join(dir, name+".json"), `{"name":"`+name+`","kind":"interpolate","file":"mine.onnx",
			"inputs":["frame0","frame1","t"],"multiple":32,"motion":`+motion+`}`)
	}
	manifest("mine", `{"file":"mine.motion.onnx","outputs":["flow"]}`)
	manifest("nofile", `{"file":"gone.onnx","outputs":["flow"]}`)
	manifest("badname", `{"file":"mine.motion.onnx","outputs":["field"]}`)
	manifest("badsum", `{"file":"mine.motion.onnx","outputs":["flow"],"sha256":"`+strings.Repeat("0", 64)+`"}`)
	manifest("swapped", `{"file":"mine.onnx","outputs":["flow"]}`)
	r := openRuntime(t, dir)
	want := map[string]string{
		"nofile":  "motion.file: gone.onnx does not exist",
		"badname": `inputs[3]: the model has no input named "field"`,
		"badsum":  "motion.sha256: the manifest says 0000",
		"swapped": "motion.file: \"mine.onnx\" is the main graph's file too",
	}
	for _, m := range r.ListModels() {
		if m.Builtin {
			continue
		}
		switch w := want[m.Name]; {
		case m.Name == "mine" && (!m.Available || m.Nodes < 100 || len(m.NotOnCUDA) > 0):
			t.Errorf("mine: %+v, want an available model with the nodes of both graphs, all on CUDA", m)
		case w != "" && (m.Available || !strings.Contains(m.Reason, w)):
			t.Errorf("%s: available %v, reason %q; want %q", m.Name, m.Available, m.Reason, w)
		}
	}
	a := testimage.Scene(96, 64, testimage.Pan, 1)
	b := testimage.Scene(96, 64, testimage.Pan, 2)
	frames := map[string][]*image.NRGBA{}
	for _, name := range []string{"mine", "flow"} {
		m, err := r.Interpolator(name)
		if err != nil {
			t.Fatal(err)
		}
		if frames[name], err = img2vid.InterpolateAll(context.Background(), m, a, b, []float32{0.25, 0.5}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range frames["flow"] {
		if !reflect.DeepEqual(frames["mine"][i].Pix, frames["flow"][i].Pix) {
			t.Errorf("frame %d of the user's copy of flow differs from flow's", i)
		}
	}
}
