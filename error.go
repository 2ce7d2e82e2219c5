package img2vid

import (
	"context"
	"errors"
	"fmt"
)

// Error codes. Each names a kind of failure; the HTTP layer maps codes to
// statuses in one function (server.statusOf) and the command maps them to
// exit statuses in one table (exitStatus in cmd/img2vid).
const (
	EINVALID     = "invalid"     // the input or an option is wrong; the user can fix it
	ENOTFOUND    = "not_found"   // a job, file or model does not exist
	ETOOLARGE    = "too_large"   // a limit was exceeded
	EBUSY        = "busy"        // no capacity right now; try again later
	EUNAVAILABLE = "unavailable" // a dependency (ffmpeg, a model, the runtime) cannot be used
	ECANCELED    = "canceled"    // the job was canceled
	EINTERNAL    = "internal"    // a bug or an environment fault; details go to the log only
)

// Error is an error that carries a code and a message safe to show users.
type Error struct {
	Code    string
	Message string
	// Limit names the limit that was broken (one of the Limit constants),
	// when one was.
	Limit string
	// Err is the underlying cause, kept for errors.Is/As and for logs.
	Err error
}

// Error returns the user-facing message.
func (e *Error) Error() string { return e.Message }

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code. The message is formatted as
// fmt.Errorf would; a %w verb also records the wrapped error as the cause.
func Errorf(code, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	return &Error{Code: code, Message: err.Error(), Err: errors.Unwrap(err)}
}

// ErrorCode returns the code of the first *Error in err's chain. Context
// cancellation maps to ECANCELED, and anything unknown to EINTERNAL.
func ErrorCode(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Code
	case errors.Is(err, context.Canceled):
		return ECANCELED
	default:
		return EINTERNAL
	}
}

// ErrorMessage returns a message that is safe to show users: the message of
// a coded error, or a generic text for internal ones, whose detail belongs in
// the log.
func ErrorMessage(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e) && e.Code != EINTERNAL:
		return e.Message
	case errors.Is(err, context.Canceled):
		return "canceled"
	default:
		return "internal error"
	}
}

// ErrorLimit returns the name of the limit err broke, or "" when it broke
// none.
func ErrorLimit(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Limit
	}
	return ""
}
