package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/img2vid/img2vid"
	"github.com/img2vid/img2vid/inference"
	"github.com/img2vid/img2vid/video"
)

// openRuntime opens ONNX Runtime as the config says.
func (c *config) openRuntime(log *slog.Logger) (*inference.Runtime, error) {
	return inference.Open(inference.Config{Library: c.ORTLib, Device: c.Device, Threads: c.Threads, ModelsDir: c.ModelsDir, Logger: log})
}

// lazyModels opens the runtime on the first model asked for, so a
// conversion without models never needs the native library.
type lazyModels struct {
	open func() (*inference.Runtime, error)
	once sync.Once
	rt   *inference.Runtime
	err  error
}

func newLazyModels(c *config, log *slog.Logger) *lazyModels {
	return &lazyModels{open: func() (*inference.Runtime, error) { return c.openRuntime(log) }}
}

func (l *lazyModels) runtime() (*inference.Runtime, error) {
	l.once.Do(func() { l.rt, l.err = l.open() })
	return l.rt, l.err
}

func (l *lazyModels) FrameModel(name string) (img2vid.FrameModel, error) {
	rt, err := l.runtime()
	if err != nil {
		return nil, err
	}
	return rt.FrameModel(name)
}

func (l *lazyModels) Interpolator(name string) (img2vid.Interpolator, error) {
	rt, err := l.runtime()
	if err != nil {
		return nil, err
	}
	return rt.Interpolator(name)
}

// Close closes the runtime if it was opened.
func (l *lazyModels) Close() {
	if l.rt != nil {
		l.rt.Close()
	}
}

func runModels(_ context.Context, args []string, stdout, stderr io.Writer) error {
	var c config
	fs := newFlagSet("models", "models [flags]\n\nLists the built-in models and those in the models folder, and why any cannot be loaded.", stderr)
	b := &binder{fs: fs}
	c.runtimeFlags(b)
	if err := parse(fs, b, args); err != nil {
		return err
	}
	log, err := c.logger()
	if err != nil {
		return err
	}
	rt, err := c.openRuntime(log)
	if err != nil {
		return err
	}
	defer rt.Close()
	printModels(stdout, rt.ListModels())
	return nil
}

func printModels(w io.Writer, models []img2vid.ModelInfo) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tKIND\tSOURCE\tSTATUS\tDESCRIPTION")
	for _, m := range models {
		source := "user"
		if m.Builtin {
			source = "built-in"
		}
		status := "ok"
		if !m.Available {
			status = "unavailable: " + m.Reason
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", m.Name, m.Kind, source, status, m.Description)
	}
	tw.Flush()
}

func runDoctor(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c config
	fs := newFlagSet("doctor", "doctor [flags]\n\nChecks everything img2vid needs and says what is wrong.", stderr)
	b := &binder{fs: fs}
	c.runtimeFlags(b)
	if err := parse(fs, b, args); err != nil {
		return err
	}
	log, err := c.logger()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	problems := 0
	check := func(what, detail string, err error) {
		if err != nil {
			problems++
			fmt.Fprintf(stdout, "FAIL  %-14s %v\n", what, err)
			return
		}
		fmt.Fprintf(stdout, "ok    %-14s %s\n", what, detail)
	}

	v, err := video.Version(ctx, c.FFmpeg)
	check("ffmpeg", v, err)

	lib, err := inference.FindLibrary(inference.DefaultLibrarySearch(c.ORTLib))
	check("onnxruntime", lib, err)
	gpu := inference.ProbeGPU(lib)
	gpuLine := "no NVIDIA GPU visible"
	if gpu.Visible() {
		gpuLine = "NVIDIA devices " + strings.Join(gpu.DeviceNodes, " ")
	}
	if gpu.DriverErr != "" {
		gpuLine += "; driver: " + gpu.DriverErr
	}
	if gpu.ProviderLib == "" {
		gpuLine += "; this ONNX Runtime build has no CUDA provider"
	} else if gpu.ProviderLibErr != "" {
		gpuLine += "; CUDA provider cannot load: " + gpu.ProviderLibErr
	}
	fmt.Fprintf(stdout, "info  %-14s %s\n", "gpu", gpuLine)
	if err != nil {
		return fmt.Errorf("%d problem(s) found", problems)
	}

	rt, err := c.openRuntime(log)
	if err != nil {
		check("runtime", "", err)
		return fmt.Errorf("%d problem(s) found", problems)
	}
	defer rt.Close()
	info := rt.Info()
	detail := fmt.Sprintf("ONNX Runtime %s, provider %s", info.Version, info.Provider)
	if info.Note != "" {
		detail += " (" + info.Note + ")"
	}
	check("runtime", detail, nil)
	for _, m := range rt.ListModels() {
		if m.Available {
			check("model "+m.Name, m.Kind, nil)
		} else {
			check("model "+m.Name, "", fmt.Errorf("%s", m.Reason))
		}
	}
	if problems > 0 {
		return fmt.Errorf("%d problem(s) found", problems)
	}
	fmt.Fprintln(stdout, "all good")
	return nil
}
