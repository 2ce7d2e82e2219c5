package jobs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// idleConsumer is how long the server keeps a consumer of readFrom that
// nobody pulls from: stopping one does not delete it, and a video player
// makes many Range requests. A reader paused for longer than this reads
// on all the same (checked with a pause of four times it).
const idleConsumer = 10 * time.Second

// readFrom reads an object of the object store bucket from byte pos on.
// The object store's own reader starts at the first byte, so that a Range
// request for the end of a video would pull every chunk before it; this
// one finds the chunk that holds pos from the chunks' headers alone (the
// server sends their sizes, not their bytes), and reads the chunks from
// there. nuid names the object's chunks (its ObjectInfo.NUID).
func readFrom(ctx context.Context, js jetstream.JetStream, bucket, nuid string, pos int64) (io.ReadCloser, error) {
	stream, subject := "OBJ_"+bucket, "$O."+bucket+".C."+nuid
	heads, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject},
		HeadersOnly: true, InactiveThreshold: idleConsumer})
	if err != nil {
		return nil, fmt.Errorf("listing the chunks of %s: %w", nuid, err)
	}
	it, err := heads.Messages()
	if err != nil {
		return nil, fmt.Errorf("listing the chunks of %s: %w", nuid, err)
	}
	// The chunks are counted, so that an object whose chunks are gone
	// (it expired, or a job that ran again replaced it since it was
	// opened) is an error here instead of a wait for chunks that never
	// come.
	var off int64
	var seq uint64
	if info := heads.CachedInfo(); info != nil && info.NumPending == 0 {
		it.Stop()
		return nil, chunksEnd(nuid, off, pos)
	}
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			it.Stop()
			return nil, fmt.Errorf("listing the chunks of %s: %w", nuid, err)
		}
		size, err := strconv.ParseInt(msg.Headers().Get(nats.MsgSize), 10, 64)
		meta, merr := msg.Metadata()
		if err != nil || merr != nil {
			it.Stop()
			return nil, fmt.Errorf("chunk of %s without its size or sequence: %w", nuid, errors.Join(err, merr))
		}
		if off+size > pos {
			seq = meta.Sequence.Stream
			break
		}
		off += size
		if meta.NumPending == 0 {
			it.Stop()
			return nil, chunksEnd(nuid, off, pos)
		}
	}
	it.Stop()
	body, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject},
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: seq, InactiveThreshold: idleConsumer})
	if err != nil {
		return nil, fmt.Errorf("reading the chunks of %s: %w", nuid, err)
	}
	chunks, err := body.Messages()
	if err != nil {
		return nil, fmt.Errorf("reading the chunks of %s: %w", nuid, err)
	}
	return &chunkReader{ctx: ctx, chunks: chunks, skip: pos - off}, nil
}

// chunksEnd says that the chunks of object nuid hold off bytes, and not
// the byte at pos.
func chunksEnd(nuid string, off, pos int64) error {
	return fmt.Errorf("the chunks of %s hold %d bytes, not byte %d: the object expired or was replaced", nuid, off, pos)
}

// chunkReader reads an object's chunks in order, skipping the first skip
// bytes. Its caller stops at the object's size.
type chunkReader struct {
	ctx    context.Context
	chunks jetstream.MessagesContext
	buf    []byte
	skip   int64
}

// Read reads the rest of the current chunk, or the next one.
func (c *chunkReader) Read(p []byte) (int, error) {
	for len(c.buf) == 0 {
		msg, err := c.chunks.Next(jetstream.NextContext(c.ctx))
		if err != nil {
			return 0, err
		}
		c.buf = msg.Data()
		if c.skip > 0 {
			n := min(c.skip, int64(len(c.buf)))
			c.buf, c.skip = c.buf[n:], c.skip-n
		}
	}
	n := copy(p, c.buf)
	c.buf = c.buf[n:]
	return n, nil
}

// Close stops reading.
func (c *chunkReader) Close() error {
	c.chunks.Stop()
	return nil
}
