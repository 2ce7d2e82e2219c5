package jobs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/img2vid/img2vid"
	"github.com/img2vid/img2vid/internal/testimage"
)

// authUser is a generated NATS user of one role: its seed file and
// public key.
type authUser struct {
	seed string
	pub  string
}

// newAuthUser makes a user's nkey and writes its seed into dir.
func newAuthUser(t *testing.T, dir, role string) authUser {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, err := kp.Seed()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := kp.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, role+".nk")
	if err := os.WriteFile(file, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	return authUser{seed: file, pub: pub}
}

// startAuthServer starts a JetStream server configured with AuthConfig
// for the users given, and returns its client URL.
func startAuthServer(t *testing.T, users []AuthUser) string {
	t.Helper()
	dir := t.TempDir()
	auth, err := AuthConfig(users)
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "nats.conf")
	body := fmt.Sprintf("listen: 127.0.0.1:-1\njetstream { store_dir: %q }\ninclude \"auth.conf\"\n", filepath.Join(dir, "js"))
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "auth.conf"), []byte(auth), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(conf)
	if err != nil {
		t.Fatalf("the configuration AuthConfig makes: %v\n%s", err, auth)
	}
	opts.NoSigs, opts.NoLog = true, true
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS server not ready")
	}
	t.Cleanup(srv.Shutdown)
	return srv.ClientURL()
}

// violations collects the permission errors the server sends a client.
type violations struct {
	mu   sync.Mutex
	errs []string
}

func (v *violations) handler(_ *nats.Conn, _ *nats.Subscription, err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.errs = append(v.errs, err.Error())
}

func (v *violations) list() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]string(nil), v.errs...)
}

// connectAs connects to url with the seed of a user, noting every error
// the server sends it.
func connectAs(t *testing.T, url string, u authUser) (*nats.Conn, *violations) {
	t.Helper()
	opt, err := nats.NkeyOptionFromSeed(u.seed)
	if err != nil {
		t.Fatal(err)
	}
	v := &violations{}
	nc, err := nats.Connect(url, opt, nats.ErrorHandler(v.handler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc, v
}

// On a NATS server with the users AuthConfig describes, an API replica
// and a worker, each with its role's user, run, cancel and deliver jobs
// with no permission refused; a worker's user cannot queue a job, an API
// replica's cannot take one, and a client with no user is not let in.
func TestRolesOnAnAuthorizedServer(t *testing.T) {
	dir := t.TempDir()
	api, worker := newAuthUser(t, dir, RoleAPI), newAuthUser(t, dir, RoleWorker)
	url := startAuthServer(t, []AuthUser{{Role: RoleAPI, NKey: api.pub}, {Role: RoleWorker, NKey: worker.pub}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	anc, aviol := connectAs(t, url, api)
	wnc, wviol := connectAs(t, url, worker)
	cfg := Config{Key: testKey, TTL: time.Minute}
	apiSys, err := Open(ctx, anc, cfg)
	if err != nil {
		t.Fatalf("an API replica opening the job system: %v", err)
	}
	t.Cleanup(apiSys.Close)
	workSys, err := Open(ctx, wnc, cfg)
	if err != nil {
		t.Fatalf("a worker opening the job system: %v", err)
	}
	t.Cleanup(workSys.Close)
	conv := &fakeConverter{}
	w, err := workSys.StartWorker(WorkerConfig{Converter: conv, Dir: filepath.Join(dir, "worker"), ReadyEvery: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Stop(context.Background()) })

	file := filepath.Join(t.TempDir(), "000001.png")
	testimage.Write(t, file, testimage.PNG(t, testimage.Quadrants(16, 16)))
	plan := planFor(t, []string{file}, img2vid.DefaultOptions(), nil)
	submitFiles(t, apiSys, "authorized", []string{file}, plan)
	st := waitState(t, apiSys, "authorized", "the end", failed)
	if st.Status != StatusDone {
		t.Fatalf("job ended %s %+v", st.Status, st.Error)
	}
	v, err := apiSys.Video(ctx, "authorized")
	if err != nil {
		t.Fatalf("an API replica reading the video: %v", err)
	}
	body, err := io.ReadAll(v)
	if err != nil || !strings.HasPrefix(string(body), "video of") {
		t.Fatalf("the video read back: %q, %v", body, err)
	}
	if err := apiSys.Cancel(ctx, "authorized"); err != nil {
		t.Fatalf("an API replica deleting a job: %v", err)
	}
	if _, err := apiSys.StoredBytes(ctx); err != nil {
		t.Fatalf("an API replica reading the buckets' size: %v", err)
	}
	if got := append(aviol.list(), wviol.list()...); len(got) > 0 {
		t.Fatalf("permissions refused on the way: %v", got)
	}

	// A worker's user publishes no job: the server refuses it, and no
	// acknowledgement comes.
	pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
	defer pcancel()
	if _, err := workSys.js.Publish(pctx, queueSubject, []byte(`{"id":"forged"}`)); err == nil {
		t.Error("a worker's user queued a job")
	}
	if !slicesContain(wviol.list(), `Permissions Violation for Publish to "img2vid.jobs"`) {
		t.Errorf("the server's errors for the worker's user: %v, want a publish violation", wviol.list())
	}
	// An API replica's user takes no job from the workers' consumer.
	w.Stop(context.Background()) // the next job stays queued, for the API's user to try
	submitFiles(t, apiSys, "waiting", []string{file}, plan)
	if batch, err := apiSys.consumer.Fetch(1, jetstream.FetchMaxWait(time.Second)); err == nil {
		for range batch.Messages() {
			t.Error("an API replica's user took a job")
		}
	}
	if !slicesContain(aviol.list(), `Permissions Violation for Publish to "$JS.API.CONSUMER.MSG.NEXT.IMG2VID_JOBS.workers"`) {
		t.Errorf("the server's errors for the API's user: %v, want a pull violation", aviol.list())
	}
	before := len(aviol.list())
	if err := apiSys.Cancel(ctx, "waiting"); err != nil {
		t.Fatalf("an API replica deleting a queued job: %v", err)
	}
	if info, err := apiSys.stream.Info(ctx); err != nil || info.State.Msgs != 0 {
		t.Errorf("the queue after the delete: %+v, %v; want it empty", info, err)
	}
	if got := aviol.list()[before:]; len(got) > 0 {
		t.Errorf("permissions refused deleting a queued job: %v", got)
	}
	// No user, no entry.
	if nc, err := nats.Connect(url); err == nil || !strings.Contains(strings.ToLower(err.Error()), "authorization") {
		if nc != nil {
			nc.Close()
		}
		t.Errorf("a client with no user: %v, want an authorization error", err)
	}
	if _, err := AuthConfig([]AuthUser{{Role: "admin", NKey: api.pub}}); err == nil {
		t.Error("an unknown role passed")
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatal("ran out of time")
	}
}

// slicesContain reports whether any of list contains s.
func slicesContain(list []string, s string) bool {
	for _, l := range list {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}
