package inference

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"github.com/img2vid/img2vid"
	"github.com/img2vid/img2vid/internal/testimage"
	"github.com/img2vid/img2vid/models"
)

// TestVersionPin loads the real library and fails when it is not the
// release this build is pinned to.
func TestVersionPin(t *testing.T) {
	r := openRuntime(t, "")
	info := r.Info()
	if info.Version != ORTVersion {
		t.Errorf("ONNX Runtime at %s is version %s; this build is pinned to %s", info.Library, info.Version, ORTVersion)
	}
	if info.Provider != ProviderCPU || info.Note != "" {
		t.Errorf("device cpu: provider %q note %q, want cpu and no note", info.Provider, info.Note)
	}
	versions, err := os.ReadFile("../scripts/versions.env")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(versions), "\nORT_VERSION="+ORTVersion+"\n") {
		t.Errorf("scripts/versions.env does not pin ORT_VERSION=%s", ORTVersion)
	}
}

func TestAvailableProviders(t *testing.T) {
	r := openRuntime(t, "")
	d := r.Diagnose()
	if d.ProvidersErr != "" || !strings.Contains(strings.Join(d.Providers, ","), "CPUExecutionProvider") {
		t.Errorf("providers %v (%s), want CPUExecutionProvider among them", d.Providers, d.ProvidersErr)
	}
	var b bytes.Buffer
	d.Write(&b)
	for _, want := range []string{r.Info().Library, ORTVersion, "CPUExecutionProvider", "blend"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("doctor report lacks %q:\n%s", want, b.String())
		}
	}
}

// TestAutoFallsBackAndSaysWhy: this machine's library is a CPU-only build,
// so auto runs on the CPU and says why, and cuda is refused with a reason.
func TestAutoFallsBackAndSaysWhy(t *testing.T) {
	openRuntime(t, "") // skips when the library is absent
	lib := os.Getenv("ONNXRUNTIME_LIB")
	if facts := ProbeGPU(mustFind(t, lib)); cudaBlocker(lib, facts) == "" {
		t.Skip("this machine can run CUDA; the fallback is not reachable here")
	}
	r, err := Open(Config{Library: lib, Device: DeviceAuto, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if info := r.Info(); info.Provider != ProviderCPU || !strings.Contains(info.Note, "CUDA not used") {
		t.Errorf("auto without CUDA: provider %q note %q", info.Provider, info.Note)
	}
	_, err = Open(Config{Library: lib, Device: DeviceCUDA, Logger: discardLogger()})
	if img2vid.ErrorCode(err) != img2vid.EUNAVAILABLE || !strings.Contains(err.Error(), "device cuda cannot be used") {
		t.Errorf("cuda without CUDA: %v, want an unavailable error saying why", err)
	}
}

func mustFind(t *testing.T, explicit string) string {
	t.Helper()
	lib, err := FindLibrary(DefaultLibrarySearch(explicit))
	if err != nil {
		t.Fatal(err)
	}
	return lib
}

// rss reads this process's resident memory in KiB, after returning Go's
// garbage to the system so that what is left is live memory, Go's or
// ONNX Runtime's, not the collector's timing.
func rss(t *testing.T) int {
	t.Helper()
	debug.FreeOSMemory()
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no VmRSS in /proc/self/status")
	return 0
}

// nativeRSS is the resident memory once the Go heap has been collected
// and its free pages returned, so what it measures between two calls is
// what native code (ONNX Runtime's sessions and tensors) kept, not when
// the Go collector last ran.
func nativeRSS(t *testing.T) int {
	debug.FreeOSMemory()
	return rss(t)
}

// identityDir makes a models folder with "identity": a free-size frame
// model (batch, height and width free) that returns its input, under a
// manifest asking for sides in multiples of 8.
func identityDir(t testing.TB) string {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "identity.onnx"), string(identityModel(-1, 3, -1, -1)))
	writeFile(t, filepath.Join(dir, "identity.json"), `{"name": "identity", "kind": "frame", "file": "identity.onnx", "multiple": 8}`)
	return dir
}

// TestMemoryStaysFlat: 300 runs of the frame path and of the interpolation
// paths (blend, one graph; flow, a motion graph whose outputs the main
// graph takes) leave resident memory within 8 MiB of where it was after
// 30, so no frame tensor or session leaks per run: one frame tensor leaked
// per run would be 420 MiB, where the allocators' own drift is 1 to 3 MiB
// (5 % of the total, the bound this test had, was within that drift).
func TestMemoryStaysFlat(t *testing.T) {
	r := openRuntime(t, identityDir(t))
	frameModel, err := r.FrameModel("identity")
	if err != nil {
		t.Fatal(err)
	}
	var interps []img2vid.Interpolator
	for _, name := range []string{"blend", "flow"} {
		m, err := r.Interpolator(name)
		if err != nil {
			t.Fatal(err)
		}
		interps = append(interps, m)
	}
	frame := testimage.Scene(480, 270, testimage.Pan, 5)
	other := testimage.Scene(480, 270, testimage.Pan, 6)
	var after30 int
	for i := range 300 {
		if _, err := frameModel.Apply(context.Background(), frame); err != nil {
			t.Fatal(err)
		}
		for _, m := range interps {
			if _, err := img2vid.InterpolateAll(context.Background(), m, frame, other, []float32{0.5}); err != nil {
				t.Fatal(err)
			}
		}
		if i == 29 {
			after30 = nativeRSS(t)
		}
	}
	after300 := nativeRSS(t)
	t.Logf("resident memory after 30 runs %d KiB, after 300 %d KiB", after30, after300)
	if after300-after30 > 8<<10 {
		t.Errorf("resident memory grew from %d KiB after 30 runs to %d KiB after 300, more than 8 MiB", after30, after300)
	}
}

