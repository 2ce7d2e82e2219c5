package pipeline

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync"
)

// result is one item of an ordered map: a value or the error making it.
type result[T any] struct {
	val T
	err error
}

// ordered runs fn(i) for i in [0, n) on up to workers goroutines and
// delivers the results in index order. At most window results exist at
// once, finished or not, which is what keeps memory flat however long the
// job. The channel closes after the last result, or early once ctx is done;
// a consumer that stops reading must cancel ctx, then call wait, which
// returns once no fn is running any more (so nothing outlives the job that
// started it). A panic in fn becomes that item's error.
func ordered[T any](ctx context.Context, n, workers, window int, fn func(ctx context.Context, i int) (T, error)) (slots <-chan chan result[T], wait func()) {
	out := make(chan chan result[T], window-1)
	sem := make(chan struct{}, workers)
	var running sync.WaitGroup
	running.Add(1)
	go func() {
		defer running.Done()
		defer close(out)
		for i := 0; i < n; i++ {
			ch := make(chan result[T], 1)
			select {
			case out <- ch:
			case <-ctx.Done():
				return
			}
			// Take the worker slot here, in index order: items start in
			// order, so a later one can never hold up the one the consumer
			// waits for.
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				ch <- result[T]{err: ctx.Err()}
				return
			}
			running.Add(1)
			go func() {
				defer running.Done()
				defer func() { <-sem }()
				ch <- call(ctx, i, fn)
			}()
		}
	}()
	return out, running.Wait
}

// call runs fn(i), turning a panic (a decoder's or a model's) into an error
// so that it fails this job and not the whole process.
func call[T any](ctx context.Context, i int, fn func(ctx context.Context, i int) (T, error)) (r result[T]) {
	defer func() {
		if p := recover(); p != nil {
			r = result[T]{err: fmt.Errorf("panic on image %d: %v\n%s", i+1, p, debug.Stack())}
		}
	}()
	v, err := fn(ctx, i)
	return result[T]{val: v, err: err}
}
