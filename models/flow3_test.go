package models_test

import (
	"math"
	"testing"
)

// TestFlow3Occlusion runs flow3 on TestOcclusion's scenes: a textured
// rectangle moving over a differently moving background, so that at each
// edge the object uncovers background that only one frame shows.
//
// flow3's network was trained to weigh the two warps there, but on these
// scenes (fine texture everywhere) it keeps flow2's mix: measured when
// the weights were trained, flow3 was within 0.05 dB of flow2 on every
// texture (-0.01 and 0.00 dB on average per case), and 0.7-1.9 dB ahead
// of flow (0.92 and 1.28 dB on average). The test asks flow3 to be no
// more than 0.1 dB behind flow2 on average per case or on a texture, and
// at least 0.5 dB ahead of flow on average, never behind it on a texture;
// a change that makes it worse fails.
func TestFlow3Occlusion(t *testing.T) {
	t.Run("against flow2", func(t *testing.T) {
		compareModels(t, "flow3", "flow2", occlusionW, occlusionH, 12, 0.5, -0.1, 0.1, occlusionCases)
	})
	t.Run("against flow", func(t *testing.T) {
		compareModels(t, "flow3", "flow", occlusionW, occlusionH, 12, 0.5, 0.5, 0, occlusionCases)
	})
}

// TestFlow3LargeMotion runs flow3 where the motion is beyond flow's reach
// and an object uncovers the background (a background shifting by 56 or
// 64 pixels with an object moving against it), and on TestLargeMotion's
// whole-frame shifts of 64 and 84 pixels, more than most of its training
// scenes move: its network sees how the field changes, not the field,
// and only weighs the warps, so a large motion that flow2 follows it
// follows too.
//
// Measured when the weights were trained: against flow, flow3 3.7 and
// 2.0 dB ahead on average on the two object cases (+0.3 to +12.1 dB per
// texture); against flow2 within 0.04 dB on every texture of the object
// cases. On the shifts flow3 is within 0.06 dB of flow2 but on two
// textures at 84,24: one where both are at 58 dB and flow3 is 0.71 dB
// behind (a squared error of 0.1 in 8-bit levels, against 0.09), and the
// texture that defeats flow2 at 84,24, which defeats flow3 too (19.4
// against 19.6 dB); 0.24 dB behind on average there. Both came with
// flow2's change to allow for changes of light and to charge matches
// outside the frame, after which flow3 was retrained; before, flow3 was
// within 0.16 dB on every shift. The test asks for 1.5 dB over flow on
// average per object case, never more than 0.1 dB behind it on a
// texture; against flow2, on the objects no more than 0.1 dB behind on
// average or on a texture, on the shifts no more than 0.3 dB on average
// and 1 dB on a texture.
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
		compareModels(t, "flow3", "flow", largeW, largeH, margin, 0.5, 1.5, 0.1, cases)
	})
	t.Run("against flow2", func(t *testing.T) {
		compareModels(t, "flow3", "flow2", largeW, largeH, margin, 0.5, -0.1, 0.1, cases)
	})
	t.Run("shifts, against flow2", func(t *testing.T) {
		compareModels(t, "flow3", "flow2", largeW, largeH, largeMargin, 0.5, -0.3, 1, largeMotionCases())
	})
}