// TestFreeSizeFramePadsAndCrops: an odd-sized frame through a free-size
// model is padded to its multiple and cropped back, every pixel intact.
func TestFreeSizeFramePadsAndCrops(t *testing.T) {
	r := openRuntime(t, identityDir(t))
	m, err := r.FrameModel("identity")
	if err != nil {
		t.Fatal(err)
	}
	in := testimage.Photo(240, 160).SubImage(image.Rect(101, 33, 101+65, 33+97)).(*image.NRGBA)
	out, err := m.Apply(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if out.Rect != image.Rect(0, 0, 65, 97) {
		t.Fatalf("output %v, want 65x97", out.Rect)
	}
	for y := range 97 {
		for x := range 65 {
			if got, want := out.NRGBAAt(x, y), in.NRGBAAt(101+x, 33+y); got != want {
				t.Fatalf("pixel (%d,%d): got %v, want %v", x, y, got, want)
			}
		}
	}
}

// TestBlendThroughPadding runs the built-in blend model on frames of odd
// size as it ships, and again under a manifest that asks for sides in
// multiples of 8, which pads 65x97 to 72x104 and crops the result back.
func TestBlendThroughPadding(t *testing.T) {
	dir := t.TempDir()
	model, err := fs.ReadFile(models.Builtin, "blend.onnx")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "blend.onnx"), string(model))
	writeFile(t, filepath.Join(dir, "blend8.json"), `{"name": "blend8", "kind": "interpolate", "file": "blend.onnx", "multiple": 8}`)
	r := openRuntime(t, dir)
	for _, name := range []string{"blend", "blend8"} {
		t.Run(name, func(t *testing.T) { checkBlend(t, r, name) })
	}
}

func checkBlend(t *testing.T, r *Runtime, name string) {
	m, err := r.Interpolator(name)
	if err != nil {
		t.Fatal(err)
	}
	const w, h = 65, 97
	a, b := image.NewNRGBA(image.Rect(0, 0, w, h)), image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			a.SetNRGBA(x, y, color.NRGBA{uint8(x * 3), uint8(y * 2), 40, 255})
			b.SetNRGBA(x, y, color.NRGBA{200, uint8(255 - y*2), uint8(x + y), 255})
		}
	}
	ts := []float32{0.25, 0.5, 0.75}
	frames, err := img2vid.InterpolateAll(context.Background(), m, a, b, ts)
	if err != nil {
		t.Fatal(err)
	}
	if len(frames) != len(ts) {
		t.Fatalf("%d frames for %d times", len(frames), len(ts))
	}
	for k, f := range frames {
		if f.Rect != a.Rect {
			t.Fatalf("t=%v: frame %v, want %v", ts[k], f.Rect, a.Rect)
		}
		for y := range h {
			for x := range w {
				p, q, o := a.NRGBAAt(x, y), b.NRGBAAt(x, y), f.NRGBAAt(x, y)
				for c, pair := range [][3]uint8{{p.R, q.R, o.R}, {p.G, q.G, o.G}, {p.B, q.B, o.B}} {
					want := (1-float64(ts[k]))*float64(pair[0]) + float64(ts[k])*float64(pair[1])
					if d := float64(pair[2]) - want; d > 1 || d < -1 {
						t.Fatalf("t=%v pixel (%d,%d) channel %d: got %d, want %.1f", ts[k], x, y, c, pair[2], want)
					}
				}
			}
		}
	}
	if _, err := img2vid.InterpolateAll(context.Background(), m, a, b, []float32{1}); img2vid.ErrorCode(err) != img2vid.EINVALID {
		t.Errorf("t=1: %v, want an invalid error", err)
	}
}

// Check runs a model on the provider in use while the runtime is open,
// and refuses once it is closed.
func TestCheckRunsAModel(t *testing.T) {
	r := openRuntime(t, "")
	if err := r.Check(); err != nil {
		t.Fatalf("Check on an open runtime: %v", err)
	}
	other, err := Open(Config{Library: os.Getenv("ONNXRUNTIME_LIB"), Device: DeviceCPU, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	other.Close()
	if err := other.Check(); img2vid.ErrorCode(err) != img2vid.EUNAVAILABLE {
		t.Errorf("Check on a closed runtime = %v, want unavailable", err)
	}
	if err := r.Check(); err != nil {
		t.Errorf("Check after another runtime closed: %v", err)
	}
}

// TestSessionOptionsDoNotSpin checks that the engine's sessions (and the
// benchmarks' bare ones, which take the same options) let idle threads
// sleep: spinning ones were counted as a third of flow2's CPU time.
func TestSessionOptionsDoNotSpin(t *testing.T) {
	openRuntime(t, "")
	opts, err := SessionOptions(2)
	if err != nil {
		t.Fatal(err)
	}
	defer opts.Destroy()
	v, err := opts.GetSessionConfigEntry("session.intra_op.allow_spinning")
	if err != nil {
		t.Fatal(err)
	}
	if v != "0" {
		t.Errorf("session.intra_op.allow_spinning = %q, want \"0\"", v)
	}
}
