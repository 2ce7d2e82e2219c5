package jobs

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// A video read more slowly than the NATS client's default API timeout
// (5 s), as by a client on a slow link, is read to its end: the read's
// request context has no deadline, which the client would otherwise
// replace with those 5 s for the whole object.
func TestSlowVideoReadIsNotCutOff(t *testing.T) {
	l := startLocal(t, t.TempDir(), Config{}, &fakeConverter{})
	defer l.Stop(context.Background())
	const id = "slowreader"
	want := make([]byte, 4<<20)
	for i := range want {
		want[i] = byte(i * 31)
	}
	if _, err := l.videos.Put(context.Background(), jetstream.ObjectMeta{Name: id}, bytes.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	v, err := l.Video(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	got := make([]byte, 64<<10)
	if _, err := io.ReadFull(v, got); err != nil {
		t.Fatalf("first read: %v", err)
	}
	time.Sleep(6 * time.Second) // past the client's 5 s default
	rest, err := io.ReadAll(v)
	if err != nil {
		t.Fatalf("reading on after a pause of 6 s: %v", err)
	}
	if got = append(got, rest...); !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes, not the %d stored", len(got), len(want))
	}
}
