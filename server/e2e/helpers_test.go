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

// newServer starts a server running the real pipeline; edit adjusts its
// config. It is shut down when the test ends.
func newServer(t *testing.T, edit func(*server.Config)) *server.Server {
	t.Helper()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	conv := &pipeline.Pipeline{FFmpeg: "ffmpeg", Logger: log}
	cfg := server.Config{
		Converter:  conv,
		ProbeAudio: conv.ProbeAudio,
		Logger:     log,
		WorkDir:    filepath.Join(t.TempDir(), "jobs"),
		Limits:     img2vid.DefaultLimits(),
		// As the command serves on loopback: only loopback host names, and
		// changes from the server's own page (or from clients that are not
		// browsers) only.
		AllowedHosts: []string{"localhost", "127.0.0.1", "::1"},
	}
	if edit != nil {
		edit(&cfg)
	}
	conv.Limits = cfg.Limits // as the command wires them: one set of limits
	s, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if left, _ := os.ReadDir(cfg.WorkDir); len(left) != 0 {
			t.Errorf("work folder not empty after shutdown: %v", left)
		}
	})
	return s
}
