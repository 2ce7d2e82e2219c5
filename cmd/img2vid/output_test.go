package main

import (
	"bytes"
	"image/color"
	"image/gif"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/img2vid/img2vid/internal/testenv"
	"github.com/img2vid/img2vid/internal/testimage"
	"github.com/img2vid/img2vid/video"
)

// writeImages writes small images named names into dir and returns their
// paths.
func writeImages(t *testing.T, dir string, names ...string) []string {
	t.Helper()
	var paths []string
	for i, name := range names {
		img := testimage.Solid(32, 32, color.NRGBA{uint8(40 * i), 100, 200, 255})
		var data []byte
		switch filepath.Ext(name) {
		case ".gif":
			var buf bytes.Buffer
			if err := gif.Encode(&buf, img, nil); err != nil {
				t.Fatal(err)
			}
			data = buf.Bytes()
		case ".png":
			data = testimage.PNG(t, img)
		default:
			data = testimage.JPEG(t, img)
		}
		p := filepath.Join(dir, name)
		testimage.Write(t, p, data)
		paths = append(paths, p)
	}
	return paths
}

// convert never destroys a file of the user's: forgetting OUTPUT (the last
// image would become the video), naming an input as OUTPUT, or naming an
// existing file that is not a video img2vid wrote is refused with what to
// do, and the file is left as it was.
func TestConvertRefusesToDestroyFiles(t *testing.T) {
	dir := t.TempDir()
	jpgs := writeImages(t, dir, "IMG_1.jpg", "IMG_2.jpg", "IMG_3.jpg")
	gifs := writeImages(t, dir, "a.gif", "b.gif", "c.gif")
	mine := filepath.Join(dir, "holiday.mp4")
	testimage.Write(t, mine, []byte("a video of the user's, not made by img2vid"))
	folder := filepath.Join(dir, "videos")
	if err := os.Mkdir(folder, 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		text string
	}{
		{"output forgotten", append([]string{"convert"}, jpgs...), "is an image's name, not a video's: is the video file missing?"},
		{"output forgotten, GIF photos", append([]string{"convert"}, gifs...), "exists and is not a video img2vid wrote: name a new file, or pass --overwrite"},
		{"output is an input", []string{"convert", "--keep-order", gifs[0], gifs[1], gifs[0]}, "is also an input: name the video file last"},
		{"output is an input by another path", []string{"convert", gifs[0], gifs[1], filepath.Join(dir, ".", "videos", "..", "a.gif")}, "is also an input"},
		{"output is a user's video", []string{"convert", jpgs[0], jpgs[1], mine}, "pass --overwrite to replace it"},
		{"output is a folder", []string{"convert", jpgs[0], jpgs[1], folder}, "is a folder"},
	}
	before := map[string][]byte{}
	for _, p := range append(append(jpgs, gifs...), mine) {
		before[p], _ = os.ReadFile(p)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := runCLI(t, tt.args...)
			if code == 0 || !strings.Contains(errOut, tt.text) {
				t.Errorf("exit %d, stderr %q; want a failure saying %q", code, errOut, tt.text)
			}
			for p, data := range before {
				if now, err := os.ReadFile(p); err != nil || !bytes.Equal(now, data) {
					t.Errorf("%s changed (%v)", p, err)
				}
			}
			if entries, _ := os.ReadDir(folder); len(entries) != 0 {
				t.Errorf("the folder holds %v", entries)
			}
		})
	}
}

// A video img2vid wrote may be replaced by the next run without asking
// (MP4, WebM, GIF, and MP4 with a soundtrack); a user's file with
// --overwrite. Videos are written with the mode the umask gives a new
// file (0644 as usually set), not a temporary file's 0600.
func TestConvertReplacesItsOwnVideosWithTheUsualMode(t *testing.T) {
	testenv.NeedFFmpeg(t)
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	dir := t.TempDir()
	writeImages(t, dir, "f1.png", "f2.png", "f3.png")
	out := t.TempDir()
	sound := filepath.Join(out, "tone.wav")
	if b, err := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=440:duration=1", "-y", sound).CombinedOutput(); err != nil {
		t.Fatalf("making a soundtrack: %v %s", err, b)
	}
	for _, tt := range []struct {
		name  string
		extra []string
	}{
		{"v.mp4", nil}, {"v.webm", nil}, {"v.gif", nil}, {"sound.mp4", []string{"--audio", sound}},
	} {
		output := filepath.Join(out, tt.name)
		for run := range 2 {
			args := append(append([]string{"convert", "--fps", "10"}, tt.extra...), dir, output)
			if code, _, errOut := runCLI(t, args...); code != 0 {
				t.Fatalf("%s, run %d: exit %d: %s", tt.name, run+1, code, errOut)
			}
		}
		fi, err := os.Stat(output)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o644 {
			t.Errorf("%s has mode %v, want -rw-r--r--", tt.name, fi.Mode().Perm())
		}
		if ours, err := video.Marked(output); !ours || err != nil {
			t.Errorf("%s does not carry the mark (%v)", tt.name, err)
		}
	}
	mine := filepath.Join(out, "mine.mp4")
	testimage.Write(t, mine, []byte("not a video"))
	if code, _, errOut := runCLI(t, "convert", "--overwrite", dir, mine); code != 0 {
		t.Fatalf("--overwrite: exit %d: %s", code, errOut)
	}
	if ours, _ := video.Marked(mine); !ours {
		t.Errorf("--overwrite did not replace the file with a video")
	}
}
