package testimage

import (
	"fmt"
	"image"
	"math"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// Motion is how a Scene moves from one frame to the next: the textured
// background is shifted, turned and zoomed about the frame's centre by
// these amounts per frame, so frame k+t (t a fraction) is the exact truth
// an interpolator should make between frames k and k+1.
type Motion struct {
	DX, DY float64 // shift in pixels per frame (sub-pixel amounts welcome)
	Rotate float64 // turn in radians per frame, anticlockwise
	Zoom   float64 // scale per frame (1.01 grows 1% a frame); 0 or 1: none
	// Occluder puts a flat disc in front of the background, crossing the
	// frame left to right over Frames frames, so parts of the background
	// are covered and uncovered.
	Occluder bool
	Frames   int // the occluder's crossing time; 0 means 10 frames
}

// Scene renders frame k (any real number) of a photo-like scene moving by
// m, w x h pixels. The background is a smooth, continuous function of the
// plane (value noise: colour gradients under finer detail), evaluated at
// each pixel centre's position in the scene, so a sub-pixel shift is
// rendered exactly, not resampled from another frame.
func Scene(w, h int, m Motion, k float64) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	g := placement{cx: float64(w) / 2, cy: float64(h) / 2, zoom: 1, dx: m.DX * k, dy: m.DY * k}
	if m.Zoom > 0 {
		g.zoom = math.Pow(m.Zoom, k)
	}
	g.sin, g.cos = math.Sincos(-m.Rotate * k)
	if m.Occluder {
		// The disc's path: from left of the frame to right of it, a third
		// of the way down.
		frames := float64(m.Frames)
		if frames <= 0 {
			frames = 10
		}
		g.radius = float64(min(w, h)) / 5
		g.ox = -g.radius + (float64(w)+2*g.radius)*k/frames
		g.oy = float64(h) / 3
	}
	// Rows in parallel: the clips tests make are rendered per test run.
	rows := make(chan int, h)
	for y := range h {
		rows <- y
	}
	close(rows)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for y := range rows {
				g.row(img, y)
			}
		})
	}
	wg.Wait()
	return img
}

// placement is where one frame shows the scene: the background's shift,
// turn and zoom about the centre, and the occluder's disc (radius 0: none).
type placement struct {
	cx, cy, dx, dy, zoom, sin, cos float64
	radius, ox, oy                 float64
}

// row renders row y of the frame.
func (g placement) row(img *image.NRGBA, y int) {
	for x := range img.Rect.Dx() {
		// The scene point under this pixel: undo the shift, then the turn
		// and the zoom about the centre.
		px, py := float64(x)+0.5-g.cx-g.dx, float64(y)+0.5-g.cy-g.dy
		c := background((g.cos*px-g.sin*py)/g.zoom, (g.sin*px+g.cos*py)/g.zoom)
		if g.radius > 0 {
			// Anti-aliased edge: coverage falls from 1 to 0 over one pixel.
			d := math.Hypot(float64(x)+0.5-g.ox, float64(y)+0.5-g.oy) - g.radius
			if a := math.Max(0, math.Min(1, 0.5-d)); a > 0 {
				for i, v := range [3]float64{235, 200, 40} {
					c[i] = c[i]*(1-a) + v*a
				}
			}
		}
		o := img.PixOffset(x, y)
		for i := range 3 {
			img.Pix[o+i] = uint8(math.Max(0, math.Min(255, math.Round(c[i]))))
		}
		img.Pix[o+3] = 255
	}
}

// background is the scene's colour at a point of the plane, 0-255 per
// channel: broad colour gradients per channel under shared detail at four
// finer scales, so motion estimators find texture at every scale, as in a
// photograph.
func background(x, y float64) [3]float64 {
	detail := 0.0
	amp, scale := 40.0, 1.0/40
	for octave := range 4 {
		detail += amp * valueNoise(x*scale, y*scale, uint32(8+octave))
		amp *= 0.5
		scale *= 2.2
	}
	var c [3]float64
	for ch := range 3 {
		c[ch] = 128 + 80*valueNoise(x/150, y/150, uint32(ch)) + detail
	}
	return c
}

