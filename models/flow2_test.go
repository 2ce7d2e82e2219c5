package models_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/img2vid/img2vid"
	"github.com/img2vid/img2vid/internal/testimage"
)

// interpolatePSNR runs the named model on the scene's frames at s=0 and
// s=1 and compares its frame at time s with the scene rendered at s,
// leaving out margin pixels at each edge.
func interpolatePSNR(t *testing.T, name string, w, h int, at func(s float64) scene, s float64, margin int) float64 {
	t.Helper()
	m, err := rt.Interpolator(name)
	if err != nil {
		t.Fatal(err)
	}
	a, mid, b := render(w, h, at(0)), render(w, h, at(s)), render(w, h, at(1))
	got, err := img2vid.InterpolateAll(context.Background(), m, a, b, []float32{float32(s)})
	if err != nil {
		t.Fatal(err)
	}
	return psnr(got[0], mid, margin)
}

// withObject is bg moved by bgv times s, with a rectangle (x0, y0, x1, y1
// at s=0) cut from fg moved by fgv times s in front of it.
func withObject(bg, fg scene, bgv, fgv [2]float64, box [4]float64) func(s float64) scene {
	return func(s float64) scene {
		return func(x, y float64) [3]float64 {
			ox, oy := x-fgv[0]*s, y-fgv[1]*s
			if ox >= box[0] && ox < box[2] && oy >= box[1] && oy < box[3] {
				return fg(ox, oy)
			}
			return bg(x-bgv[0]*s, y-bgv[1]*s)
		}
	}
}

// compareModels runs models a and b on every case and texture at time s,
// and asks a to beat b by minMean dB on average over the textures of each
// case and never to fall more than maxLoss dB behind on one.
func compareModels(t *testing.T, a, b string, w, h, margin int, s, minMean, maxLoss float64, cases map[string]func(seed uint64) func(s float64) scene) {
	needRuntime(t)
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			var gain float64
			const textures = 4
			for seed := range uint64(textures) {
				pa := interpolatePSNR(t, a, w, h, c(seed), s, margin)
				pb := interpolatePSNR(t, b, w, h, c(seed), s, margin)
				t.Logf("texture %d: %s %.2f dB, %s %.2f dB", seed, a, pa, b, pb)
				if pa < pb-maxLoss {
					t.Errorf("texture %d: %s %.2f dB is more than %.1f dB behind %s's %.2f dB", seed, a, pa, maxLoss, b, pb)
				}
				gain += (pa - pb) / textures
			}
			if gain < minMean {
				t.Errorf("%s beats %s by %.2f dB on average, want at least %.2f dB", a, b, gain, minMean)
			}
		})
	}
}

// TestOcclusion moves a textured rectangle over a background that moves
// differently, so that at each of its edges the object covers background
// that one frame shows and uncovers background that only the other frame
// shows. flow averages the two warps there (a ghost of the object, a
// smear of the background); flow2 keeps the motion boundary sharp and
// takes each uncovered part from the frame that shows it.
//
// Measured since flow2 picks each pixel's vector at 1/2 resolution:
// flow2 ahead by 0.7-1.9 dB per texture (0.93 and 1.28 dB on average per
// case; flow2 at 30-41 dB; the flow2 before, which upsampled its field
// bilinearly, 0.89 and 1.40 dB); since flow2 blurs where its field is
// uncertain, 0.94 and 1.63 dB. The test asks for 0.8 dB on average per
// case and never more than 0.3 dB behind.
func TestOcclusion(t *testing.T) {
	compareModels(t, "flow2", "flow", occlusionW, occlusionH, 12, 0.5, 0.8, 0.3, occlusionCases)
}

// The frame size and cases of TestOcclusion.
const occlusionW, occlusionH = 256, 192

var occlusionCases = map[string]func(seed uint64) func(s float64) scene{
	"object 14,-6 over background 2,1": func(seed uint64) func(s float64) scene {
		return withObject(newTexture(seed+100), newTexture(seed+200), [2]float64{2, 1}, [2]float64{14, -6}, [4]float64{80, 60, 150, 130})
	},
	"object 30,10 over background -8,3": func(seed uint64) func(s float64) scene {
		return withObject(newTexture(seed+100), newTexture(seed+200), [2]float64{-8, 3}, [2]float64{30, 10}, [4]float64{60, 40, 140, 120})
	},
}

