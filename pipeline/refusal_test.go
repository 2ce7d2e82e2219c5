package pipeline_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/img2vid/img2vid"
	"github.com/img2vid/img2vid/internal/testimage"
	"github.com/img2vid/img2vid/pipeline"
)

// When the first image sets the video's size, a size refusal is that
// file's doing, and names it; a size the user set names no file.
func TestSizeRefusalNamesTheFile(t *testing.T) {
	dir := t.TempDir()
	tall := filepath.Join(dir, "tall.png")
	testimage.Write(t, tall, testimage.PNGHeaderOnly(194, 31424))
	small := filepath.Join(dir, "small.png")
	testimage.Write(t, small, testimage.PNG(t, testimage.Quadrants(16, 16)))
	set := img2vid.DefaultOptions()
	set.Width, set.Height = 4000, 4000
	original := img2vid.DefaultOptions()
	original.KeepSize = true // by default a tall first image is scaled into 2160x3840
	for _, tc := range []struct {
		name   string
		inputs []string
		opts   img2vid.Options
		says   string
	}{
		{"sized by the first image", []string{tall, small}, original, "tall.png: video size 194x31424 is above the limit of 8192x8192"},
		{"sized by the pixel limit", []string{small}, set, "video frames of 4000x4000 are too large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &pipeline.Pipeline{Limits: img2vid.Limits{Pixels: 10_000_000}}
			_, err := p.Convert(context.Background(), tc.inputs, filepath.Join(t.TempDir(), "v.mp4"), tc.opts, nil)
			if img2vid.ErrorCode(err) != img2vid.ETOOLARGE || !strings.HasPrefix(err.Error(), tc.says) {
				t.Errorf("got %v, want a refusal starting %q", err, tc.says)
			}
		})
	}
}
