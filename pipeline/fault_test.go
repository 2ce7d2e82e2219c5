package pipeline_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/img2vid/img2vid"
	"github.com/img2vid/img2vid/ingest"
	"github.com/img2vid/img2vid/internal/proctest"
	"github.com/img2vid/img2vid/internal/testenv"
	"github.com/img2vid/img2vid/internal/testimage"
	"github.com/img2vid/img2vid/pipeline"
)

// ffmpeg killed in the middle of a job fails that job with ffmpeg's own
// account of it, leaves nothing behind, and the next job works.
func TestFFmpegKilledMidJob(t *testing.T) {
	testenv.NeedFFmpeg(t)
	for _, src := range testimage.Sources(50, 320, 180) {
		t.Run(src.Name, func(t *testing.T) {
			inputs, err := ingest.List(src.Dir(t), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			// Scaled, so the frames are decoded and piped: JPEGs passed to
			// ffmpeg whole are decoded again when ffmpeg fails on them.
			opts := img2vid.DefaultOptions()
			opts.Width, opts.Height = src.Width/2, src.Height/2
			killed := false
			_, err = (&pipeline.Pipeline{}).Convert(context.Background(), inputs, filepath.Join(dir, "v.mp4"), opts, func(p img2vid.Progress) {
				if p.Done == 10 && !killed {
					for _, pid := range proctest.Children(t) {
						syscall.Kill(pid, syscall.SIGKILL)
						killed = true
					}
				}
			})
			if !killed {
				t.Fatal("found no ffmpeg process to kill")
			}
			if err == nil || !strings.Contains(err.Error(), "ffmpeg failed") {
				t.Fatalf("got %v, want an ffmpeg failure", err)
			}
			if extra := leftovers(t, dir); extra != nil {
				t.Errorf("left behind: %v", extra)
			}
			if _, err := (&pipeline.Pipeline{}).Convert(context.Background(), inputs[:5], filepath.Join(dir, "next.mp4"), img2vid.DefaultOptions(), nil); err != nil {
				t.Errorf("the next job failed: %v", err)
			}
		})
	}
}

// A full disk fails the job with a message that says so, and leaves no
// half-written file. The disk is a 64 KiB tmpfs, which needs root.
func TestDiskFull(t *testing.T) {
	testenv.NeedFFmpeg(t)
	if os.Geteuid() != 0 {
		testenv.Missing(t, "mounting a small tmpfs needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", dir).CombinedOutput(); err != nil {
		testenv.Missing(t, "cannot mount a tmpfs here: %v: %s", err, out)
	}
	defer exec.Command("umount", dir).Run()
	// 50 frames of a detailed, moving scene make a video of well over 64 KiB.
	inputs, err := ingest.List(testimage.Clip(t, 50, 640, 360, testimage.Pan), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = (&pipeline.Pipeline{}).Convert(context.Background(), inputs, filepath.Join(dir, "v.mp4"), img2vid.DefaultOptions(), nil)
	if img2vid.ErrorCode(err) != img2vid.EUNAVAILABLE || img2vid.ErrorMessage(err) != "no space left on the disk for the video" ||
		!strings.Contains(errors.Unwrap(err).Error(), "No space left on device") {
		t.Fatalf("got %v, want an unavailable error saying the disk is full, with ffmpeg's words as the cause", err)
	}
	if extra := leftovers(t, dir); extra != nil {
		t.Errorf("left behind: %v", extra)
	}
}
