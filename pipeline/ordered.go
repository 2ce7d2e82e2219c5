package pipeline

import "context"

// result is one item of an ordered map: a value or the error making it.
type result[T any] struct {
	val T
	err error
}

// ordered runs fn(i) for i in [0, n) on up to workers goroutines and
// delivers the results in index order. At most window results exist at
// once, finished or not, which is what keeps memory flat however long the
// job. The channel closes after the last result, or early once ctx is done;
// a consumer that stops reading must cancel ctx.
func ordered[T any](ctx context.Context, n, workers, window int, fn func(ctx context.Context, i int) (T, error)) <-chan chan result[T] {
	slots := make(chan chan result[T], window-1)
	sem := make(chan struct{}, workers)
	go func() {
		defer close(slots)
		for i := 0; i < n; i++ {
			ch := make(chan result[T], 1)
			select {
			case slots <- ch:
			case <-ctx.Done():
				return
			}
			go func() {
				select {
				case sem <- struct{}{}:
				case <-ctx.Done():
					ch <- result[T]{err: ctx.Err()}
					return
				}
				v, err := fn(ctx, i)
				<-sem
				ch <- result[T]{val: v, err: err}
			}()
		}
	}()
	return slots
}
