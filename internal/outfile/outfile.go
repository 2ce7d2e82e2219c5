// Package outfile creates the temporary files outputs are written to
// before they are renamed into place.
package outfile

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
)

// Temp creates a new file beside final, named ".<final's name>.<random><suffix>",
// with the mode an ordinary new file gets (0666 less the umask: 0644 as
// usually set). os.CreateTemp makes 0600 files, which a file renamed into
// place keeps: a video written by a container's user into a mounted folder
// could then not be opened by anyone else.
func Temp(final, suffix string) (*os.File, error) {
	dir, base := filepath.Dir(final), filepath.Base(final)
	for range 100 {
		var b [8]byte
		rand.Read(b[:])
		name := filepath.Join(dir, "."+base+"."+hex.EncodeToString(b[:])+suffix)
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o666)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		return f, err
	}
	return nil, &os.PathError{Op: "create", Path: filepath.Join(dir, "."+base+".*"+suffix), Err: os.ErrExist}
}
