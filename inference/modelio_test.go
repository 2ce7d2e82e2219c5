package inference

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/img2vid/img2vid"
	ort "github.com/yalue/onnxruntime_go"
	"google.golang.org/protobuf/encoding/protowire"
)

// addInitializerModel returns a model computing y = x + w whose graph lists
// the initializer w among its inputs too, as models of IR version 3 do;
// ONNX Runtime leaves it out of the inputs it reports.
func addInitializerModel() []byte {
	value := func(name string) []byte {
		return slices.Concat(pbString(1, name), pbBytes(2, pbBytes(1, pbVarint(1, 1), pbBytes(2, pbBytes(1, pbVarint(1, 2))))))
	}
	w := slices.Concat(pbVarint(1, 2), pbVarint(2, 1), pbString(8, "w"), pbBytes(4, protowire.AppendFixed32(protowire.AppendFixed32(nil, 0), 0)))
	node := slices.Concat(pbString(1, "x"), pbString(1, "w"), pbString(2, "y"), pbString(4, "Add"))
	graph := slices.Concat(pbBytes(1, node), pbString(2, "add"), pbBytes(5, w), pbBytes(11, value("x")), pbBytes(11, value("w")), pbBytes(12, value("y")))
	return slices.Concat(pbVarint(1, 3), pbBytes(8, pbString(1, ""), pbVarint(2, 9)), pbBytes(7, graph))
}

// modelIO reports what ONNX Runtime reports, for the built-in models, the
// test models of each kind, hand-made graphs with free sides and with an
// initializer among the inputs, and the third-party models of the
// extended set.
func TestModelIOMatchesONNXRuntime(t *testing.T) {
	openRuntime(t, "") // initialises ONNX Runtime
	models := map[string]func(t *testing.T) []byte{
		"identity with free sides": func(*testing.T) []byte { return identityModel(-1, 3, -1, 5) },
		"initializer among inputs": func(*testing.T) []byte { return addInitializerModel() },
	}
	var files []string
	for _, pattern := range []string{"../models/blend.onnx", "../models/flow.onnx", "../models/testdata/*/*.onnx"} {
		m, err := filepath.Glob(pattern)
		if err != nil || len(m) == 0 {
			t.Fatalf("no model matches %s (%v)", pattern, err)
		}
		files = append(files, m...)
	}
	for _, f := range files {
		models[strings.TrimPrefix(f, "../models/")] = func(t *testing.T) []byte { return readFile(t, f) }
	}
	for _, f := range []string{quickSRNet, "models/yolox-nano.onnx"} {
		models["extended/"+f] = func(t *testing.T) []byte { return readFile(t, needShared(t, f)) }
	}
	for name, model := range models {
		t.Run(name, func(t *testing.T) {
			data := model(t)
			wantIn, wantOut, err := ort.GetInputOutputInfoWithONNXData(data)
			if err != nil {
				t.Fatalf("ONNX Runtime: %v", err)
			}
			ins, outs, err := modelIO(data)
			if err != nil {
				t.Fatalf("modelIO: %v", err)
			}
			for _, c := range []struct {
				what      string
				got, want []ort.InputOutputInfo
			}{{"inputs", ins, wantIn}, {"outputs", outs, wantOut}} {
				if !equalIO(c.got, c.want) {
					t.Errorf("%s: got %v, ONNX Runtime says %v", c.what, c.got, c.want)
				}
			}
		})
	}
}

