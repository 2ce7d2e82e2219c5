package e2e

import (
	"context"
	"github.com/img2vid/img2vid"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/img2vid/img2vid/internal/testimage"
	"github.com/img2vid/img2vid/jobs"
	"github.com/img2vid/img2vid/pipeline"
	"github.com/img2vid/img2vid/server"
)

// clipFrames returns the frames of src in order, failing unless there are
// as many as it says.
func clipFrames(t *testing.T, src testimage.Source) []string {
	t.Helper()
	dir := src.Dir(t)
	frames, err := filepath.Glob(filepath.Join(dir, "*.jpg"))
	if err != nil || len(frames) != src.Frames {
		t.Fatalf("want the %d %s frames in %s, found %d (%v)", src.Frames, src.Name, dir, len(frames), err)
	}
	slices.Sort(frames)
	return frames
}

// newServer starts a server over the single-machine job system (an
// embedded NATS server) running the real pipeline; edit adjusts its
// config. It is shut down when the test ends.
func newServer(t *testing.T, edit func(*server.Config)) *server.Server {
	t.Helper()
	return newServerWith(t, nil, edit)
}

// newServerWith is newServer whose worker runs wrap(the pipeline) when
// wrap is not nil.
func newServerWith(t *testing.T, wrap func(jobs.Converter) jobs.Converter, edit func(*server.Config)) *server.Server {
	t.Helper()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	conv := &pipeline.Pipeline{FFmpeg: "ffmpeg", Logger: log}
	// The doors as the command leaves them with no names given: only IP
	// addresses and localhost are answered, and changes are taken only
	// from the server's own page (or from clients that are not browsers).
	cfg := server.Config{
		ProbeAudio: conv.ProbeAudio,
		Logger:     log,
		WorkDir:    filepath.Join(t.TempDir(), "jobs"),
		Limits:     img2vid.DefaultLimits(),
	}
	if edit != nil {
		edit(&cfg)
	}
	conv.Limits = cfg.Limits // as the command wires them: one set of limits
	store := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var run jobs.Converter = conv
	if wrap != nil {
		run = wrap(conv)
	}
	local, err := jobs.StartLocal(ctx, store, jobs.Config{Logger: log},
		jobs.WorkerConfig{Converter: run, Limits: cfg.Limits, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Jobs = local
	s, err := server.New(cfg)
	if err != nil {
		local.Stop(ctx)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := local.Stop(ctx); err != nil {
			t.Errorf("stopping the job system: %v", err)
		}
		for _, dir := range []string{cfg.WorkDir, filepath.Join(store, "worker")} {
			if left, _ := os.ReadDir(dir); len(left) != 0 {
				t.Errorf("%s not empty after shutdown: %v", dir, left)
			}
		}
	})
	return s
}