// TestOcclusionOffMiddle runs TestOcclusion's scenes at t=0.25 and 0.75,
// where the frame asked for is not midway between the two: there the
// field, estimated midway, is moved to t before each pixel picks its
// vector (an object's edge is a quarter of its motion away from where it
// was midway).
//
// Measured when the test was written, flow2's lead over flow on average
// per case: at t=0.25, 0.76 and 1.15 dB (the flow2 before, which used
// the midway field at every t, 0.48 and 0.79); at t=0.75, 0.38 and 1.15
// dB (before: 0.43 and 1.07). The test asks for 0.65 dB at t=0.25 and
// 0.3 at 0.75, and never more than 0.3 dB behind.
func TestOcclusionOffMiddle(t *testing.T) {
	for _, c := range []struct{ s, minMean float64 }{{0.25, 0.65}, {0.75, 0.3}} {
		t.Run(fmt.Sprintf("t=%.2f", c.s), func(t *testing.T) {
			compareModels(t, "flow2", "flow", occlusionW, occlusionH, 12, c.s, c.minMean, 0.3, occlusionCases)
		})
	}
}

// TestLargeMotion shifts the whole frame by more than flow's search
// reaches on some textures (its Gauss-Newton steps from rest at 1/32
// resolution fall into a local match; flow2 searches +-96 pixels before
// it descends, and keeps descent from rest as a rival). Measured when the
// test was written: flow2 at 59-62 dB on 7 of the 8 cases, flow at 16-61
// dB; one texture at 84,24 defeats both (flow2 18.9 dB, flow 18.3 dB).
// The test asks flow2 to be 5 dB ahead on average per case and never more
// than 0.3 dB behind. (It caught a flow2 without its last choice at 1/4
// resolution: at 45 dB on one texture at 84,24, 12 dB behind flow.)
func TestLargeMotion(t *testing.T) {
	compareModels(t, "flow2", "flow", largeW, largeH, largeMargin, 0.5, 5, 0.3, largeMotionCases())
}

// The frame size, cases and margin (where both frames see the scene) of
// TestLargeMotion.
const largeW, largeH = 384, 256

var largeMargin = int(math.Ceil(84/2)) + 8

func largeMotionCases() map[string]func(seed uint64) func(s float64) scene {
	cases := map[string]func(seed uint64) func(s float64) scene{}
	for _, v := range [][2]float64{{64, -20}, {-84, 24}} {
		cases[fmt.Sprintf("shift %v,%v", v[0], v[1])] = func(seed uint64) func(s float64) scene {
			tex := newTexture(seed + 300)
			return func(s float64) scene { return shifted(tex, v[0]*s, v[1]*s) }
		}
	}
	return cases
}

// TestCameraFootage runs flow2 and flow on real camera frames (the extended
// set's aquarium clip, 960x540), keeping every 4th frame and recreating the
// three between at t=0.25, 0.5 and 0.75: 4x the motion of the clip, where
// fins and tails move against the water. flow2 picks each pixel's vector
// at 1/2 resolution by how well the warps agree, where flow upsamples its
// field bilinearly and blends two motions at a moving edge.
//
// Measured when the test was written: flow2 35.36 dB, flow 35.16 dB
// (+0.20 dB); the flow2 before, which upsampled its field bilinearly as
// flow does, 35.20 dB (+0.04 dB: it fails). The test asks for 0.15 dB.
// Since flow2 moves its field to t before the pick: 35.41 dB (+0.25 dB);
// since it blurs where its field is uncertain, 35.66 dB (+0.49 dB); since
// it allows for changes of light, 35.68 dB (+0.52 dB); since it charges
// matches outside the frame, 35.73 dB (+0.57 dB).
func TestCameraFootage(t *testing.T) {
	needRuntime(t)
	frames := testimage.AquariumFrames(t, 9, 960, 540)
	mean := func(name string) float64 {
		m, err := rt.Interpolator(name)
		if err != nil {
			t.Fatal(err)
		}
		var sum float64
		n := 0
		for i := 0; i+4 < len(frames); i += 4 {
			got, err := img2vid.InterpolateAll(context.Background(), m, frames[i], frames[i+4], []float32{0.25, 0.5, 0.75})
			if err != nil {
				t.Fatal(err)
			}
			for j, g := range got {
				sum += psnr(g, frames[i+j+1], 0)
				n++
			}
		}
		return sum / float64(n)
	}
	p2, p1 := mean("flow2"), mean("flow")
	t.Logf("4x: flow2 %.2f dB, flow %.2f dB (%+.2f dB)", p2, p1, p2-p1)
	if p2-p1 < 0.15 {
		t.Errorf("flow2 is %.2f dB ahead of flow on camera footage at 4x, want at least 0.15 dB", p2-p1)
	}
}

