package main

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/img2vid/img2vid"
	"github.com/img2vid/img2vid/inference"
)

// A check of the runtime that does not answer (a GPU that hangs) is an
// answer too: the caller's context bounds its wait, and the runtime's
// description stays readable meanwhile, so that neither the worker's loop,
// nor /readyz, nor the metrics of a running job wait on it. Once the check
// ends, its answer is the one given.
func TestLiveRuntimeCheckThatHangsIsAnAnswer(t *testing.T) {
	release := make(chan struct{})
	var opens atomic.Int32
	live := newLiveRuntime(nil, errors.New("no library yet"), func() (*inference.Runtime, error) {
		opens.Add(1)
		<-release
		return nil, errors.New("the GPU did not answer")
	}, func(*inference.Runtime) {}, 0)
	defer live.Close()
	var once sync.Once
	answer := func() { once.Do(func() { close(release) }) }
	defer answer() // before Close, should the test stop early

	// Within this, however loaded the machine: the context ends after
	// 50 ms, and without it the call would wait for the open for ever.
	const bound = 10 * time.Second
	within := func(what string, f func()) {
		t.Helper()
		done := make(chan struct{})
		go func() { f(); close(done) }()
		select {
		case <-done:
		case <-time.After(bound):
			t.Fatalf("%s waits on a check that does not answer", what)
		}
	}
	var err error
	within("Ready", func() {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		err = live.Ready(ctx)
	})
	if img2vid.ErrorCode(err) != img2vid.EUNAVAILABLE || !strings.Contains(err.Error(), "did not answer") {
		t.Errorf("Ready while the check hangs = %v, want unavailable saying the check did not answer", err)
	}
	within("Provider", func() { live.Provider() })
	within("a second Ready", func() {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		live.Ready(ctx)
	})
	if n := opens.Load(); n != 1 {
		t.Errorf("the runtime was opened %d times by checks made while one ran, want 1", n)
	}
	answer()
	within("Ready once the check ended", func() { err = live.Ready(context.Background()) })
	if err == nil || !strings.Contains(err.Error(), "the GPU did not answer") {
		t.Errorf("Ready after the check ended = %v, want its answer", err)
	}
}
