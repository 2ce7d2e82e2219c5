// Package testenv decides what a test does when something it needs (ffmpeg,
// ONNX Runtime, Chromium, the shared test data) is missing: skip with the
// reason on a developer's machine, fail in CI, where the README's test
// command has installed everything, so that a green CI means the test ran.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// Missing skips the test, saying why, or fails it when the CI environment
// variable is set.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("missing in CI: "+format, args...)
	}
	t.Skipf(format, args...)
}

// NeedFFmpeg calls Missing unless ffmpeg and ffprobe are on PATH.
func NeedFFmpeg(t testing.TB) {
	t.Helper()
	for _, p := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(p); err != nil {
			Missing(t, "%s not installed (scripts/setup.sh installs it)", p)
		}
	}
}
