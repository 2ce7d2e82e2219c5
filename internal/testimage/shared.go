package testimage

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/img2vid/img2vid/internal/repo"
	"github.com/img2vid/img2vid/internal/testenv"
)

// SharedDir returns the project's shared test data folder, ../shared beside
// the repository root, found by walking up from the working directory to
// go.mod. When it is absent the test is skipped, or fails in CI.
func SharedDir(t testing.TB) string {
	t.Helper()
	shared, err := repo.Shared()
	if err != nil {
		t.Fatal(err)
	}
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
