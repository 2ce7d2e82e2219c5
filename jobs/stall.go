package jobs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"
)

// putIdle is how long a put into a bucket may go without taking any of
// its file: the NATS client takes the next chunk once the server has room
// for it, so a put that takes nothing for this long has stopped (its
// stream lost its leader, or the cluster its quorum).
const putIdle = 30 * time.Second

// errPutStalled is the cause given to a put canceled by its watch.
var errPutStalled = errors.New("the job store took nothing for a while")

// watchedPut runs put, which reads r, and cancels it once it has read
// nothing for idle: a put that moves goes on as long as it needs (a large
// video into a replicated bucket), where one bound for the whole put cut
// long ones and let a stalled one wait it out. ctx still ends it.
func watchedPut(ctx context.Context, idle time.Duration, r io.Reader, put func(context.Context, io.Reader) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	wr := &watchedReader{r: r}
	wr.last.Store(time.Now().UnixNano())
	done := make(chan struct{})
	defer close(done)
	go func() {
		tick := time.NewTicker(idle / 4)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case now := <-tick.C:
				if now.Sub(time.Unix(0, wr.last.Load())) > idle {
					cancel(errPutStalled)
					return
				}
			}
		}
	}()
	err := put(ctx, wr)
	if err != nil && errors.Is(context.Cause(ctx), errPutStalled) {
		return fmt.Errorf("%w (%s without progress): %w", errPutStalled, idle, err)
	}
	return err
}

// watchedReader records when it was last read from.
type watchedReader struct {
	r    io.Reader
	last atomic.Int64 // UnixNano of the last Read's return
}

func (w *watchedReader) Read(p []byte) (int, error) {
	n, err := w.r.Read(p)
	w.last.Store(time.Now().UnixNano())
	return n, err
}
