package models_test

import (
	"math"
	"testing"
)

// TestFlow3Occlusion runs flow3 on TestOcclusion's scenes: a textured
// rectangle moving over a differently moving background, so that at each
// edge the object uncovers background that only one frame shows.
//
// flow3's network was trained to weigh and correct the two warps there,
// but on these scenes (fine texture everywhere, unlike most of its
// training scenes) it does not beat flow2: measured when the weights were
// trained, flow3 was 0.1-1.5 dB behind flow2 on every texture (0.95 dB
// on average for the first case, 0.24 dB for the second), and level with
// flow (-0.06 dB and +1.17 dB on average). The test records that: it
// asks flow3 to be no more than 1.1 dB behind flow2 on average per case
// and 1.7 dB on a texture, and no more than 0.3 dB behind flow on average
// and 1.0 dB on a texture; a change that makes it worse fails.
func TestFlow3Occlusion(t *testing.T) {
	t.Run("against flow2", func(t *testing.T) {
		compareModels(t, "flow3", "flow2", occlusionW, occlusionH, 12, -1.1, 1.7, occlusionCases)
	})
	t.Run("against flow", func(t *testing.T) {
		compareModels(t, "flow3", "flow", occlusionW, occlusionH, 12, -0.3, 1.0, occlusionCases)
	})
}

// TestFlow3LargeMotion runs flow3 where the motion is beyond flow's reach
// and an object uncovers the background (a background shifting by 56 or
// 64 pixels with an object moving against it), and on TestLargeMotion's
// whole-frame shifts of 64 and 84 pixels, more than most of its training
// scenes move: its network sees how the field changes, not the field,
// and its corrections are bounded, so a large motion that flow2 follows
// it follows too.
//
// Measured when the weights were trained: against flow, flow3 1.8 and 4.1
// dB ahead on average on the two object cases (-0.6 to +12.3 dB per
// texture); against flow2, -0.06 and -0.42 dB on average (-1.2 to +0.6 dB
// per texture), so no gain there; on the shifts within 0.45 dB of
// flow2's 59-62 dB (the texture that defeats flow2 at 84,24 defeats
// flow3 too). The test asks for 1 dB over flow on average per object
// case, never more than 1 dB behind it on a texture; against flow2 no
// more than 0.6 dB behind on average, 1.5 dB on a texture; on the shifts,
// no more than 0.3 dB behind on average and 0.6 dB on a texture.
func TestFlow3LargeMotion(t *testing.T) {
	cases := map[string]func(seed uint64) func(s float64) scene{
		"object 40,-12 over background 64,-20": func(seed uint64) func(s float64) scene {
			return withObject(newTexture(seed+400), newTexture(seed+500), [2]float64{64, -20}, [2]float64{40, -12}, [4]float64{120, 70, 220, 160})
		},
		"object 20,0 over background 56,-18": func(seed uint64) func(s float64) scene {
			return withObject(newTexture(seed+400), newTexture(seed+500), [2]float64{56, -18}, [2]float64{20, 0}, [4]float64{120, 70, 220, 160})
		},
	}
	margin := int(math.Ceil(64/2)) + 8 // where both frames see the background
	t.Run("against flow", func(t *testing.T) {
		compareModels(t, "flow3", "flow", largeW, largeH, margin, 1, 1, cases)
	})
	t.Run("against flow2", func(t *testing.T) {
		compareModels(t, "flow3", "flow2", largeW, largeH, margin, -0.6, 1.5, cases)
	})
	t.Run("shifts, against flow2", func(t *testing.T) {
		compareModels(t, "flow3", "flow2", largeW, largeH, largeMargin, -0.3, 0.6, largeMotionCases())
	})
}
