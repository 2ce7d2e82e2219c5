package jobs

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"
)

// A put that takes nothing for the idle time is canceled and fails saying
// so; one that keeps taking a little goes on well past that time.
func TestWatchedPutEndsOnlyAStalledPut(t *testing.T) {
	const idle = 200 * time.Millisecond
	start := time.Now()
	err := watchedPut(context.Background(), idle, bytes.NewReader(make([]byte, 10)), func(ctx context.Context, r io.Reader) error {
		io.ReadAll(r)
		<-ctx.Done() // the server stopped answering
		return ctx.Err()
	})
	if !errors.Is(err, errPutStalled) {
		t.Fatalf("a put that stopped taking its file ended with %v, want it canceled as stalled", err)
	}
	if took := time.Since(start); took > 10*idle {
		t.Errorf("the stalled put was canceled after %s, idle time %s", took, idle)
	}

	start = time.Now()
	err = watchedPut(context.Background(), idle, bytes.NewReader(make([]byte, 40)), func(ctx context.Context, r io.Reader) error {
		b := make([]byte, 1)
		for {
			if _, err := r.Read(b); err == io.EOF {
				return nil
			}
			select { // slow, but moving
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(idle / 8):
			}
		}
	})
	if err != nil {
		t.Fatalf("a put that kept moving for %s (idle time %s) failed: %v", time.Since(start), idle, err)
	}
}
