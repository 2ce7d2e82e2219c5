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
	"github.com/img2vid/img2vid/jobs"
	"github.com/img2vid/img2vid/video"
)

// openRuntime opens ONNX Runtime as the config says.
func (c *config) openRuntime(log *slog.Logger) (*inference.Runtime, error) {
	return inference.Open(inference.Config{Library: c.ORTLib, Device: c.Device, Threads: c.Threads, ModelsDir: c.ModelsDir, Logger: log})
}

// runtimeModels are the models of the runtime it returns, or its error
// for every model asked for: lazyModels and liveRuntime open the runtime
// each in their own way, and serve its models through this.
type runtimeModels func() (*inference.Runtime, error)

// ListModels lists the runtime's models; none when there is no runtime
// (asking for a model then says why).
func (f runtimeModels) ListModels() []img2vid.ModelInfo {
	rt, err := f()
	if err != nil {
		return nil
	}
	return rt.ListModels()
}

// FrameModel loads a frame model from the runtime.
func (f runtimeModels) FrameModel(name string) (img2vid.FrameModel, error) {
	rt, err := f()
	if err != nil {
		return nil, err
	}
	return rt.FrameModel(name)
}

// Interpolator loads an interpolation model from the runtime.
func (f runtimeModels) Interpolator(name string) (img2vid.Interpolator, error) {
	rt, err := f()
	if err != nil {
		return nil, err
	}
	return rt.Interpolator(name)
}

// Detector loads a detect model from the runtime.
func (f runtimeModels) Detector(name string) (img2vid.Detector, error) {
	rt, err := f()
	if err != nil {
		return nil, err
	}
	return rt.Detector(name)
}

// lazyModels opens the runtime on the first model asked for, so a
// conversion without models never needs the native library.
type lazyModels struct {
	runtimeModels // l.runtime
	open          func() (*inference.Runtime, error)
	once          sync.Once
	rt            *inference.Runtime
	err           error
}

func newLazyModels(c *config, log *slog.Logger) *lazyModels {
	l := &lazyModels{open: func() (*inference.Runtime, error) { return c.openRuntime(log) }}
	l.runtimeModels = l.runtime
	return l
}

func (l *lazyModels) runtime() (*inference.Runtime, error) {
	l.once.Do(func() { l.rt, l.err = l.open() })
	return l.rt, l.err
}

// Close closes the runtime if it was opened.
func (l *lazyModels) Close() {
	if l.rt != nil {
		l.rt.Close()
	}
}

// runtimeCommand parses the command line of a command that takes only the
// runtime flags, and makes its logger.
func runtimeCommand(name, about string, args []string, stderr io.Writer, more ...func(*config, *binder)) (*config, *slog.Logger, error) {
	var c config
	fs := newFlagSet(name, name+" [flags]\n\n"+about, stderr)
	b := &binder{fs: fs}
	c.runtimeFlags(b)
	for _, f := range more {
		f(&c, b)
	}
	if err := parse(fs, b, args); err != nil {
		return nil, nil, err
	}
	log, err := c.logger()
	return &c, log, err
}

func runModels(_ context.Context, args []string, stdout, stderr io.Writer) error {
	c, log, err := runtimeCommand("models", "Lists the built-in models and those in the models folder, and why any cannot be loaded.", args, stderr)
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
	fmt.Fprintln(tw, "NAME\tKIND\tSOURCE\tNODES\tCUDA\tSTATUS\tDESCRIPTION")
	for _, m := range models {
		source := "user"
		if m.Builtin {
			source = "built-in"
		}
		status := "ok"
		if !m.Available {
			status = "unavailable: " + m.Reason
		}
		desc := m.Description
		if len(m.Labels) > 0 { // a detect model: what it can find
			desc = strings.TrimSpace(fmt.Sprintf("%s [%d classes: %s]", desc, len(m.Labels), abbreviate(m.Labels, 5)))
		}
		nodes, cuda := "-", "-"
		if m.Available {
			nodes, cuda = fmt.Sprint(m.Nodes), "all nodes"
			if len(m.NotOnCUDA) > 0 {
				cuda = "CPU for " + strings.Join(m.NotOnCUDA, ", ")
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.Name, m.Kind, source, nodes, cuda, status, desc)
	}
	tw.Flush()
}

// abbreviate joins the first n names, and says how many more there are.
func abbreviate(names []string, n int) string {
	if len(names) <= n {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:n], ", "), len(names)-n)
}

func runDoctor(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, log, err := runtimeCommand("doctor", "Checks everything img2vid needs and says what is wrong.", args, stderr, (*config).natsFlags)
	if err != nil {
		return err
	}
	var problems []string
	if v, err := ffmpegVersion(ctx, c.FFmpeg); err != nil {
		problems = append(problems, "ffmpeg")
		fmt.Fprintf(stdout, "%-18s FAIL %v\n", "ffmpeg:", err)
	} else {
		fmt.Fprintf(stdout, "%-18s %s (%s)\n", "ffmpeg:", v, c.FFmpeg)
	}
	rt, err := c.openRuntime(log)
	if err != nil {
		problems = append(problems, "ONNX Runtime")
		fmt.Fprintf(stdout, "%-18s FAIL %v\n", "onnxruntime:", err)
	} else {
		defer rt.Close()
		d := rt.Diagnose()
		d.Write(stdout)
		for _, m := range d.Models {
			if !m.Available {
				problems = append(problems, "model "+m.Name)
			}
		}
	}
	if c.NATS == "" {
		fmt.Fprintf(stdout, "%-18s a NATS server inside serve (give --nats to check a cluster)\n", "jobs:")
	} else if err := checkNATS(ctx, c, log, stdout); err != nil {
		problems = append(problems, "NATS")
		fmt.Fprintf(stdout, "%-18s FAIL %v\n", "nats:", err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("problems with %s", strings.Join(problems, ", "))
	}
	fmt.Fprintln(stdout, "all good")
	return nil
}

// doctorWait bounds each of doctor's checks that waits on another
// program or server. Each check has its own: a slow one must not use up
// the next one's time.
const doctorWait = 30 * time.Second

// ffmpegVersion asks ffmpeg its version, waiting at most doctorWait.
func ffmpegVersion(ctx context.Context, ffmpeg string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, doctorWait)
	defer cancel()
	return video.Version(ctx, ffmpeg)
}

// checkNATS connects to the cluster --nats names and prints the job
// system's stream, buckets and consumer there, waiting at most doctorWait.
func checkNATS(ctx context.Context, c *config, log *slog.Logger, stdout io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, doctorWait)
	defer cancel()
	nc, err := jobs.Connect(c.NATS, c.natsAuth(), log)
	if err != nil {
		return err
	}
	defer nc.Close()
	r, err := jobs.Inspect(ctx, nc)
	if err != nil {
		return err
	}
	r.Write(stdout)
	return nil
}
