package inference

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/img2vid/img2vid"
	ort "github.com/yalue/onnxruntime_go"
)

// checkedModel is one manifest checked against its model: info for
// listings and, when it is usable, the spec to load it with.
type checkedModel struct {
	info  img2vid.ModelInfo
	spec  *spec
	fsys  fs.FS // where the manifest and the model file are
	stamp string
}

// loadedModel is a model with its session, ready to run.
type loadedModel interface {
	kind() string
	close() error
}

// ListModels lists the built-in models, then the user's, each with whether
// it can be used and, if not, exactly why.
func (r *Runtime) ListModels() []img2vid.ModelInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []img2vid.ModelInfo
	for _, c := range r.scan() {
		out = append(out, c.info)
	}
	return out
}

// scan reads every manifest, checking the ones not seen before (or changed
// since). The caller holds r.mu.
func (r *Runtime) scan() []checkedModel {
	var all []checkedModel
	builtin, _ := fs.Glob(r.builtin, "*.json")
	for _, name := range builtin {
		all = append(all, r.checkCached(r.builtin, name, true, "builtin:"+name))
	}
	if r.dir == "" {
		return all
	}
	names, err := fs.Glob(os.DirFS(r.dir), "*.json")
	if err != nil {
		r.log.Warn("reading the models dir", "dir", r.dir, "err", err)
	}
	for _, name := range names {
		c := r.checkCached(os.DirFS(r.dir), name, false, stamp(r.dir, name))
		if c.info.Available && slices.ContainsFunc(all[:len(builtin)], func(b checkedModel) bool { return b.info.Name == c.info.Name }) {
			c.info.Available, c.spec = false, nil
			c.info.Reason = (&ManifestError{Source: filepath.Join(r.dir, name), Field: "name", Reason: fmt.Sprintf("%q is the name of a built-in model; choose another", c.info.Name)}).Error()
		}
		all = append(all, c)
	}
	return all
}

// stamp identifies a user manifest and its model file as they are now, so
// an edited model is checked again.
func stamp(dir, manifest string) string {
	s := filepath.Join(dir, manifest)
	for _, p := range []string{manifest, strings.TrimSuffix(manifest, ".json") + ".onnx"} {
		if fi, err := os.Stat(filepath.Join(dir, p)); err == nil {
			s += fmt.Sprintf("|%d|%d", fi.Size(), fi.ModTime().UnixNano())
		}
	}
	return s
}

func (r *Runtime) checkCached(fsys fs.FS, manifest string, builtin bool, stamp string) checkedModel {
	if c, ok := r.checked[stamp]; ok {
		return c
	}
	c := checkedModel{fsys: fsys, stamp: stamp}
	c.info.Builtin = builtin
	c.info.Name = strings.TrimSuffix(manifest, ".json")
	source := manifest
	if !builtin {
		source = filepath.Join(r.dir, manifest)
	}
	s, err := check(fsys, manifest)
	if err != nil {
		var me *ManifestError
		if errors.As(err, &me) {
			me.Source = source
		}
		c.info.Reason = err.Error()
	} else {
		c.spec = s
		c.info.Kind, c.info.Description, c.info.Available = s.Kind, s.Description, true
		c.info.SHA256 = s.SHA256
		if s.Motion != nil {
			// Both files are the model: a plan that records the one sum
			// runs only where both are the same.
			sum := sha256.Sum256([]byte(s.SHA256 + "+" + s.Motion.SHA256))
			c.info.SHA256 = hex.EncodeToString(sum[:])
		}
		c.info.Nodes, c.info.NotOnCUDA = s.graph.Nodes, s.graph.NotOnCUDA()
		switch s.Kind {
		case img2vid.KindFrame:
			c.info.Scale = s.Scale
		case img2vid.KindDetect:
			detectInfo(&c.info, s)
		}
	}
	r.checked[stamp] = c
	return c
}

// check reads the manifest and its model from fsys and matches them.
func check(fsys fs.FS, manifest string) (*spec, error) {
	data, err := fs.ReadFile(fsys, manifest)
	if err != nil {
		return nil, fmt.Errorf("reading the manifest: %w", err)
	}
	m, err := ParseManifest(data)
	if err != nil {
		return nil, err
	}
	if stem := strings.TrimSuffix(path.Base(manifest), ".json"); m.Name != stem {
		return nil, fieldErr("name", "%q differs from the manifest's file name %s; name the file %s.json", m.Name, manifest, m.Name)
	}
	ins, outs, graph, err := readGraph(fsys, "file", m.File, &m.SHA256)
	if err != nil {
		return nil, err
	}
	var s *spec
	if m.Kind == img2vid.KindDetect {
		if err := m.readLabels(fsys); err != nil {
			return nil, err
		}
		s, err = checkDetect(m, ins, outs)
	} else {
		s, err = checkModel(m, ins, outs)
	}
	if err != nil {
		return nil, err
	}
	s.graph = graph
	if m.Motion == nil {
		return s, nil
	}
	mins, mouts, mgraph, err := readGraph(fsys, "motion.file", m.Motion.File, &s.Motion.SHA256)
	if err != nil {
		return nil, err
	}
	s.graph.merge(mgraph)
	return s, s.checkMotion(ins, mins, mouts)
}

