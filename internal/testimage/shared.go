package testimage

import (
	"errors"
	"fmt"
	"image"
	"image/draw"
	_ "image/jpeg" // the aquarium frames
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/disintegration/imaging"

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

// AquariumFrame decodes frame n of the aquarium clip (frame_NNN.jpg, 1920x1080)
// and, when w is above 0, resizes it to w x h with imaging's Box filter
// (an area mean when shrinking). A missing or damaged frame fails the test.
func AquariumFrame(t testing.TB, n, w, h int) *image.NRGBA {
	t.Helper()
	return aquariumFrame(t, filepath.Join(Aquarium(t), fmt.Sprintf("frame_%03d.jpg", n)), w, h)
}

// AquariumFrames is AquariumFrame for every frame of the clip, in order;
// the clip must hold at least min frames.
func AquariumFrames(t testing.TB, min, w, h int) []*image.NRGBA {
	t.Helper()
	dir := Aquarium(t)
	names, err := filepath.Glob(filepath.Join(dir, "frame_*.jpg"))
	if err != nil || len(names) < min {
		t.Fatalf("%s: want at least %d frames, found %d (%v)", dir, min, len(names), err)
	}
	sort.Strings(names)
	frames := make([]*image.NRGBA, len(names))
	for i, name := range names {
		frames[i] = aquariumFrame(t, name, w, h)
	}
	return frames
}

func aquariumFrame(t testing.TB, path string, w, h int) *image.NRGBA {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("extended test data: %v", err)
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	out := image.NewNRGBA(img.Bounds())
	draw.Draw(out, out.Rect, img, img.Bounds().Min, draw.Src)
	if w > 0 {
		out = imaging.Resize(out, w, h, imaging.Box)
	}
	return out
}
