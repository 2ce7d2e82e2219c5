package repo

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestSharedReadsTheVariable(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root := Root(wd)
	if root == "" || filepath.Base(filepath.Dir(wd)) != "internal" {
		t.Fatalf("Root(%s) = %q, want the checkout two levels up", wd, root)
	}
	t.Setenv(TestDataEnv, "")
	if _, err := Shared(); !errors.Is(err, ErrNoTestData) {
		t.Errorf("unset: err = %v, want ErrNoTestData", err)
	}
	for _, c := range []struct{ env, want string }{
		{"/data/testset", "/data/testset"},
		// Relative to the checkout's root, where make runs, not to the
		// package folder go test runs in.
		{"../shared", filepath.Join(filepath.Dir(root), "shared")},
		{"testdata/x", filepath.Join(root, "testdata", "x")},
	} {
		t.Setenv(TestDataEnv, c.env)
		got, err := Shared()
		if err != nil || got != c.want {
			t.Errorf("%s=%s: got %q, %v; want %q", TestDataEnv, c.env, got, err, c.want)
		}
	}
}
