// Package inference runs ONNX models through ONNX Runtime: it finds the
// runtime's shared library, creates the one runtime environment, chooses
// the execution provider (CPU or CUDA, never silently), keeps the registry
// of models described by manifests, and implements img2vid.FrameModel
// (tiled, feathered, batched) and img2vid.Interpolator on top of it.
//
// Nothing native is loaded until Open is called, so programs and tests that
// do not infer never need the library.
package inference

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"sync"

	"github.com/img2vid/img2vid"
	"github.com/img2vid/img2vid/models"
	ort "github.com/yalue/onnxruntime_go"
)

// Config says how to open the runtime.
type Config struct {
	// Library is the ONNX Runtime library (or its folder) the user named
	// with a flag or ONNXRUNTIME_LIB; "" searches DefaultLibrarySearch.
	Library string
	// Device is DeviceCPU, DeviceCUDA or DeviceAuto ("" means auto).
	Device string
	// Threads is the number of intra-op threads per session; 0 lets ONNX
	// Runtime use one per core.
	Threads int
	// ModelsDir holds the user's models (NAME.json beside its .onnx); ""
	// means only the built-in ones.
	ModelsDir string
	// Builtin holds the built-in models; nil means models.Builtin.
	Builtin fs.FS
	// Logger receives the one start-up line and the fallback notice; nil
	// means slog.Default().
	Logger *slog.Logger
}

// Runtime is an open ONNX Runtime with its model registry. It implements
// img2vid.Models and is safe for concurrent use.
type Runtime struct {
	info    img2vid.RuntimeInfo
	threads int
	builtin fs.FS
	dir     string
	log     *slog.Logger

	mu      sync.Mutex
	checked map[string]checkedModel // by manifest source and stamp, see registry.go
	loaded  map[string]loadedModel  // by model name
	closed  bool
}

var _ img2vid.Models = (*Runtime)(nil)

// The runtime environment is one per process (ONNX Runtime's rule); Open
// shares it between Runtimes and Close destroys it with the last one.
var env struct {
	sync.Mutex
	lib   string
	users int
}

// Open finds and loads the ONNX Runtime library, creates the environment
// and settles the execution provider: cuda that cannot be honoured is an
// EUNAVAILABLE error saying why, auto that ends on the CPU logs why once and
// says so in Info().Note.
func Open(cfg Config) (*Runtime, error) {
	device, err := NormalizeDevice(cfg.Device)
	if err != nil {
		return nil, err
	}
	if cfg.Threads < 0 {
		return nil, img2vid.Errorf(img2vid.EINVALID, "threads must be 0 (one per core) or more, got %d", cfg.Threads)
	}
	if cfg.ModelsDir != "" {
		if fi, err := os.Stat(cfg.ModelsDir); err != nil || !fi.IsDir() {
			return nil, img2vid.Errorf(img2vid.EINVALID, "models dir %s is not a folder", cfg.ModelsDir)
		}
	}
	lib, err := FindLibrary(DefaultLibrarySearch(cfg.Library))
	if err != nil {
		return nil, err
	}
	if err := acquireEnv(lib); err != nil {
		return nil, err
	}
	r := &Runtime{
		info:    img2vid.RuntimeInfo{Library: lib, Version: ort.GetVersion(), Provider: ProviderCPU},
		threads: cfg.Threads,
		builtin: cfg.Builtin,
		dir:     cfg.ModelsDir,
		log:     cfg.Logger,
		checked: map[string]checkedModel{},
		loaded:  map[string]loadedModel{},
	}
	if r.builtin == nil {
		r.builtin = models.Builtin
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	plan, err := PlanProvider(device, lib, ProbeGPU(lib))
	if err != nil {
		releaseEnv()
		return nil, err
	}
	r.info.Note = plan.Note
	if plan.TryCUDA {
		r.info.Provider, r.info.Note, err = SettleProvider(device, probe(cfg.Threads, true))
		if err != nil {
			releaseEnv()
			return nil, err
		}
	}
	attrs := []any{"library", lib, "version", r.info.Version, "provider", r.info.Provider, "device", device}
	if r.info.Version != ORTVersion {
		r.log.Warn("ONNX Runtime version differs from the one this build is made for", "want", ORTVersion, "got", r.info.Version)
	}
	if r.info.Note != "" {
		r.log.Warn("inference runtime fell back to CPU", append(attrs, "reason", r.info.Note)...)
	} else {
		r.log.Info("inference runtime", attrs...)
	}
	return r, nil
}

func acquireEnv(lib string) error {
	env.Lock()
	defer env.Unlock()
	if env.users > 0 {
		if env.lib != lib {
			return img2vid.Errorf(img2vid.EUNAVAILABLE, "ONNX Runtime is already loaded from %s in this process; cannot also load %s", env.lib, lib)
		}
		env.users++
		return nil
	}
	ort.SetSharedLibraryPath(lib)
	if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
		return img2vid.Errorf(img2vid.EUNAVAILABLE, "loading ONNX Runtime from %s: %w", lib, err)
	}
	env.lib, env.users = lib, 1
	return nil
}

