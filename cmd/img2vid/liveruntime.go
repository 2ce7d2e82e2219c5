package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/img2vid/img2vid"
	"github.com/img2vid/img2vid/inference"
)

// liveRuntime is ONNX Runtime as a process that runs jobs sees it: the
// runtime opened at start or, when that failed (no library yet, a GPU not
// yet visible, a models folder not yet mounted), opened again at each
// check until it opens; once open, checked by running a one-node model
// on its provider, which catches a GPU that stopped answering. Checks run
// at most once per interval: readiness probes and the worker ask often.
type liveRuntime struct {
	runtimeModels // l.runtime: none until it opens
	open          func() (*inference.Runtime, error)
	opened        func(*inference.Runtime) // called once, when the runtime opens
	interval      time.Duration

	mu      sync.Mutex
	rt      *inference.Runtime
	last    error // the last check's answer
	checked time.Time
	running chan struct{} // closed when the check under way ends; nil when none is
	closed  bool
}

// newLiveRuntime starts from what opening the runtime at start gave: rt,
// or err when it could not be opened.
func newLiveRuntime(rt *inference.Runtime, err error, open func() (*inference.Runtime, error),
	opened func(*inference.Runtime), interval time.Duration) *liveRuntime {
	l := &liveRuntime{open: open, opened: opened, interval: interval, rt: rt, checked: time.Now()}
	l.runtimeModels = l.runtime
	if err != nil {
		l.last = unavailable(err)
	} else {
		opened(rt)
	}
	return l
}

// unavailable words a failure to open or run the runtime for /readyz.
func unavailable(err error) error {
	return &img2vid.Error{Code: img2vid.EUNAVAILABLE, Message: "ONNX Runtime does not work: " + err.Error(), Err: err}
}

// Ready reports whether the runtime works, checking again if the last
// check is older than the interval. The check runs on its own, without
// the lock: a caller whose ctx ends first (a GPU that does not answer) is
// told so, callers meanwhile wait for the same check, and the runtime's
// models and description stay available to the jobs running.
func (l *liveRuntime) Ready(ctx context.Context) error {
	l.mu.Lock()
	if time.Since(l.checked) < l.interval {
		defer l.mu.Unlock()
		return l.last
	}
	if l.running == nil {
		l.running = make(chan struct{})
		go l.check(l.rt, l.running)
	}
	done := l.running
	l.mu.Unlock()
	select {
	case <-done:
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.last
	case <-ctx.Done():
		return unavailable(fmt.Errorf("the check did not answer: %w", ctx.Err()))
	}
}

// check opens the runtime if rt is nil, runs a model on it, records the
// answer and closes done.
func (l *liveRuntime) check(rt *inference.Runtime, done chan struct{}) {
	defer close(done)
	var err error
	opened := false
	if rt == nil {
		if rt, err = l.open(); err != nil {
			err = unavailable(err)
		} else {
			opened = true
			l.opened(rt)
		}
	}
	if err == nil {
		err = rt.Check()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if opened {
		if l.closed { // closed while it opened: nobody will use it
			rt.Close()
		} else {
			l.rt = rt
		}
	}
	l.last, l.checked, l.running = err, time.Now(), nil
}

// runtime returns the open runtime, or why there is none.
func (l *liveRuntime) runtime() (*inference.Runtime, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.rt == nil {
		return nil, l.last
	}
	return l.rt, nil
}

// Info describes the runtime; zero until it opens.
func (l *liveRuntime) Info() img2vid.RuntimeInfo {
	rt, err := l.runtime()
	if err != nil {
		return img2vid.RuntimeInfo{}
	}
	return rt.Info()
}

// Provider names the execution provider in use, "" until the runtime opens.
func (l *liveRuntime) Provider() string { return l.Info().Provider }

// Close closes the runtime if it was opened; one a check opens later is
// closed by that check.
func (l *liveRuntime) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	if l.rt != nil {
		l.rt.Close()
	}
}