// readGraph reads the model file name (the manifest's field) from fsys,
// checks it against the sum *sum when one is given and sets *sum to the
// file's, and returns the graph's inputs, outputs and nodes. Every model carries
// its sums, said in the manifest or not: a plan records them, and a worker
// runs the plan only with the same files.
func readGraph(fsys fs.FS, field, name string, sum *string) (ins, outs []ort.InputOutputInfo, graph GraphInfo, err error) {
	sumField := strings.TrimSuffix(field, "file") + "sha256"
	model, err := fs.ReadFile(fsys, name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, graph, fieldErr(field, "%s does not exist beside the manifest", name)
	} else if err != nil {
		return nil, nil, graph, fieldErr(field, "reading %s: %v", name, err)
	}
	h := sha256.Sum256(model)
	got := hex.EncodeToString(h[:])
	if *sum != "" && got != *sum {
		return nil, nil, graph, fieldErr(sumField, "the manifest says %s, %s has %s", *sum, name, got)
	}
	*sum = got
	ins, outs, err = modelIO(model)
	if err == nil {
		graph, err = ReadGraphInfo(model)
	}
	if err != nil {
		return nil, nil, graph, fieldErr(field, "%s: %v", name, err)
	}
	return ins, outs, graph, nil
}

// lookup finds a usable model of the given kind. The caller holds r.mu.
func (r *Runtime) lookup(name, kind string) (checkedModel, error) {
	var known []string
	for _, c := range r.scan() {
		if c.info.Name != name {
			known = append(known, c.info.Name)
			continue
		}
		if !c.info.Available {
			return c, img2vid.Errorf(img2vid.EUNAVAILABLE, "model %s cannot be used: %s", name, c.info.Reason)
		}
		if c.spec.Kind != kind {
			return c, img2vid.Errorf(img2vid.EINVALID, "model %s is of kind %s, not %s", name, c.spec.Kind, kind)
		}
		return c, nil
	}
	return checkedModel{}, img2vid.Errorf(img2vid.ENOTFOUND, "no model named %q (known: %s)", name, strings.Join(known, ", "))
}

// load returns the loaded model name, loading it on first use. The caller
// holds r.mu.
func (r *Runtime) load(name, kind string, build func(s *spec, main, motion *session) loadedModel) (loadedModel, error) {
	if r.closed {
		return nil, errClosed
	}
	if m, ok := r.loaded[name]; ok {
		if m.kind() != kind {
			return nil, img2vid.Errorf(img2vid.EINVALID, "model %s is of kind %s, not %s", name, m.kind(), kind)
		}
		return m, nil
	}
	c, err := r.lookup(name, kind)
	if err != nil {
		return nil, err
	}
	s, motion, err := r.openSessions(c)
	if err != nil {
		return nil, img2vid.Errorf(img2vid.EUNAVAILABLE, "model %s: %w", name, err)
	}
	m := build(c.spec, s, motion)
	r.loaded[name] = m
	return m, nil
}

// openSessions creates the sessions of a checked model: its main graph's
// and, for a two-graph interpolator, its motion graph's (nil otherwise).
func (r *Runtime) openSessions(c checkedModel) (main, motion *session, err error) {
	cuda := r.info.Provider == ProviderCUDA
	open := func(file string, inputs, outputs []string) (*session, error) {
		data, err := fs.ReadFile(c.fsys, file)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", file, err)
		}
		s, err := newSession(data, inputs, outputs, r.threads, cuda)
		if err != nil {
			return nil, fmt.Errorf("ONNX Runtime cannot load %s: %w", file, err)
		}
		return s, nil
	}
	main, err = open(c.spec.File, c.spec.inputs, []string{c.spec.output})
	if err != nil || c.spec.Motion == nil {
		return main, nil, err
	}
	motion, err = open(c.spec.Motion.File, c.spec.motion, c.spec.Motion.Outputs)
	if err != nil {
		main.close()
		return nil, nil, err
	}
	return main, motion, nil
}

// FrameModel returns the frame model name, loaded once and shared.
func (r *Runtime) FrameModel(name string) (img2vid.FrameModel, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m, err := r.load(name, img2vid.KindFrame, func(s *spec, se, _ *session) loadedModel { return newFrameModel(s, se) })
	if err != nil {
		return nil, err
	}
	return m.(*frameModel), nil
}

// Interpolator returns the interpolate model name, loaded once and shared.
func (r *Runtime) Interpolator(name string) (img2vid.Interpolator, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m, err := r.load(name, img2vid.KindInterpolate, newInterpolator)
	if err != nil {
		return nil, err
	}
	return m.(*interpolator), nil
}

// Detector returns the detect model name, loaded once and shared.
func (r *Runtime) Detector(name string) (img2vid.Detector, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m, err := r.load(name, img2vid.KindDetect, func(s *spec, se, _ *session) loadedModel { return newDetector(s, se) })
	if err != nil {
		return nil, err
	}
	return m.(*detector), nil
}