// TestShoal moves many small textured discs, each its own way, over a
// drifting background, as fish in a shoal or drifting particles move: the
// vectors around each disc's edge disagree. One vector per 1/4-resolution
// pixel, estimated over a window, cannot follow so many motions so close
// together; where the vectors around a pixel disagree flow2 blurs its
// frame by as much as that uncertainty moves the warps, which errs less
// than a sharp frame with its detail in the wrong place.
//
// Measured when the test was written, flow2's lead over flow on average:
// 0.63 dB with discs of 5-10 px (0.28-0.87 per texture), 0.17 dB with
// specks of 2-4 px; the flow2 before, which did not blur, 0.50 and 0.13
// dB, behind this one on every texture of both. The test asks for 0.56
// dB with discs (the flow2 before fails) and 0.1 with specks (there it
// only guards against a loss), and never more than 0.3 dB behind. (With
// 12 discs of 10-20 px moving up to 20 px, flow2 lost 2.3 dB to flow on
// one texture of four, blurring or not: a weakness of its estimator that
// this test does not cover.)
func TestShoal(t *testing.T) {
	for _, c := range []struct {
		name           string
		n              int
		small, large   float64
		reach, minMean float64
	}{
		{"24 discs of 5-10 px, up to 10 px", 24, 5, 10, 10, 0.56},
		{"60 specks of 2-4 px, up to 8 px", 60, 2, 4, 8, 0.1},
	} {
		compareModels(t, "flow2", "flow", occlusionW, occlusionH, 12, 0.5, c.minMean, 0.3, map[string]func(seed uint64) func(s float64) scene{
			c.name: func(seed uint64) func(s float64) scene {
				return shoal(newTexture(seed+400), newTexture(seed+500), seed, c.n, c.small, c.large, c.reach, [2]float64{2, -1})
			},
		})
	}
}

// shoal is bg moved by drift times s, with n discs cut from fg in front of
// it, scattered over TestOcclusion's frame, each of a radius between small
// and large pixels and moved by its own vector of up to reach pixels per
// axis times s.
func shoal(bg, fg scene, seed uint64, n int, small, large, reach float64, drift [2]float64) func(s float64) scene {
	r := rand.New(rand.NewPCG(seed, 1))
	type disc struct{ x, y, radius, vx, vy float64 }
	discs := make([]disc, n)
	for i := range discs {
		discs[i] = disc{r.Float64() * occlusionW, r.Float64() * occlusionH, small + (large-small)*r.Float64(),
			reach * (2*r.Float64() - 1), reach * (2*r.Float64() - 1)}
	}
	return func(s float64) scene {
		return func(x, y float64) [3]float64 {
			// The last disc is in front.
			for i := len(discs) - 1; i >= 0; i-- {
				d := discs[i]
				ox, oy := x-d.vx*s, y-d.vy*s
				if (ox-d.x)*(ox-d.x)+(oy-d.y)*(oy-d.y) < d.radius*d.radius {
					// Each disc shows its own part of fg.
					return fg(ox+float64(i)*37, oy)
				}
			}
			return bg(x-drift[0]*s, y-drift[1]*s)
		}
	}
}

// TestLightChange runs TestOcclusion's scenes under a light that brightens
// by a fifth between the two frames, as an exposure change, a fade or
// flicker does. flow reads a change of light as motion wherever the image
// is smooth; flow2 solves for a brightness offset over each window along
// with the motion, and brings the frames to the same brightness first
// where they differ by more than 3 %.
//
// Measured when the test was written: flow2 ahead of flow by 16.3 and
// 10.1 dB on average per case (flow2 at 30-40 dB, within 0.7 dB of its
// figures in TestOcclusion, where the light does not change; flow at
// 19-25 dB); the flow2 before, which had no room for light, was behind
// flow on 7 of the 8 textures, by up to 4.3 dB. The test asks for 5 dB on
// average per case, and never more than 0.3 dB behind.
func TestLightChange(t *testing.T) {
	cases := map[string]func(seed uint64) func(s float64) scene{}
	for name, c := range occlusionCases {
		cases[name+", light 0.9 to 1.1"] = func(seed uint64) func(s float64) scene {
			return lit(c(seed), 0.9, 1.1)
		}
	}
	compareModels(t, "flow2", "flow", occlusionW, occlusionH, 12, 0.5, 5, 0.3, cases)
}

// lit is at with its brightness multiplied by from at s=0, to at s=1, and
// in proportion between.
func lit(at func(s float64) scene, from, to float64) func(s float64) scene {
	return func(s float64) scene {
		f, k := at(s), from+(to-from)*s
		return func(x, y float64) [3]float64 {
			c := f(x, y)
			return [3]float64{k * c[0], k * c[1], k * c[2]}
		}
	}
}
