package testimage

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/img2vid/img2vid/internal/repo"
	"github.com/img2vid/img2vid/internal/testenv"
)

// ExtendedSkip starts the message of every test skipped for want of the
// extended test data, so a run's skips can be told apart from others.
const ExtendedSkip = "extended test:"

// SharedDir returns the extended test data folder, the one IMG2VID_TESTDATA
// names (relative paths from the repository root): real camera frames and
// third-party models the project does not ship. Tests that need it are the
// extended set. When the variable is unset the test is skipped, or fails in
// CI (CI set), where the extended set must run. A set variable naming a
// missing folder always fails: someone asked for the extended set.
func SharedDir(t testing.TB) string {
	t.Helper()
	shared, err := repo.Shared()
	if errors.Is(err, repo.ErrNoTestData) {
		testenv.Missing(t, "%s %s is not set (IMG2VID_TESTDATA=/path/to/data make test runs it)", ExtendedSkip, repo.TestDataEnv)
	}
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(shared); err != nil || !fi.IsDir() {
		t.Fatalf("%s=%s: no such folder (%v)", repo.TestDataEnv, shared, err)
	}
	return shared
}

// Aquarium returns the 50-frame aquarium folder from SharedDir.
func Aquarium(t testing.TB) string {
	t.Helper()
	return filepath.Join(SharedDir(t), "data", "aquarium")
}
