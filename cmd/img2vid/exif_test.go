package main

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/img2vid/img2vid/internal/testenv"
	"github.com/img2vid/img2vid/internal/testimage"
	"github.com/img2vid/img2vid/video"
)

// A photo whose orientation sits at the end of a full-size EXIF segment
// sets an upright canvas, and the next image, turned the other way, is
// letterboxed into it, not stretched.
func TestConvertFindsOrientationInAFullSizeEXIFSegment(t *testing.T) {
	testenv.NeedFFmpeg(t)
	dir := t.TempDir()
	testimage.Write(t, filepath.Join(dir, "1.jpg"), testimage.FullEXIFJPEG(t, testimage.Quadrants(32, 64), 6, 0))
	testimage.Write(t, filepath.Join(dir, "2.png"), testimage.PNG(t, testimage.Solid(64, 32, testimage.QuadrantColor(false, false))))
	out := filepath.Join(t.TempDir(), "v.mp4")
	if code, _, errOut := runCLI(t, "convert", "--fps", "2", "--quality", "10", dir, out); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	info, err := video.Probe(context.Background(), "ffprobe", out)
	if err != nil {
		t.Fatal(err)
	}
	if info.Width != 32 || info.Height != 64 {
		t.Fatalf("video is %dx%d, want the upright photo's 32x64", info.Width, info.Height)
	}
	frames := testimage.DecodeVideo(t, out, 32, 64)
	if got := testimage.RGBAt(frames[0], 32, 6, 6); got[0] < 200 || got[1] > 60 || got[2] > 60 {
		t.Errorf("first frame's top left is %v, want red: the photo upright", got)
	}
	second := frames[len(frames)-1]
	if got := testimage.RGBAt(second, 32, 16, 4); got[0] > 40 || got[1] > 40 || got[2] > 40 {
		t.Errorf("second frame's top is %v, want black: the wide image letterboxed", got)
	}
	if got := testimage.RGBAt(second, 32, 16, 32); got[0] < 200 || got[1] < 200 || got[2] < 200 {
		t.Errorf("second frame's middle is %v, want white", got)
	}
}
