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
	model, err := fs.ReadFile(fsys, m.File)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fieldErr("file", "%s does not exist beside the manifest", m.File)
	} else if err != nil {
		return nil, fieldErr("file", "reading %s: %v", m.File, err)
	}
	sum := sha256.Sum256(model)
	got := hex.EncodeToString(sum[:])
	if m.SHA256 != "" && got != m.SHA256 {
		return nil, fieldErr("sha256", "the manifest says %s, %s has %s", m.SHA256, m.File, got)
	}
	// Every model carries its sum, said in the manifest or not: a plan
	// records it, and a worker runs the plan only with the same file.
	m.SHA256 = got
	ins, outs, err := modelIO(model)
	if err != nil {
		return nil, fieldErr("file", "%s: %v", m.File, err)
	}
	if m.Kind == img2vid.KindDetect {
		if err := m.readLabels(fsys); err != nil {
			return nil, err
		}
		return checkDetect(m, ins, outs)
	}
	return checkModel(m, ins, outs)
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
func (r *Runtime) load(name, kind string, build func(*spec, *session) loadedModel) (loadedModel, error) {
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
	data, err := fs.ReadFile(c.fsys, c.spec.File)
	if err != nil {
		return nil, img2vid.Errorf(img2vid.EUNAVAILABLE, "model %s: reading %s: %w", name, c.spec.File, err)
	}
	s, err := newSession(data, c.spec.inputs, c.spec.output, r.threads, r.info.Provider == ProviderCUDA)
	if err != nil {
		return nil, img2vid.Errorf(img2vid.EUNAVAILABLE, "model %s: %w", name, err)
	}
	m := build(c.spec, s)
	r.loaded[name] = m
	return m, nil
}

// FrameModel returns the frame model name, loaded once and shared.
func (r *Runtime) FrameModel(name string) (img2vid.FrameModel, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m, err := r.load(name, img2vid.KindFrame, func(s *spec, se *session) loadedModel { return newFrameModel(s, se) })
	if err != nil {
		return nil, err
	}
	return m.(*frameModel), nil
}

// Interpolator returns the interpolate model name, loaded once and shared.
func (r *Runtime) Interpolator(name string) (img2vid.Interpolator, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m, err := r.load(name, img2vid.KindInterpolate, func(s *spec, se *session) loadedModel { return newInterpolator(s, se) })
	if err != nil {
		return nil, err
	}
	return m.(*interpolator), nil
}

// Detector returns the detect model name, loaded once and shared.
func (r *Runtime) Detector(name string) (img2vid.Detector, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m, err := r.load(name, img2vid.KindDetect, func(s *spec, se *session) loadedModel { return newDetector(s, se) })
	if err != nil {
		return nil, err
	}
	return m.(*detector), nil
}
