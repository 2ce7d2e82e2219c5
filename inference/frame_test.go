package inference

import (
	"context"
	"image"
	"testing"

	xdraw "golang.org/x/image/draw"

	"github.com/img2vid/img2vid/internal/testimage"
)

// TestQuickSRNetBeatsBicubic runs a super-resolution model no one on this
// project made through the registry and the tiled frame path: a layout,
// channel order or value range mistake would land far below bicubic.
func TestQuickSRNetBeatsBicubic(t *testing.T) {
	r := openRuntime(t, quickSRNetDir(t))
	m, err := r.FrameModel("sr-2x")
	if err != nil {
		t.Fatalf("FrameModel: %v", err)
	}
	for _, n := range []int{0, 25, 49} {
		orig := testimage.AquariumFrame(t, n, 0, 0)
		small := downscale2(orig)
		up, err := m.Apply(context.Background(), small)
		if err != nil {
			t.Fatalf("Apply: %v", err)
		}
		if up.Rect.Size() != orig.Rect.Size() {
			t.Fatalf("frame %d: model output %v, want %v", n, up.Rect.Size(), orig.Rect.Size())
		}
		bicubic := image.NewNRGBA(orig.Rect)
		xdraw.CatmullRom.Scale(bicubic, bicubic.Rect, small, small.Rect, xdraw.Src, nil)
		pm, pb := psnr(t, orig, up), psnr(t, orig, bicubic)
		t.Logf("frame %d: model %.2f dB, bicubic %.2f dB", n, pm, pb)
		if pm < pb+3 {
			t.Errorf("frame %d: model PSNR %.2f dB is not 3 dB above bicubic's %.2f dB", n, pm, pb)
		}
	}
}