// equalIO compares two lists of inputs or outputs; an empty shape and no
// shape are the same.
func equalIO(a, b []ort.InputOutputInfo) bool {
	return slices.EqualFunc(a, b, func(x, y ort.InputOutputInfo) bool {
		return x.Name == y.Name && x.OrtValueType == y.OrtValueType && x.DataType == y.DataType &&
			slices.Equal(x.Dimensions, y.Dimensions)
	})
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// What is not an ONNX model is an error saying so, whatever its bytes.
func TestModelIORefusesWhatIsNotAModel(t *testing.T) {
	model := identityModel(1, 3, 8, 8)
	for name, data := range map[string][]byte{
		"empty":       nil,
		"text":        []byte("this is not a model\n"),
		"png header":  {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13},
		"cut short":   model[:len(model)-7],
		"no graph":    pbVarint(1, 8),
		"bad varint":  {0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		"graph cut":   slices.Concat([]byte{0x3a, 0x05}, []byte{0x5a, 0x10, 0x0a}),
		"zero tag":    {0x00, 0x01},
		"group field": {0x0b},
	} {
		t.Run(name, func(t *testing.T) {
			ins, outs, err := modelIO(data)
			if err == nil || !strings.Contains(err.Error(), "not an ONNX model") {
				t.Errorf("modelIO = %v, %v, %v; want an error saying it is not an ONNX model", ins, outs, err)
			}
		})
	}
}

// The parts modelIO does not read are skipped, so they cannot change what
// it reports: the model with a doc string, metadata and an unknown field
// reads as the model without.
func TestModelIOSkipsOtherFields(t *testing.T) {
	model := identityModel(-1, 3)
	extra := slices.Concat(
		pbString(6, "doc"),
		protowire.AppendFixed64(protowire.AppendTag(nil, 99, protowire.Fixed64Type), 7),
		protowire.AppendFixed32(protowire.AppendTag(nil, 98, protowire.Fixed32Type), 7))
	ins0, outs0, err := modelIO(model)
	if err != nil {
		t.Fatal(err)
	}
	ins, outs, err := modelIO(slices.Concat(extra, model, extra))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ins, ins0) || !reflect.DeepEqual(outs, outs0) {
		t.Errorf("with other fields: %v %v, without: %v %v", ins, outs, ins0, outs0)
	}
	if want := (ort.InputOutputInfo{Name: "x", OrtValueType: ort.ONNXTypeTensor, DataType: ort.TensorElementDataTypeFloat, Dimensions: ort.Shape{-1, 3}}); len(ins0) != 1 || !reflect.DeepEqual(ins0[0], want) {
		t.Errorf("inputs %v, want [%v]", ins0, want)
	}
}

// unknownOpModel returns a model whose one node is an operator ONNX
// Runtime does not have, from x to y, both float32 [1, 3, h, w].
func unknownOpModel() []byte {
	value := func(name string) []byte {
		dims := slices.Concat(pbBytes(1, pbVarint(1, 1)), pbBytes(1, pbVarint(1, 3)), pbBytes(1, pbString(2, "h")), pbBytes(1, pbString(2, "w")))
		return slices.Concat(pbString(1, name), pbBytes(2, pbBytes(1, pbVarint(1, 1), pbBytes(2, dims))))
	}
	node := slices.Concat(pbString(1, "x"), pbString(2, "y"), pbString(4, "NoSuchOp"))
	graph := slices.Concat(pbBytes(1, node), pbString(2, "odd"), pbBytes(11, value("x")), pbBytes(12, value("y")))
	return slices.Concat(pbVarint(1, 8), pbBytes(8, pbString(1, ""), pbVarint(2, 13)), pbBytes(7, graph))
}

// A user model whose inputs and outputs suit its manifest but which ONNX
// Runtime cannot load is listed as usable (the listing reads only its
// inputs and outputs); doctor's diagnosis loads it and says why it cannot
// be used, and a job asking for it gets that reason, naming the model. A
// good model beside it stays usable.
func TestDiagnoseLoadsUserModels(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "odd.onnx"), unknownOpModel(), 0o644); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "odd.json"), `{"name": "odd", "kind": "frame", "file": "odd.onnx"}`)
	for _, f := range []string{"sr2x.onnx", "sr2x.json"} {
		if err := os.WriteFile(filepath.Join(dir, f), readFile(t, "../models/testdata/frame/"+f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r := openRuntime(t, dir)
	listed := map[string]img2vid.ModelInfo{}
	for _, m := range r.ListModels() {
		listed[m.Name] = m
	}
	if !listed["odd"].Available || !listed["sr2x"].Available {
		t.Fatalf("listed: odd %+v, sr2x %+v; want both usable by their manifests", listed["odd"], listed["sr2x"])
	}
	diagnosed := map[string]img2vid.ModelInfo{}
	for _, m := range r.Diagnose().Models {
		diagnosed[m.Name] = m
	}
	if m := diagnosed["odd"]; m.Available || !strings.Contains(m.Reason, "NoSuchOp") || !strings.Contains(m.Reason, "odd.onnx") {
		t.Errorf("diagnosed odd: %+v; want not usable, naming odd.onnx and NoSuchOp", m)
	}
	if m := diagnosed["sr2x"]; !m.Available {
		t.Errorf("diagnosed sr2x: %+v; want usable", m)
	}
	_, err := r.FrameModel("odd")
	if img2vid.ErrorCode(err) != img2vid.EUNAVAILABLE || !strings.Contains(err.Error(), "model odd") || !strings.Contains(err.Error(), "NoSuchOp") {
		t.Errorf("FrameModel(odd) = %v; want %s naming the model and NoSuchOp", err, img2vid.EUNAVAILABLE)
	}
}

// FuzzModelIO: no input makes modelIO panic, and what it reads follows
// protobuf's rules: a model's bytes twice over are one model whose graph
// is the merge of the two, so it has every input and output twice.
func FuzzModelIO(f *testing.F) {
	f.Add(identityModel(-1, 3, -1, 5))
	f.Add(addInitializerModel())
	f.Add(unknownOpModel())
	for _, p := range []string{"../models/blend.onnx", "../models/testdata/frame/sr2x.onnx"} {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ins, outs, err := modelIO(data)
		if err != nil {
			if !strings.Contains(err.Error(), "not an ONNX model") {
				t.Fatalf("error %q does not say the bytes are not an ONNX model", err)
			}
			return
		}
		ins2, outs2, err := modelIO(slices.Concat(data, data))
		if err != nil {
			t.Fatalf("the model twice over: %v", err)
		}
		if !reflect.DeepEqual(ins2, slices.Concat(ins, ins)) || !reflect.DeepEqual(outs2, slices.Concat(outs, outs)) {
			t.Errorf("the model twice over reads as %v -> %v, want %v -> %v twice", ins2, outs2, ins, outs)
		}
	})
}
