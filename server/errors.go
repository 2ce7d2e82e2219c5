package server

import (
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/img2vid/img2vid"
)

// EUNAUTHORIZED is the code of a request without the right API token. It is
// local to the HTTP layer: nothing below the server knows about tokens.
const EUNAUTHORIZED = "unauthorized"

// ETOOMANYJOBS is the code of a job refused because its client already has
// Limits.JobsPerClient jobs queued or running. Like EUNAUTHORIZED it is
// about who asks, which only the HTTP layer knows.
const ETOOMANYJOBS = "too_many_jobs"

// ETOOMANYSTREAMS is the code of an event stream refused because its
// client already has Limits.StreamsPerClient open, or the server
// Limits.Streams. Each open stream holds a connection, which only the HTTP
// layer sees.
const ETOOMANYSTREAMS = "too_many_streams"

// EMETHOD is the code of a request whose path exists but not with its
// method. Only HTTP has methods.
const EMETHOD = "method_not_allowed"

// ESTALLED is the code of an upload whose client stopped sending for
// longer than Config.UploadIdle. It is about the connection, which only the
// HTTP layer sees.
const ESTALLED = "stalled"

// ErrorBody is the JSON body of every error response.
type ErrorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
	// Limit names the limit that was broken, when one was (max_pixels...).
	Limit string `json:"limit,omitempty"`
}

// statusOf maps an error code to its HTTP status. It is the only place that
// does: every error response, job error and refusal goes through
// writeError, which asks it.
func statusOf(code string) int {
	switch code {
	case img2vid.EINVALID:
		return http.StatusBadRequest
	case img2vid.ENOTFOUND:
		return http.StatusNotFound
	case img2vid.ETOOLARGE:
		return http.StatusRequestEntityTooLarge
	case img2vid.EBUSY, img2vid.EUNAVAILABLE:
		return http.StatusServiceUnavailable
	case img2vid.ECANCELED:
		return http.StatusConflict
	case EUNAUTHORIZED:
		return http.StatusUnauthorized
	case EMETHOD:
		return http.StatusMethodNotAllowed
	case ETOOMANYJOBS, ETOOMANYSTREAMS:
		return http.StatusTooManyRequests
	case ESTALLED:
		return http.StatusRequestTimeout
	case EFORBIDDEN:
		return http.StatusForbidden
	default:
		return http.StatusInternalServerError
	}
}

// errorBody returns what a client may see of err: the coded message, or a
// generic text for internal errors, whose detail only goes to the log.
func errorBody(err error) ErrorBody {
	return ErrorBody{Error: img2vid.ErrorMessage(err), Code: img2vid.ErrorCode(err), Limit: img2vid.ErrorLimit(err)}
}

// writeError answers the request with err as JSON and the status its code
// maps to. Internal errors are logged with their full chain; a busy server
// tells the client when to come back.
func (s *Server) writeError(c *gin.Context, err error) {
	body := errorBody(err)
	status := statusOf(body.Code)
	if status >= http.StatusInternalServerError && body.Code != img2vid.EBUSY && body.Code != img2vid.EUNAVAILABLE {
		s.log.Error("request failed", "method", c.Request.Method, "route", c.FullPath(), "err", err)
	} else {
		s.log.Debug("request refused", "method", c.Request.Method, "route", c.FullPath(), "status", status, "err", err)
	}
	if body.Limit != "" {
		s.metrics.refusals.WithLabelValues(body.Limit).Inc()
	}
	if body.Code == img2vid.EBUSY || statusOf(body.Code) == http.StatusTooManyRequests {
		c.Header("Retry-After", strconv.Itoa(int(s.cfg.RetryAfter/time.Second)))
	}
	if body.Code == EUNAUTHORIZED {
		c.Header("WWW-Authenticate", bearerChallenge)
	}
	c.AbortWithStatusJSON(status, body)
}

// logger returns l, or a logger that discards everything when l is nil, so
// tests and embedders need not set one.
func logger(l *slog.Logger) *slog.Logger {
	if l != nil {
		return l
	}
	return slog.New(slog.DiscardHandler)
}
