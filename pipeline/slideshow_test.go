package pipeline_test

import (
	"fmt"
	"image"
	"image/color"
	"path/filepath"
	"testing"

	"github.com/img2vid/img2vid"
	"github.com/img2vid/img2vid/internal/testenv"
	"github.com/img2vid/img2vid/internal/testimage"
	"github.com/img2vid/img2vid/pipeline"
)

// solidInputs writes one w x h image file of each colour into dir, in order.
func solidInputs(t *testing.T, dir string, w, h int, colors ...color.NRGBA) []string {
	t.Helper()
	var inputs []string
	for i, c := range colors {
		f := filepath.Join(dir, string(rune('a'+i))+".png")
		testimage.Write(t, f, testimage.PNG(t, testimage.Solid(w, h, c)))
		inputs = append(inputs, f)
	}
	return inputs
}

// meanRGB is a frame's mean colour.
func meanRGB(f []byte) [3]float64 {
	var m [3]float64
	for i := 0; i < len(f); i += 3 {
		for k := range 3 {
			m[k] += float64(f[i+k])
		}
	}
	for k := range m {
		m[k] /= float64(len(f) / 3)
	}
	return m
}

// A slideshow holds each image for its duration at the output rate, and
// its last frames are the transition into the next: for a crossfade, each
// frame the expected mix of the two images (within the codec's error);
// for a fade through black, black half way. The video is exactly as long
// as the images' durations together.
func TestSlideshowTransitions(t *testing.T) {
	testenv.NeedFFmpeg(t)
	colors := []color.NRGBA{{200, 30, 30, 255}, {30, 200, 30, 255}, {30, 30, 200, 255}}
	inputs := solidInputs(t, t.TempDir(), 32, 32, colors...)
	for _, kind := range []string{img2vid.TransitionCrossfade, img2vid.TransitionFadeBlack} {
		t.Run(kind, func(t *testing.T) {
			opts := img2vid.DefaultOptions()
			opts.Seconds, opts.FPSOut, opts.Transition, opts.TransitionSeconds = 1, 10, kind, 0.5
			opts.Quality = 0 // near lossless, so the mix is measured, not the codec
			out := filepath.Join(t.TempDir(), "show.mp4")
			res, err := (&pipeline.Pipeline{}).Convert(t.Context(), inputs, out, opts, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.Frames != 30 || res.FPS != 10 || res.Duration != 3 {
				t.Fatalf("result %+v, want 30 frames at 10 fps, 3 s", res)
			}
			frames := testimage.DecodeVideo(t, out, 32, 32)
			if len(frames) != 30 {
				t.Fatalf("%d frames decoded, want 30", len(frames))
			}
			for i, f := range frames {
				img, k := i/10, i%10 // image and frame within its slot
				want := [3]float64{}
				c := colors[img]
				switch {
				case k < 5 || img == 2: // held (the last image has no transition)
					want = [3]float64{float64(c.R), float64(c.G), float64(c.B)}
				default:
					p := float64(k-4) / 6 // frames 5..9 at 1/6 .. 5/6
					n := colors[img+1]
					for ch, pair := range [][2]uint8{{c.R, n.R}, {c.G, n.G}, {c.B, n.B}} {
						a, b := float64(pair[0]), float64(pair[1])
						switch {
						case kind == img2vid.TransitionCrossfade:
							want[ch] = a*(1-p) + b*p
						case p < 0.5:
							want[ch] = a * (1 - 2*p)
						default:
							want[ch] = b * (2*p - 1)
						}
					}
				}
				got := meanRGB(f)
				for ch := range 3 {
					if d := got[ch] - want[ch]; d > 6 || d < -6 {
						t.Errorf("frame %d: mean %v, want %v", i, got, want)
						break
					}
				}
			}
		})
	}
}

// With interpolation on, a pair that is a scene cut gets the transition
// over its in-between frames instead of a held image; the model is asked
// only for the pairs of one scene.
func TestSceneCutsGetTheTransition(t *testing.T) {
	testenv.NeedFFmpeg(t)
	inputs := solidInputs(t, t.TempDir(), 32, 32, color.NRGBA{200, 200, 200, 255}, color.NRGBA{196, 196, 196, 255}, color.NRGBA{20, 20, 20, 255})
	rec := &recordingInterp{}
	opts := img2vid.DefaultOptions()
	opts.Interpolate, opts.InterpModel, opts.Transition, opts.Quality = 4, "recording", img2vid.TransitionCrossfade, 0
	out := filepath.Join(t.TempDir(), "cut.mp4")
	res, err := (&pipeline.Pipeline{Models: interpModels{m: rec}}).Convert(t.Context(), inputs, out, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.SceneCuts != 1 || len(rec.calls) != 1 {
		t.Fatalf("%d scene cuts, %d model calls; want 1 cut and the model for the other pair only", res.SceneCuts, len(rec.calls))
	}
	frames := testimage.DecodeVideo(t, out, 32, 32)
	if len(frames) != 12 {
		t.Fatalf("%d frames, want 12", len(frames))
	}
	for k := 1; k < 4; k++ { // frames 5..7: 196 dissolving into 20
		want := 196*(1-float64(k)/4) + 20*float64(k)/4
		if got := meanRGB(frames[4+k])[0]; got-want > 6 || want-got > 6 {
			t.Errorf("frame %d across the cut: grey %v, want the crossfade's %v", 4+k, got, want)
		}
	}
}

// Ken Burns: each image's frames are a window moving evenly over it (the
// path motion.Jitter finds smooth) from the first frame it is seen in to
// its last, zooming in on the first image and out on the next; with a
// detect model as the focus, the zoom ends on what the model found.
func TestKenBurnsEndsOnTheSubject(t *testing.T) {
	testenv.NeedFFmpeg(t)
	rt := detectRuntime(t)
	dir := t.TempDir()
	var inputs []string
	for i := range 2 {
		img := testimage.Squares(256, 192, testimage.Square{Class: "red", Value: 255, Box: image.Rect(130, 90, 170, 130)})
		p := filepath.Join(dir, fmt.Sprintf("f%d.png", i))
		testimage.Write(t, p, testimage.PNG(t, img))
		inputs = append(inputs, p)
	}
	dets := filepath.Join(dir, "show.detections.jsonl")
	opts := img2vid.DefaultOptions()
	opts.Seconds, opts.FPSOut, opts.Motion, opts.MotionZoom, opts.MotionFocus = 1, 10, img2vid.MotionKenBurns, 2, img2vid.FocusDetect
	opts.DetectModel, opts.Detections = "squares-yolov8", dets
	res, err := convert(t, &pipeline.Pipeline{Models: rt}, inputs, filepath.Join(dir, "show.mp4"), opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.Frames != 20 {
		t.Fatalf("%d frames, want 20", res.Frames)
	}
	recs := readRecords(t, dets)
	box := map[int][4]float64{}
	for _, r := range recs {
		if r.Class == "red" {
			box[r.Frame] = r.Box
		}
	}
	center := func(f int) (float64, float64) { b := box[f]; return (b[0] + b[2]) / 2, (b[1] + b[3]) / 2 }
	// Zooming in on image 0: the square grows from 40 px to twice that and
	// ends in the middle of the frame; image 1 zooms back out.
	if w0, w9 := box[0][2]-box[0][0], box[9][2]-box[9][0]; w9 < 1.8*w0 {
		t.Errorf("the square is %v px wide at the first frame, %v at the last of image 0; want it doubled", w0, w9)
	}
	if x, y := center(9); x < 118 || x > 138 || y < 86 || y > 106 {
		t.Errorf("at the end of the zoom the square is centred at %v,%v, want the frame's centre 128,96", x, y)
	}
	if w10, w19 := box[10][2]-box[10][0], box[19][2]-box[19][0]; w19 > 0.6*w10 {
		t.Errorf("image 1 zooms out: the square is %v px wide at its first frame, %v at its last", w10, w19)
	}
	// The square's box moves evenly, frame to frame, as its window does.
	for f := 2; f < 10; f++ {
		for k := range 4 {
			if d := box[f-2][k] - 2*box[f-1][k] + box[f][k]; d > 3 || d < -3 {
				t.Errorf("frame %d: the box's edge %d moves unevenly (second difference %.2f px)", f, k, d)
			}
		}
	}
}

// caption=name draws each file's name under its picture, on every frame
// of it, in the bottom of the frame: the picture above is untouched.
func TestCaptionsOnTheFrames(t *testing.T) {
	testenv.NeedFFmpeg(t)
	dir := t.TempDir()
	var inputs []string
	for _, name := range []string{"Пляж.png", "harbour.png"} {
		f := filepath.Join(dir, name)
		testimage.Write(t, f, testimage.PNG(t, testimage.Solid(320, 180, color.NRGBA{90, 120, 150, 255})))
		inputs = append(inputs, f)
	}
	render := func(c string) [][]byte {
		opts := img2vid.DefaultOptions()
		opts.Caption, opts.Quality = c, 0
		out := filepath.Join(t.TempDir(), "v.mp4")
		if _, err := (&pipeline.Pipeline{}).Convert(t.Context(), inputs, out, opts, nil); err != nil {
			t.Fatal(err)
		}
		return testimage.DecodeVideo(t, out, 320, 180)
	}
	plain, captioned := render(""), render(img2vid.CaptionName)
	if len(plain) != 2 || len(captioned) != 2 {
		t.Fatalf("%d and %d frames, want 2", len(plain), len(captioned))
	}
	for i := range 2 {
		var top, bottom float64
		for y := range 180 {
			for x := range 320 * 3 {
				d := float64(plain[i][3*320*y+x]) - float64(captioned[i][3*320*y+x])
				if y < 110 {
					top = max(top, d, -d)
				} else {
					bottom = max(bottom, d, -d)
				}
			}
		}
		if top > 8 || bottom < 100 {
			t.Errorf("frame %d: the picture above changed by %v, the caption area by %v; want untouched above, the caption drawn below", i, top, bottom)
		}
	}
}

// Each image holds its own time at the output rate; the others the job's.
func TestSlideshowPerImageDurations(t *testing.T) {
	testenv.NeedFFmpeg(t)
	colors := []color.NRGBA{{200, 30, 30, 255}, {30, 200, 30, 255}, {30, 30, 200, 255}}
	inputs := solidInputs(t, t.TempDir(), 32, 32, colors...)
	p := &pipeline.Pipeline{}
	opts := img2vid.DefaultOptions()
	opts.Seconds, opts.FPSOut, opts.Quality = 0.5, 10, 0
	plan, err := p.Plan(t.Context(), inputs, opts)
	if err != nil {
		t.Fatal(err)
	}
	// As the server makes a plan with the files' own times: 1 s, the job's 0.5 s, 0.3 s.
	job := img2vid.Job{Images: plan.Images, Options: opts, Limits: p.Limits}
	job.Images[0].Seconds, job.Images[2].Seconds = 1, 0.3
	if plan, err = img2vid.MakePlan(job); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "v.mp4")
	res, err := p.Run(t.Context(), plan, inputs, out, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Frames != 18 || res.Duration != 1.8 {
		t.Fatalf("%d frames, %v s; want 10 + 5 + 3 = 18 at 10 fps, 1.8 s", res.Frames, res.Duration)
	}
	for i, f := range testimage.DecodeVideo(t, out, 32, 32) {
		img := 0
		switch {
		case i >= 15:
			img = 2
		case i >= 10:
			img = 1
		}
		if got, c := meanRGB(f), colors[img]; got[0]-float64(c.R) > 8 || float64(c.R)-got[0] > 8 || got[1]-float64(c.G) > 8 || float64(c.G)-got[1] > 8 {
			t.Errorf("frame %d: %v, want image %d's colour %v", i, got, img, c)
		}
	}
}
