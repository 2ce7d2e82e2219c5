package testimage

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/img2vid/img2vid/internal/testenv"
)

// SharedDir returns the project's shared test data folder, ../shared beside
// the repository root, found by walking up from the working directory to
// go.mod. When it is absent the test is skipped, or fails in CI.
func SharedDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
	shared := filepath.Join(filepath.Dir(dir), "shared")
	if _, err := os.Stat(shared); err != nil {
		testenv.Missing(t, "shared test data not found at %s", shared)
	}
	return shared
}

// Aquarium returns the 50-frame aquarium folder from SharedDir.
func Aquarium(t testing.TB) string {
	t.Helper()
	return filepath.Join(SharedDir(t), "data", "aquarium")
}
