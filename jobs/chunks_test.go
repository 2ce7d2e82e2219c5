package jobs

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// A video read from a position other than its start (a Range request)
// gives the bytes from there, at chunk boundaries and inside chunks, after
// reads elsewhere, forwards and backwards; and reading its last bytes does
// not pull the chunks before them.
func TestVideoReadFromAnywhere(t *testing.T) {
	l := startLocal(t, t.TempDir(), Config{}, &fakeConverter{})
	defer l.Stop(context.Background())
	ctx := context.Background()
	const id = "ranges"
	want := make([]byte, 8<<17+1234) // eight chunks of 128 KiB and a short one
	r := rand.New(rand.NewPCG(7, 8))
	for i := range want {
		want[i] = byte(r.Uint32())
	}
	if _, err := l.videos.Put(ctx, jetstream.ObjectMeta{Name: id}, bytes.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	// Another object stored meanwhile interleaves its chunks in the stream.
	if _, err := l.videos.Put(ctx, jetstream.ObjectMeta{Name: "other"}, bytes.NewReader(make([]byte, 3<<17))); err != nil {
		t.Fatal(err)
	}
	v, err := l.Video(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	for _, at := range []struct{ pos, n int64 }{
		{0, 100}, {1 << 17, 10}, {1<<17 - 1, 2}, {5, 300000}, {int64(len(want)) - 1, 1}, {700001, 1 << 18},
		{3, 1}, {8 << 17, 1234}, {int64(len(want)) - 5000, 5000},
	} {
		if _, err := v.Seek(at.pos, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, at.n)
		if _, err := io.ReadFull(v, got); err != nil {
			t.Fatalf("reading %d bytes at %d: %v", at.n, at.pos, err)
		}
		if !bytes.Equal(got, want[at.pos:at.pos+at.n]) {
			t.Fatalf("%d bytes at %d differ from the object's", at.n, at.pos)
		}
	}
	if n, err := v.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Errorf("read at the end = %d, %v; want io.EOF", n, err)
	}

	end, err := l.Video(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	defer end.Close()
	before := l.embedded.Conn.Stats().InBytes
	if _, err := end.Seek(-10, io.SeekEnd); err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(end); err != nil || !bytes.Equal(got, want[len(want)-10:]) {
		t.Fatalf("the last 10 bytes: %v", err)
	}
	if in := l.embedded.Conn.Stats().InBytes - before; in > 1<<17 {
		t.Errorf("reading the last 10 bytes took in %d bytes; want less than one chunk (the last is short)", in)
	}
}

// A Range read of a video whose chunks are gone since it was opened (a
// job that ran again replaced it; or it expired) fails at once instead
// of waiting for chunks that never come.
func TestVideoReadFromGoneChunksFails(t *testing.T) {
	l := startLocal(t, t.TempDir(), Config{}, &fakeConverter{})
	defer l.Stop(context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // lets go of a read that waits, should the test fail
	const id = "replaced"
	if _, err := l.videos.Put(ctx, jetstream.ObjectMeta{Name: id}, bytes.NewReader(make([]byte, 3<<17))); err != nil {
		t.Fatal(err)
	}
	v, err := l.Video(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	// Stored again: the first object's chunks are purged.
	if _, err := l.videos.Put(ctx, jetstream.ObjectMeta{Name: id}, bytes.NewReader(make([]byte, 3<<17))); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Seek(200000, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	read := make(chan error, 1)
	go func() { _, err := v.Read(make([]byte, 10)); read <- err }()
	select {
	case err := <-read:
		if err == nil || !strings.Contains(err.Error(), "expired or was replaced") {
			t.Errorf("reading a video whose chunks are gone = %v, want an error saying so", err)
		}
	case <-time.After(10 * time.Second): // the answer is a request or two away
		t.Fatal("reading a video whose chunks are gone waits for them")
	}
}
