package video

import (
	"bytes"
	"fmt"
	"io"
	"os"
)

// Mark is what every video this program writes carries: the comment tag of
// an MP4 or WebM, a comment block at the end of a GIF. It tells a video
// img2vid wrote, which a new conversion may replace, from a user's file,
// which it must not.
const Mark = "img2vid"

// gifMark is a GIF comment extension holding Mark, then the GIF trailer.
var gifMark = []byte("\x21\xfe\x07" + Mark + "\x00\x3b")

// markWindow is how much of an MP4 or WebM is searched for the mark: the
// metadata sits near the start (MP4 with its index at the front, WebM's
// tags), well within it for the longest video the limits allow.
const markWindow = 1 << 20

// markGIF puts the comment with Mark before the trailer of the GIF at
// path; a comment extension may stand between any two blocks.
func markGIF(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	end, err := f.Seek(-1, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("marking %s: %w", path, err)
	}
	last := make([]byte, 1)
	if _, err := io.ReadFull(f, last); err != nil || last[0] != 0x3b {
		return fmt.Errorf("marking %s: the GIF does not end with its trailer", path)
	}
	if _, err := f.WriteAt(gifMark, end); err != nil {
		return fmt.Errorf("marking %s: %w", path, err)
	}
	return f.Close()
}

// Marked reports whether the file at path is a video this program wrote:
// an MP4, WebM or GIF by its first bytes, carrying Mark.
func Marked(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	head := make([]byte, markWindow)
	n, err := io.ReadFull(f, head)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return false, err
	}
	head = head[:n]
	switch {
	case len(head) >= 8 && string(head[4:8]) == "ftyp", bytes.HasPrefix(head, []byte{0x1a, 0x45, 0xdf, 0xa3}):
		return bytes.Contains(head, []byte(Mark)), nil
	case bytes.HasPrefix(head, []byte("GIF87a")), bytes.HasPrefix(head, []byte("GIF89a")):
		fi, err := f.Stat()
		if err != nil || fi.Size() < int64(len(gifMark)) {
			return false, err
		}
		tail := make([]byte, len(gifMark))
		if _, err := f.ReadAt(tail, fi.Size()-int64(len(gifMark))); err != nil {
			return false, err
		}
		return bytes.Equal(tail, gifMark), nil
	}
	return false, nil
}
