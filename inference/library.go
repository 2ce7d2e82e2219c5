package inference

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/img2vid/img2vid"
	"github.com/img2vid/img2vid/internal/repo"
)

// ORTVersion is the ONNX Runtime release this build is made for. The Go
// binding (github.com/yalue/onnxruntime_go v1.27.0, pinned in go.mod) asks
// the library for C API 24, which 1.24.x serves; scripts/versions.env pins
// the same release for the setup script, and a test fails when the library
// it loads reports another version.
const ORTVersion = "1.24.3"

// libraryNames are the file names ONNX Runtime's library goes by, most
// specific last: release archives ship libonnxruntime.so.1.24.3 with
// symlinks, the npm package only libonnxruntime.so.1.
var libraryNames = []string{"libonnxruntime.so", "libonnxruntime.so.1", "libonnxruntime.so." + ORTVersion}

// SystemLibraryDirs are the places a system-wide install puts the library.
var SystemLibraryDirs = []string{"/usr/local/lib", "/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib", "/opt/onnxruntime/lib"}

// SetupDir is where scripts/setup.sh installs the library, relative to the
// repository root.
var SetupDir = filepath.Join(".deps", "onnxruntime-"+ORTVersion)

// LibrarySearch says where to look for the ONNX Runtime shared library, in
// the order FindLibrary tries the places.
type LibrarySearch struct {
	// Explicit is a path given by the user (a flag or ONNXRUNTIME_LIB): a
	// file, or a folder holding the library. When set, nothing else is tried.
	Explicit string
	// ExeDir is the folder of the running executable.
	ExeDir string
	// SetupDirs are setup folders (see SetupDir), already joined to the
	// working directory and the repository root.
	SetupDirs []string
	// SystemDirs are system library folders, usually SystemLibraryDirs.
	SystemDirs []string
	// IsFile reports whether a regular file (or a link to one) exists at
	// path; nil means the real file system.
	IsFile func(path string) bool
}

// DefaultLibrarySearch returns the usual search: explicit (the caller reads
// the flag or ONNXRUNTIME_LIB), beside the executable, the setup folder under
// the working directory and under the repository root that holds it (found
// by walking up to go.mod), then the system folders.
func DefaultLibrarySearch(explicit string) LibrarySearch {
	s := LibrarySearch{Explicit: explicit, SystemDirs: SystemLibraryDirs}
	if exe, err := os.Executable(); err == nil {
		s.ExeDir = filepath.Dir(exe)
	}
	if wd, err := os.Getwd(); err == nil {
		s.SetupDirs = append(s.SetupDirs, filepath.Join(wd, SetupDir))
		if root := repo.Root(wd); root != "" && root != wd {
			s.SetupDirs = append(s.SetupDirs, filepath.Join(root, SetupDir))
		}
	}
	return s
}

// LibraryCandidates lists, in order, every path FindLibrary would try for
// the search s when nothing is explicit.
func LibraryCandidates(s LibrarySearch) []string {
	var dirs []string
	if s.ExeDir != "" {
		dirs = append(dirs, s.ExeDir)
	}
	dirs = append(dirs, s.SetupDirs...)
	dirs = append(dirs, s.SystemDirs...)
	var paths []string
	for _, d := range dirs {
		for _, n := range libraryNames {
			paths = append(paths, filepath.Join(d, n))
		}
	}
	return paths
}

// FindLibrary returns the path of the ONNX Runtime shared library for the
// search s. An explicit path that holds no library is an error naming it,
// never a reason to look elsewhere: the user asked for that one. When
// nothing is found the error lists every place tried and how to install it.
func FindLibrary(s LibrarySearch) (string, error) {
	isFile := s.IsFile
	if isFile == nil {
		isFile = regularFile
	}
	if s.Explicit != "" {
		if isFile(s.Explicit) {
			return s.Explicit, nil
		}
		for _, n := range libraryNames {
			if p := filepath.Join(s.Explicit, n); isFile(p) {
				return p, nil
			}
		}
		return "", img2vid.Errorf(img2vid.EUNAVAILABLE,
			"ONNX Runtime library: %s (given by --ort-lib or ONNXRUNTIME_LIB) is neither the library nor a folder holding %s",
			s.Explicit, strings.Join(libraryNames, " or "))
	}
	tried := LibraryCandidates(s)
	for _, p := range tried {
		if isFile(p) {
			return p, nil
		}
	}
	return "", img2vid.Errorf(img2vid.EUNAVAILABLE,
		"ONNX Runtime %s library not found; run scripts/setup.sh or set ONNXRUNTIME_LIB (tried %s)",
		ORTVersion, strings.Join(tried, ", "))
}

func regularFile(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular()
}
