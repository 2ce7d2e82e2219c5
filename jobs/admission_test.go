package jobs

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/img2vid/img2vid"
)

// A place given back frees it at once and leaves nothing of the client in
// the bucket; a place whose job has ended no longer counts; a full queue
// is refused as busy; and once a job expires, its places go with it.
func TestAdmissionPlaces(t *testing.T) {
	conv := &fakeConverter{}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l, err := StartLocal(ctx, t.TempDir(), Config{Queue: 2, TTL: 500 * time.Millisecond}, WorkerConfig{Converter: conv})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Stop(context.Background()) })
	s := l.System
	ask := func(id string) Ask { return Ask{ID: id, Client: "192.0.2.1", PerClient: 1} } // submitOne's client

	first, err := s.Admit(ctx, ask("first"))
	if err != nil {
		t.Fatal(err)
	}
	var full *Refusal
	if _, err := s.Admit(ctx, ask("second")); !errors.As(err, &full) || full.Limit != img2vid.LimitJobsPerClient || full.Used != 1 {
		t.Fatalf("a second place for a client with one: %v, want refused naming %s", err, img2vid.LimitJobsPerClient)
	}
	first.Release()
	for _, key := range []string{clientKeyOf("192.0.2.1"), allKey} {
		waitGone(t, s, key)
	}

	// A place whose job ran and ended is free again at once, and when the
	// job expires its places go, though no one asked for a place since.
	ran, err := s.Admit(ctx, ask("ran"))
	if err != nil {
		t.Fatal(err)
	}
	submitOne(t, s, "ran")
	ran.Submitted()
	waitState(t, s, "ran", "the end", failed)
	for {
		if _, err := s.states.Get(ctx, "ran"); isNotFound(err) {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the job never expired")
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, key := range []string{clientKeyOf("192.0.2.1"), allKey} {
		waitGone(t, s, key)
	}

	// The queue (2): the places of uploads arriving count against it.
	for i, client := range []string{"198.51.100.1", "198.51.100.2"} {
		if _, err := s.Admit(ctx, Ask{ID: fmt.Sprint("q", i), Client: client}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Admit(ctx, Ask{ID: "q3", Client: "198.51.100.3"}); img2vid.ErrorCode(err) != img2vid.EBUSY {
		t.Errorf("a place past the queue's 2 (uploads arriving): %v, want busy", err)
	}
}

// waitGone waits until the admission bucket no longer has key.
func waitGone(t *testing.T, s *System, key string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		_, err := s.admission.Get(context.Background(), key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("admission key %s still there: %v", key, err)
		}
	}
}
