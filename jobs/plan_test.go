package jobs

import (
	"context"
	"fmt"
	"image"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/img2vid/img2vid"
	"github.com/img2vid/img2vid/ingest"
	"github.com/img2vid/img2vid/internal/testenv"
	"github.com/img2vid/img2vid/internal/testimage"
	"github.com/img2vid/img2vid/pipeline"
)

// startWorker starts the job system with one worker of wcfg on a fresh
// folder.
func startWorker(t *testing.T, wcfg WorkerConfig) *Local {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := StartLocal(ctx, t.TempDir(), Config{}, wcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Stop(context.Background()) })
	return l
}

// submitFiles submits a job of the image files at paths, with plan.
func submitFiles(t *testing.T, s *System, id string, paths []string, plan *img2vid.Plan) {
	t.Helper()
	spec := Spec{ID: id}
	if plan != nil {
		spec.Options = plan.Options
	}
	spec.Plan = plan
	for i := range paths {
		spec.Inputs = append(spec.Inputs, id+"/"+filepath.Base(paths[i]))
		spec.Labels = append(spec.Labels, label(i))
	}
	if err := s.Submit(context.Background(), spec, paths, "192.0.2.1"); err != nil {
		t.Fatal(err)
	}
}

// planFor plans a job of the image files at paths from their headers, as
// the server does, with the models listed.
func planFor(t *testing.T, paths []string, opts img2vid.Options, models []img2vid.ModelInfo) *img2vid.Plan {
	t.Helper()
	job := img2vid.Job{Options: opts, Limits: img2vid.DefaultLimits(), Models: models}
	for i, p := range paths {
		h, err := ingest.ReadHeader(p, 0)
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		job.Images = append(job.Images, h.Image(label(i), fi.Size()))
	}
	plan, err := img2vid.MakePlan(job)
	if err != nil {
		t.Fatal(err)
	}
	return &plan
}

// label is how the client knows the ith file of a job.
func label(i int) string { return fmt.Sprintf(`file %d ("photo%d.png")`, i+1, i+1) }

func failed(st State) bool { return st.Terminal() }

// The worker runs the plan in the job's message as it was made, with
// only the soundtrack and detections paths its own.
func TestWorkerRunsThePlanItWasGiven(t *testing.T) {
	conv := &fakeConverter{}
	l := startWorker(t, WorkerConfig{Converter: conv})
	opts := img2vid.DefaultOptions()
	opts.Format, opts.Interpolate, opts.Audio = img2vid.FormatWebM, 4, "/the/server/soundtrack.upload"
	plan := &img2vid.Plan{Options: opts, Inputs: 1, Width: 64, Height: 48, FPS: 20, Frames: 4, Duration: 0.2,
		Memory:   img2vid.Memory{Peak: 123 << 20},
		Images:   []img2vid.Image{{Label: label(0), Width: 64, Height: 48, Bytes: 8}},
		Models:   []img2vid.ModelRef{{Field: "interp_model", Name: "flow2", SHA256: strings.Repeat("ab", 32)}},
		FitWidth: 64, FitHeight: 48, FramePixels: 64 * 48}
	file := filepath.Join(t.TempDir(), "000001.png")
	testimage.Write(t, file, []byte("an image"))
	submitFiles(t, l.System, "planned", []string{file}, plan)
	st := waitState(t, l.System, "planned", "done", done)
	if st.Status != StatusDone {
		t.Fatalf("job ended %+v", st)
	}
	want := *plan
	want.Options.Audio = "" // the job has no soundtrack: the server's path is not the worker's
	if !reflect.DeepEqual(conv.plan, want) {
		t.Errorf("the worker ran\n%+v\nwant the plan sent\n%+v", conv.plan, want)
	}
	if plan.Options.Audio != "/the/server/soundtrack.upload" {
		t.Errorf("Submit changed the caller's plan")
	}
}

// A job queued by a version that sent no plan fails saying so, and its
// converter never runs.
func TestJobWithoutAPlanFails(t *testing.T) {
	conv := &fakeConverter{}
	l := startWorker(t, WorkerConfig{Converter: conv})
	file := filepath.Join(t.TempDir(), "000001.png")
	testimage.Write(t, file, []byte("an image"))
	submitFiles(t, l.System, "unplanned", []string{file}, nil)
	st := waitState(t, l.System, "unplanned", "the end", failed)
	if st.Status != StatusFailed || st.Error.Code != img2vid.EUNAVAILABLE || !strings.Contains(st.Error.Message, "earlier version") ||
		!strings.Contains(st.Error.Message, "send it again") {
		t.Fatalf("job ended %+v %+v, want failed asking for it again", st, st.Error)
	}
	if conv.count() != 0 {
		t.Errorf("the converter ran %d times", conv.count())
	}
}

// catalogue is a worker's models as the plan check sees them: listed,
// and its interpolators loaded, never run.
type catalogue []img2vid.ModelInfo

func (c catalogue) ListModels() []img2vid.ModelInfo { return c }
func (catalogue) FrameModel(name string) (img2vid.FrameModel, error) {
	return nil, img2vid.Errorf(img2vid.ENOTFOUND, "no model %q", name)
}
func (c catalogue) Interpolator(name string) (img2vid.Interpolator, error) {
	for _, m := range c {
		if m.Name == name && m.Kind == img2vid.KindInterpolate {
			return unrun(name), nil
		}
	}
	return nil, img2vid.Errorf(img2vid.ENOTFOUND, "no model %q", name)
}

// unrun is an interpolator a test loads and never runs.
type unrun string

