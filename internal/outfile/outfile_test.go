package outfile

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestTempHasTheUmasksMode(t *testing.T) {
	dir := t.TempDir()
	for _, umask := range []int{0o022, 0o077, 0o002} {
		old := syscall.Umask(umask)
		f, err := Temp(filepath.Join(dir, "v.mp4"), ".part")
		syscall.Umask(old)
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		fi, err := os.Stat(f.Name())
		if err != nil {
			t.Fatal(err)
		}
		if got, want := fi.Mode().Perm(), os.FileMode(0o666&^umask); got != want {
			t.Errorf("umask %03o: mode %v, want %v", umask, got, want)
		}
		if name := filepath.Base(f.Name()); !strings.HasPrefix(name, ".v.mp4.") || !strings.HasSuffix(name, ".part") {
			t.Errorf("name %s, want .v.mp4.*.part", name)
		}
	}
}
