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

// aquarium returns the 50 shared test frames in order, failing if they are
// missing: CI puts shared/ beside the checkout.
func aquarium(t *testing.T) []string {
	t.Helper()
	dir := testimage.Aquarium(t)
	frames, err := filepath.Glob(filepath.Join(dir, "*.jpg"))
	if err != nil || len(frames) != 50 {
		t.Fatalf("want the 50 aquarium frames in %s, found %d (%v)", dir, len(frames), err)
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