func (u unrun) Name() string { return string(u) }
func (unrun) Interpolate(context.Context, *image.NRGBA, *image.NRGBA, []float32, func(int, *image.NRGBA) error) error {
	return fmt.Errorf("unrun interpolator ran")
}
func (catalogue) Detector(name string) (img2vid.Detector, error) {
	return nil, img2vid.Errorf(img2vid.ENOTFOUND, "no model %q", name)
}

// On the real pipeline, a worker whose files or models are not those the
// plan was made from fails the job naming which, before anything runs; a
// plan that holds runs.
func TestWorkerChecksThePlan(t *testing.T) {
	testenv.NeedFFmpeg(t)
	here := strings.Repeat("b", 64)
	conv := &pipeline.Pipeline{Models: catalogue{{Name: "flow2", Kind: img2vid.KindInterpolate, Available: true, SHA256: here}}}
	l := startWorker(t, WorkerConfig{Converter: conv})
	dir := t.TempDir()
	small, large := filepath.Join(dir, "small.png"), filepath.Join(dir, "large.png")
	testimage.Write(t, small, testimage.PNG(t, testimage.Quadrants(16, 16)))
	testimage.Write(t, large, testimage.PNG(t, testimage.Quadrants(32, 32)))
	opts := img2vid.DefaultOptions()

	t.Run("the file differs", func(t *testing.T) {
		plan := planFor(t, []string{small}, opts, nil)
		// The upload of small.png, as stored, is large.png's bytes.
		stored := filepath.Join(t.TempDir(), "small.png")
		b, _ := os.ReadFile(large)
		testimage.Write(t, stored, b)
		submitFiles(t, l.System, "otherfile", []string{stored}, plan)
		st := waitState(t, l.System, "otherfile", "the end", failed)
		if st.Status != StatusFailed || st.Error.Code != img2vid.EUNAVAILABLE ||
			!strings.Contains(st.Error.Message, `file 1 ("photo1.png") is not the file the job was planned with (planned 16x16`) {
			t.Fatalf("job ended %s %+v, want failed naming the file", st.Status, st.Error)
		}
	})

	t.Run("the model differs", func(t *testing.T) {
		o := opts
		o.Interpolate = 2
		planned := strings.Repeat("a", 64)
		again := filepath.Join(t.TempDir(), "small2.png")
		testimage.Write(t, again, testimage.PNG(t, testimage.Quadrants(16, 16)))
		plan := planFor(t, []string{small, again}, o, []img2vid.ModelInfo{{Name: "flow2", Kind: img2vid.KindInterpolate, Available: true, SHA256: planned}})
		submitFiles(t, l.System, "othermodel", []string{small, again}, plan)
		st := waitState(t, l.System, "othermodel", "the end", failed)
		if st.Status != StatusFailed || st.Error.Code != img2vid.EUNAVAILABLE ||
			!strings.Contains(st.Error.Message, `interp_model "flow2" here is not the model the job was planned with (sha256 bbbbbbbbbbbb, planned aaaaaaaaaaaa)`) {
			t.Fatalf("job ended %s %+v, want failed naming the model", st.Status, st.Error)
		}
	})

	t.Run("the plan holds", func(t *testing.T) {
		plan := planFor(t, []string{small, large}, opts, nil)
		submitFiles(t, l.System, "holds", []string{small, large}, plan)
		st := waitState(t, l.System, "holds", "the end", failed)
		if st.Status != StatusDone || st.Result.Frames != 2 || st.Result.Width != 16 {
			t.Fatalf("job ended %s %+v %+v, want done: 2 frames of 16x16", st.Status, st.Error, st.Result)
		}
	})
}

// The worker tells the converter the most its video may take: half of
// the disk budget left once the buckets and its folder are counted (the
// video is then stored as well); with none left the job fails naming
// max_disk_mb before it runs.
func TestWorkerCapsTheVideoAtTheDiskLeft(t *testing.T) {
	conv := &fakeConverter{}
	lim := img2vid.Limits{DiskMB: 1}
	l := startWorker(t, WorkerConfig{Converter: conv, Limits: lim})
	file := filepath.Join(t.TempDir(), "000001.png")
	testimage.Write(t, file, make([]byte, 100<<10))
	plan := &img2vid.Plan{Options: img2vid.DefaultOptions(), Inputs: 1}
	submitFiles(t, l.System, "fits", []string{file}, plan)
	if st := waitState(t, l.System, "fits", "the end", failed); st.Status != StatusDone {
		t.Fatalf("job ended %+v", st)
	}
	// 1 MiB less the image twice (bucket and folder) and the buckets'
	// own bytes, halved.
	if conv.maxBytes <= 0 || conv.maxBytes > (1<<20-2*100<<10)/2 || conv.maxBytes < (1<<20-2*100<<10)/2-16<<10 {
		t.Errorf("the video's cap was %d bytes, want a little under %d", conv.maxBytes, (1<<20-2*100<<10)/2)
	}

	big := filepath.Join(t.TempDir(), "000001.png")
	testimage.Write(t, big, make([]byte, 600<<10))
	submitFiles(t, l.System, "full", []string{big}, plan)
	st := waitState(t, l.System, "full", "the end", failed)
	if st.Status != StatusFailed || st.Error.Code != img2vid.EBUSY || st.Error.Limit != img2vid.LimitDiskMB ||
		!strings.Contains(st.Error.Message, "max_disk_mb=1") {
		t.Fatalf("job ended %s %+v, want failed naming max_disk_mb", st.Status, st.Error)
	}
	if conv.count() != 1 {
		t.Errorf("the converter ran %d times, want once (not for the job with no room)", conv.count())
	}
}
