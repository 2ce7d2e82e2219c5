package server

import (
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
)

// stallGuard cuts a request whose client stops sending its body for longer
// than Config.UploadIdle, or stops taking the response for longer than
// Config.DownloadIdle. Each deadline moves on with every byte that passes,
// so a slow client that keeps going is served however long it takes, while
// a stalled one lets go of its upload slot, its folder or its open video.
// The deadlines are the connection's (http.ResponseController), so they
// hold per request whatever the listener's own timeouts are.
func (s *Server) stallGuard(c *gin.Context) {
	rc := http.NewResponseController(c.Writer)
	w := &renewingWriter{ResponseWriter: c.Writer, rc: rc, idle: s.cfg.DownloadIdle}
	w.renew()
	c.Writer = w
	var body *renewingBody
	if r := c.Request; r.Body != nil && r.Body != http.NoBody {
		body = &renewingBody{ReadCloser: r.Body, rc: rc, idle: s.cfg.UploadIdle}
		body.renew()
		r.Body = body
	}
	defer func() {
		// The last bytes of the response go out after the handler returns,
		// and net/http may read what is left of a body it did not finish:
		// neither may wait on a stalled client for ever.
		w.renew()
		if body != nil && !body.ended {
			body.renew()
		}
	}()
	c.Next()
}

// renewingBody moves the connection's read deadline on with every read
// that brings bytes, until it is stopped.
type renewingBody struct {
	io.ReadCloser
	rc    *http.ResponseController
	idle  time.Duration
	ended bool // the body hit its end or an error

	mu      sync.Mutex
	stopped bool
}

func (b *renewingBody) renew() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.stopped {
		b.rc.SetReadDeadline(time.Now().Add(b.idle)) // ErrNotSupported outside a real connection: nothing to guard
	}
}

// stop makes the read in progress, and every later one, fail at once:
// Shutdown uses it to end uploads that would otherwise hold the server.
func (b *renewingBody) stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stopped = true
	b.rc.SetReadDeadline(time.Now())
}

func (b *renewingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == io.EOF:
		b.ended = true
		// Once the body is read, net/http watches the connection to notice
		// a client that goes away; a deadline left here would end that
		// watch, and the request's context with it.
		b.rc.SetReadDeadline(time.Time{})
	case err != nil:
		// The deadline stays, so that net/http, which reads what is left
		// of a body before it answers, gives up on a stalled client at once.
		b.ended = true
	case n > 0:
		b.renew()
	}
	return n, err
}

// renewingWriter moves the connection's write deadline on before every
// write and flush, so only a client that takes nothing for the idle time is
// cut.
type renewingWriter struct {
	gin.ResponseWriter
	rc   *http.ResponseController
	idle time.Duration
}

func (w *renewingWriter) renew() {
	w.rc.SetWriteDeadline(time.Now().Add(w.idle)) // ErrNotSupported outside a real connection: nothing to guard
}

func (w *renewingWriter) Write(p []byte) (int, error) {
	w.renew()
	return w.ResponseWriter.Write(p)
}

func (w *renewingWriter) WriteString(s string) (int, error) {
	w.renew()
	return w.ResponseWriter.WriteString(s)
}

func (w *renewingWriter) Flush() {
	w.renew()
	w.ResponseWriter.Flush()
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *renewingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
