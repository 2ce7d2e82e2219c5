// Package repo finds the project's checkout, for the things that live
// beside it in development: the .deps folder setup fills, and ../shared,
// the shared test data.
package repo

import (
	"errors"
	"os"
	"path/filepath"
)

// Root returns the nearest folder at or above dir that holds go.mod, or ""
// if there is none.
func Root(dir string) string {
	for {
		if fi, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil && !fi.IsDir() {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// Shared returns ../shared beside the checkout holding the working
// directory.
func Shared() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	root := Root(wd)
	if root == "" {
		return "", errors.New("no go.mod at or above the working directory")
	}
	return filepath.Join(filepath.Dir(root), "shared"), nil
}
