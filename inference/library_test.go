package inference

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/img2vid/img2vid"
)

func TestFindLibraryOrder(t *testing.T) {
	search := func(explicit string, files ...string) LibrarySearch {
		return LibrarySearch{
			Explicit:   explicit,
			ExeDir:     "/opt/app",
			SetupDirs:  []string{"/work/.deps/onnxruntime-1.24.3", "/repo/.deps/onnxruntime-1.24.3"},
			SystemDirs: []string{"/usr/local/lib", "/usr/lib"},
			IsFile:     func(p string) bool { return slices.Contains(files, p) },
		}
	}
	all := []string{
		"/custom/libonnxruntime.so.1.24.3",
		"/opt/app/libonnxruntime.so",
		"/work/.deps/onnxruntime-1.24.3/libonnxruntime.so.1",
		"/repo/.deps/onnxruntime-1.24.3/libonnxruntime.so",
		"/usr/local/lib/libonnxruntime.so.1",
		"/usr/lib/libonnxruntime.so",
	}
	tests := []struct {
		name     string
		explicit string
		files    []string
		want     string
	}{
		{"explicit file wins over everything", "/custom/libonnxruntime.so.1.24.3", all, "/custom/libonnxruntime.so.1.24.3"},
		{"explicit folder", "/custom", all, "/custom/libonnxruntime.so.1.24.3"},
		{"beside the executable next", "", all, "/opt/app/libonnxruntime.so"},
		{"setup folder under the working dir", "", all[2:], "/work/.deps/onnxruntime-1.24.3/libonnxruntime.so.1"},
		{"setup folder under the repository root", "", all[3:], "/repo/.deps/onnxruntime-1.24.3/libonnxruntime.so"},
		{"system folders in their order", "", all[4:], "/usr/local/lib/libonnxruntime.so.1"},
		{"last system folder", "", all[5:], "/usr/lib/libonnxruntime.so"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FindLibrary(search(tt.explicit, tt.files...))
			if err != nil || got != tt.want {
				t.Errorf("FindLibrary = %q, %v; want %q", got, err, tt.want)
			}
		})
	}

	t.Run("explicit path that holds nothing is an error, not a search", func(t *testing.T) {
		_, err := FindLibrary(search("/nowhere/libonnxruntime.so", all...))
		if img2vid.ErrorCode(err) != img2vid.EUNAVAILABLE || !strings.Contains(err.Error(), "/nowhere/libonnxruntime.so") {
			t.Errorf("got %v, want an unavailable error naming the path", err)
		}
	})
	t.Run("nothing found lists every place tried", func(t *testing.T) {
		_, err := FindLibrary(search(""))
		for _, p := range []string{"/opt/app/libonnxruntime.so", "/repo/.deps/onnxruntime-1.24.3/libonnxruntime.so.1.24.3", "/usr/lib/libonnxruntime.so.1", "scripts/setup.sh"} {
			if err == nil || !strings.Contains(err.Error(), p) {
				t.Errorf("error %v does not mention %s", err, p)
			}
		}
	})
}

func TestDefaultLibrarySearchFindsTheRepositoryRoot(t *testing.T) {
	s := DefaultLibrarySearch("")
	wd := filepath.Dir(mustAbs(t, "."))
	if want := filepath.Join(wd, SetupDir); !slices.Contains(s.SetupDirs, want) {
		t.Errorf("setup dirs %v lack %s (the repository root's)", s.SetupDirs, want)
	}
	if s.ExeDir == "" || len(s.SystemDirs) == 0 {
		t.Errorf("search %+v lacks the executable's folder or the system folders", s)
	}
}

func mustAbs(t *testing.T, p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
