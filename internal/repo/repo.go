// Package repo finds the project's checkout, for the things that live
// beside it in development: the .deps folder setup fills, and the extended
// test data that IMG2VID_TESTDATA points at.
package repo

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// TestDataEnv names the environment variable that points at the extended
// test data: a folder laid out as data/aquarium/ (real camera frames) and
// models/ (third-party models), which the project does not ship.
const TestDataEnv = "IMG2VID_TESTDATA"

// ErrNoTestData is returned by Shared when TestDataEnv is not set.
var ErrNoTestData = errors.New(TestDataEnv + " is not set: point it at the extended test data (a folder holding data/aquarium/ and models/)")

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

// Shared returns the extended test data folder that TestDataEnv names, or
// ErrNoTestData when it is unset. A relative path is taken from the root
// of the checkout holding the working directory, where `make` runs, not
// from the package folder `go test` runs each test in.
func Shared() (string, error) {
	dir := os.Getenv(TestDataEnv)
	if dir == "" {
		return "", ErrNoTestData
	}
	if filepath.IsAbs(dir) {
		return dir, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	root := Root(wd)
	if root == "" {
		return "", fmt.Errorf("%s=%s is relative and no go.mod is at or above %s to resolve it from", TestDataEnv, dir, wd)
	}
	return filepath.Join(root, dir), nil
}
