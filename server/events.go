package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
)

// heartbeat keeps idle event streams open through proxies that close
// silent connections.
const heartbeat = 15 * time.Second

// events streams a job's progress as server-sent events: a "progress"
// event on every change, then one final event named after the job's
// status (done, failed or canceled) carrying the whole job, then the
// stream ends. Changes that come faster than the client reads are merged.
// A client may hold Limits.StreamsPerClient streams open, the server
// Limits.Streams; a stream past either is refused before the job is read.
// The job is read from NATS once, when its stream opens; from then on its
// changes come from the job system's board, which follows NATS for every
// stream at once.
func (s *Server) events(c *gin.Context) {
	closed, err := s.streams.open(c.ClientIP(), s.cfg.Limits)
	if err != nil {
		s.writeError(c, err)
		return
	}
	defer closed()
	ctx := c.Request.Context()
	st, changed, err := s.lookup(ctx, c.Param("id"))
	if err != nil {
		s.writeError(c, err)
		return
	}
	flusher, ok := c.Writer.(http.Flusher)
	if !ok {
		s.writeError(c, fmt.Errorf("response writer cannot flush"))
		return
	}
	h := c.Writer.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // let nginx pass events through at once
	c.Status(http.StatusOK)
	if c.Request.Method == http.MethodHead {
		return // the headers say what a GET would stream
	}
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	for {
		v := view(st)
		name := "progress"
		if terminal(v.Status) {
			name = v.Status
		}
		data, err := json.Marshal(v)
		if err != nil {
			s.log.Error("encoding job event", "job", st.ID, "err", err)
			return
		}
		if _, err := fmt.Fprintf(c.Writer, "event: %s\ndata: %s\n\n", name, data); err != nil {
			return // the client went away
		}
		flusher.Flush()
		if terminal(v.Status) {
			return
		}
		for waiting := true; waiting; {
			select {
			case <-ctx.Done():
				return
			case <-changed:
				var ok bool
				if st, changed, ok = s.cfg.Jobs.Follow(st.ID); !ok {
					return // expired meanwhile
				}
				waiting = false
			case <-tick.C:
				if _, err := fmt.Fprint(c.Writer, ": keep-alive\n\n"); err != nil {
					return
				}
				flusher.Flush()
			}
		}
	}
}
