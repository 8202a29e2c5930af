package issuer

import (
	"errors"
	"fmt"
	"time"
)

// Error codes carried in the "error" member of every error response. Each
// maps to exactly one HTTP status in statusOf (http_error.go).
const (
	ECodeInvalid      = "invalid_request"
	ECodeInvalidToken = "invalid_token"
	ECodeUnauthorized = "unauthorized"
	ECodeForbidden    = "forbidden"
	ECodeNotFound     = "not_found"
	ECodeConflict     = "conflict"
	ECodeGone         = "gone"
	ECodeRateLimited  = "rate_limited"
	ECodeUnavailable  = "unavailable"
	ECodeInternal     = "internal"
)

// Error is an application error: a code from the ECode constants and a
// sentence for a person. Its message is shown to the client verbatim, so it
// never carries a secret or an internal detail.
type Error struct {
	Code    string
	Message string

	// retryAfter is sent as Retry-After with rate_limited errors.
	retryAfter time.Duration
}

// Error implements error.
func (e *Error) Error() string { return fmt.Sprintf("signet %s: %s", e.Code, e.Message) }

// errorf returns an *Error with code and a formatted message.
func errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// rateLimited returns a rate_limited error asking the client to come back
// after d (rounded up to whole seconds, at least one).
func rateLimited(d time.Duration, format string, args ...any) *Error {
	e := errorf(ECodeRateLimited, format, args...)
	e.retryAfter = d
	return e
}

// isInvalidToken reports whether err says a token value is malformed or
// not ours.
func isInvalidToken(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == ECodeInvalidToken
}
