package testimage

import (
	"bytes"
	"os/exec"
	"testing"
)

// DecodeVideo decodes every frame of a video with the ffmpeg on PATH into
// packed RGB24 bytes of w x h, for checks of what the video really shows.
func DecodeVideo(t testing.TB, file string, w, h int) [][]byte {
	t.Helper()
	cmd := exec.Command("ffmpeg", "-v", "error", "-i", file, "-f", "rawvideo", "-pix_fmt", "rgb24", "-")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("decode %s: %v: %s", file, err, stderr.String())
	}
	size := 3 * w * h
	if len(out)%size != 0 {
		t.Fatalf("decode %s: %d bytes is not a whole number of %dx%d frames", file, len(out), w, h)
	}
	var frames [][]byte
	for i := 0; i < len(out); i += size {
		frames = append(frames, out[i:i+size])
	}
	return frames
}

// RGBAt returns the colour at (x, y) of a packed RGB24 frame w pixels wide.
func RGBAt(frame []byte, w, x, y int) [3]uint8 {
	i := 3 * (y*w + x)
	return [3]uint8{frame[i], frame[i+1], frame[i+2]}
}
