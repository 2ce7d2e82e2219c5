package jobs

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/img2vid/img2vid"
	"github.com/img2vid/img2vid/internal/testenv"
	"github.com/img2vid/img2vid/internal/testimage"
	"github.com/img2vid/img2vid/pipeline"
)

// testKey is a job key for tests.
var testKey = []byte(strings.Repeat("k", MinKeyBytes))

// forge stores a job's files and state as an API replica would, then
// queues spec as someone else may: its message signed with key (nil for
// none), bypassing Submit and whatever Submit does to a spec.
func forge(t *testing.T, s *System, spec Spec, files []string, key []byte) {
	t.Helper()
	ctx := context.Background()
	for i, name := range spec.Inputs {
		if err := s.putFile(ctx, name, files[i]); err != nil {
			t.Fatal(err)
		}
	}
	st, err := json.Marshal(State{ID: spec.ID, Status: StatusQueued, Client: "192.0.2.9", Created: time.Now().UTC()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.states.Create(ctx, spec.ID, st); err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg(queueSubject)
	m.Data = data
	if key != nil {
		m.Header.Set(signatureHeader, sign(key, data))
	}
	if _, err := s.js.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
}

// oneImage is a one-image job spec of the file at path, planned as the
// server plans it.
func oneImage(t *testing.T, id, path string) Spec {
	return Spec{ID: id, Inputs: []string{id + "/000001.png"}, Labels: []string{label(0)},
		Plan: planFor(t, []string{path}, img2vid.DefaultOptions(), nil)}
}

// A worker with a job key runs the jobs its API replicas signed, and
// refuses one that is unsigned or signed with another key, failing it
// with the reason; its converter never sees it.
func TestWorkerRunsOnlySignedJobs(t *testing.T) {
	conv := &fakeConverter{}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := StartLocal(ctx, t.TempDir(), Config{Key: testKey}, WorkerConfig{Converter: conv})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Stop(context.Background()) })
	file := filepath.Join(t.TempDir(), "000001.png")
	testimage.Write(t, file, testimage.PNG(t, testimage.Quadrants(16, 16)))

	submitFiles(t, l.System, "signed", []string{file}, planFor(t, []string{file}, img2vid.DefaultOptions(), nil))
	if st := waitState(t, l.System, "signed", "the end", failed); st.Status != StatusDone {
		t.Fatalf("a job Submit signed ended %s %+v", st.Status, st.Error)
	}
	for name, key := range map[string][]byte{"unsigned": nil, "otherkey": []byte(strings.Repeat("x", MinKeyBytes))} {
		forge(t, l.System, oneImage(t, name, file), []string{file}, key)
		st := waitState(t, l.System, name, "the end", failed)
		if st.Status != StatusFailed || !strings.Contains(st.Error.Message, "not signed with this worker's job key") {
			t.Errorf("%s: job ended %s %+v, want failed saying it is not signed", name, st.Status, st.Error)
		}
	}
	if conv.count() != 1 {
		t.Errorf("the converter ran %d times, want once (the signed job only)", conv.count())
	}
	if _, err := Open(ctx, l.System.nc, Config{Key: []byte("short")}); err == nil || !strings.Contains(err.Error(), "at least 32") {
		t.Errorf("a short key: %v, want it refused", err)
	}
}

// A message that names files outside its job, a path on the worker's
// machine, or a job id that is a path, is refused: a worker runs a plan
// with its own copies of the job's files and nothing else.
func TestWorkerOpensOnlyTheJobsOwnFiles(t *testing.T) {
	conv := &fakeConverter{}
	l := startWorker(t, WorkerConfig{Converter: conv})
	file := filepath.Join(t.TempDir(), "000001.png")
	testimage.Write(t, file, testimage.PNG(t, testimage.Quadrants(16, 16)))

	mine := oneImage(t, "mine", file)
	forge(t, l.System, mine, []string{file}, nil)
	if st := waitState(t, l.System, "mine", "the end", failed); st.Status != StatusDone {
		t.Fatalf("job ended %s %+v", st.Status, st.Error)
	}

	paths := oneImage(t, "paths", file)
	paths.Plan.Options.Audio, paths.Plan.Options.Detections = "/etc/passwd", "/etc/cron.d/img2vid"
	other := oneImage(t, "another", file)
	other.Inputs = []string{"mine/000001.png"} // the first job's image
	bad := oneImage(t, "badaudio", file)
	bad.Audio = "badaudio/../mine/000001.png"
	for _, tt := range []struct {
		spec Spec
		want string
	}{
		{paths, "the message names a file on the worker's machine"},
		{other, `object "mine/000001.png" is not one of the job's own files`},
		{bad, `object "badaudio/../mine/000001.png" is not one of the job's own files`},
	} {
		forge(t, l.System, tt.spec, []string{file}, nil)
		st := waitState(t, l.System, tt.spec.ID, "the end", failed)
		if st.Status != StatusFailed || st.Error.Code != img2vid.EINVALID || !strings.Contains(st.Error.Message, tt.want) {
			t.Errorf("%s: job ended %s %+v, want failed saying %q", tt.spec.ID, st.Status, st.Error, tt.want)
		}
	}
	if err := (Spec{ID: "../.."}).check(); err == nil {
		t.Error("a job id that is a path passed the check")
	}
	if conv.count() != 1 {
		t.Errorf("the converter ran %d times, want once", conv.count())
	}
}

// On the real pipeline a worker refuses a plan over its own limits, and one
// its options do not give, though the message carries it.
func TestWorkerRefusesAPlanItWouldNotMake(t *testing.T) {
	testenv.NeedFFmpeg(t)
	lim := img2vid.DefaultLimits()
	lim.Pixels = 1000
	l := startWorker(t, WorkerConfig{Converter: &pipeline.Pipeline{Limits: lim}})
	file := filepath.Join(t.TempDir(), "000001.png")
	testimage.Write(t, file, testimage.PNG(t, testimage.Quadrants(64, 64)))

	forge(t, l.System, oneImage(t, "toolarge", file), []string{file}, nil) // planned under the default limits
	st := waitState(t, l.System, "toolarge", "the end", failed)
	if st.Status != StatusFailed || st.Error.Limit != img2vid.LimitPixels {
		t.Errorf("a plan over the worker's max_pixels: job ended %s %+v, want failed naming %s", st.Status, st.Error, img2vid.LimitPixels)
	}

	small := filepath.Join(t.TempDir(), "000001.png")
	testimage.Write(t, small, testimage.PNG(t, testimage.Quadrants(16, 16)))
	grown := oneImage(t, "grown", small)
	grown.Plan.Width, grown.Plan.Height, grown.Plan.FramePixels = 30, 30, 900
	forge(t, l.System, grown, []string{small}, nil)
	st = waitState(t, l.System, "grown", "the end", failed)
	if st.Status != StatusFailed || st.Error.Code != img2vid.EINVALID || !strings.Contains(st.Error.Message, "is not the one its options give here") {
		t.Errorf("a forged frame size: job ended %s %+v, want failed as a plan its options do not give", st.Status, st.Error)
	}
}