func releaseEnv() {
	env.Lock()
	defer env.Unlock()
	if env.users--; env.users == 0 {
		// Unloading the library can only fail if it was never loaded.
		_ = ort.DestroyEnvironment()
	}
}

// probe creates a session on a one-node model and runs it once. With
// the CUDA provider that loads the provider and its CUDA libraries and
// touches the device: the failures --device cuda must report happen here,
// not halfway through a job.
func probe(threads int, cuda bool) error {
	s, err := newSession(identityModel(1), []string{"x"}, []string{"y"}, threads, cuda)
	if err != nil {
		return err
	}
	defer s.close()
	in, err := ort.NewTensor(ort.NewShape(1), []float32{1})
	if err != nil {
		return fmt.Errorf("creating the probe input: %w", err)
	}
	defer in.Destroy()
	out, err := ort.NewEmptyTensor[float32](ort.NewShape(1))
	if err != nil {
		return fmt.Errorf("creating the probe output: %w", err)
	}
	defer out.Destroy()
	if err := s.s.Run([]ort.Value{in}, []ort.Value{out}); err != nil {
		return fmt.Errorf("running the probe model: %w", err)
	}
	if got := out.GetData()[0]; got != 1 {
		return fmt.Errorf("the probe model returned %v for 1", got)
	}
	return nil
}

// Info describes the runtime: library, version, provider in use and why
// it differs from the one asked for.
func (r *Runtime) Info() img2vid.RuntimeInfo { return r.info }

// Check runs a one-node model on the execution provider in use, which
// proves that the runtime still works and, on CUDA, that the GPU still
// answers: a worker checks it before it takes jobs. It takes milliseconds
// on the CPU.
func (r *Runtime) Check() error {
	r.mu.Lock()
	closed := r.closed
	r.mu.Unlock()
	if closed {
		return errClosed
	}
	// Counted as a user of the environment meanwhile, so that a Close
	// at the same time does not destroy it under the probe.
	if err := acquireEnv(r.info.Library); err != nil {
		return err
	}
	defer releaseEnv()
	if err := probe(1, r.info.Provider == ProviderCUDA); err != nil {
		return img2vid.Errorf(img2vid.EUNAVAILABLE, "ONNX Runtime cannot run a model on %s: %v", r.info.Provider, err)
	}
	return nil
}

// Close releases every loaded model and, with the last Runtime, the
// environment. Models handed out must no longer be used.
func (r *Runtime) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	var errs []error
	for name, s := range r.loaded {
		if err := s.close(); err != nil {
			errs = append(errs, fmt.Errorf("closing model %s: %w", name, err))
		}
	}
	r.loaded = nil
	releaseEnv()
	return errors.Join(errs...)
}

// errClosed is returned for models asked of a closed Runtime.
var errClosed = img2vid.Errorf(img2vid.EUNAVAILABLE, "the inference runtime is closed")