// valueNoise is smooth noise in -1..1: random values on the integer grid,
// blended with a quintic curve, so it is continuous with continuous slopes.
func valueNoise(x, y float64, seed uint32) float64 {
	ix, iy := floor(x), floor(y)
	fx, fy := fade(x-float64(ix)), fade(y-float64(iy))
	v00 := lattice(ix, iy, seed)
	v10 := lattice(ix+1, iy, seed)
	v01 := lattice(ix, iy+1, seed)
	v11 := lattice(ix+1, iy+1, seed)
	top := v00 + (v10-v00)*fx
	bottom := v01 + (v11-v01)*fx
	return top + (bottom-top)*fy
}

// floor is math.Floor for the coordinates scenes use, as an integer.
func floor(v float64) int32 {
	i := int32(v)
	if float64(i) > v {
		i--
	}
	return i
}

func fade(t float64) float64 { return t * t * t * (t*(t*6-15) + 10) }

// lattice is a fixed pseudo-random value in -1..1 for a grid point.
func lattice(x, y int32, seed uint32) float64 {
	h := uint32(x)*0x8da6b343 ^ uint32(y)*0xd8163841 ^ seed*0xcb1ab31f
	h ^= h >> 13
	h *= 0x5bd1e995
	h ^= h >> 15
	return float64(h)/float64(math.MaxUint32)*2 - 1
}

// Photo returns a w x h still of the scene, photo-like: smooth colour
// regions with detail at every scale.
func Photo(w, h int) *image.NRGBA { return Scene(w, h, Motion{}, 0) }

// Clip writes n frames (frame_000.jpg, frame_001.jpg, ...) of the scene
// moving by m, w x h, as camera-like JPEGs into a new temporary folder and
// returns the folder. Frames are rendered once per test process and reused.
func Clip(t testing.TB, n, w, h int, m Motion) string {
	t.Helper()
	dir := t.TempDir()
	for k := range n {
		Write(t, filepath.Join(dir, fmt.Sprintf("frame_%03d.jpg", k)), clipFrame(t, w, h, m, k))
	}
	return dir
}

type frameKey struct {
	w, h, k int
	m       Motion
}

var (
	framesMu sync.Mutex
	frames   = map[frameKey][]byte{}
)

// clipFrame returns frame k as a JPEG, from the cache when it was made before.
func clipFrame(t testing.TB, w, h int, m Motion, k int) []byte {
	key := frameKey{w, h, k, m}
	framesMu.Lock()
	data, ok := frames[key]
	framesMu.Unlock()
	if !ok {
		data = JPEG(t, Scene(w, h, m, float64(k)))
		framesMu.Lock()
		frames[key] = data
		framesMu.Unlock()
	}
	return data
}

// Pan is the motion of the generated clips the end-to-end tests convert: a
// slow sub-pixel pan with a disc crossing in front.
var Pan = Motion{DX: 2.5, DY: 0.75, Occluder: true, Frames: 12}

// Source is a folder of frames the end-to-end tests convert: a generated
// clip always, and the real camera frames where the extended test data is
// present (see SharedDir).
type Source struct {
	Name          string
	Width, Height int // every frame's size
	Frames        int
	dir           func(testing.TB) string
}

// Dir returns the folder, making the frames or skipping as the source needs.
func (s Source) Dir(t testing.TB) string { t.Helper(); return s.dir(t) }

// Sources returns a generated clip of n frames of w x h (the Pan motion)
// and the 50 aquarium frames (1920x1080) of the extended set, for tests to
// run on each as subtests.
func Sources(n, w, h int) []Source {
	return []Source{
		{Name: "generated", Width: w, Height: h, Frames: n, dir: func(t testing.TB) string { return Clip(t, n, w, h, Pan) }},
		{Name: "aquarium", Width: 1920, Height: 1080, Frames: 50, dir: Aquarium},
	}
}
