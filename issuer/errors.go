package issuer

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/signet-auth/signet/store"
)

// Error codes carried in the "error" member of every error response. Each
// maps to exactly one HTTP status in statusOf.
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

// statusOf is the one table from error code to HTTP status.
var statusOf = map[string]int{
	ECodeInvalid:      fiber.StatusBadRequest,
	ECodeInvalidToken: fiber.StatusBadRequest,
	ECodeUnauthorized: fiber.StatusUnauthorized,
	ECodeForbidden:    fiber.StatusForbidden,
	ECodeNotFound:     fiber.StatusNotFound,
	ECodeConflict:     fiber.StatusConflict,
	ECodeGone:         fiber.StatusGone,
	ECodeRateLimited:  fiber.StatusTooManyRequests,
	ECodeUnavailable:  fiber.StatusServiceUnavailable,
	ECodeInternal:     fiber.StatusInternalServerError,
}

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

// errorBody is the JSON shape of every error response.
type errorBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// retryAfterSeconds renders d as a Retry-After value.
func retryAfterSeconds(d time.Duration) string {
	s := int64((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return strconv.FormatInt(s, 10)
}

// classify turns any error into a code, status and message for the client;
// internal reports that the error is not one the client should see.
func classify(err error) (code string, status int, message string, appErr *Error, internal bool) {
	var e *Error
	var fe *fiber.Error
	switch {
	case errors.As(err, &e):
		status, ok := statusOf[e.Code]
		if !ok {
			return ECodeInternal, fiber.StatusInternalServerError, "An internal error occurred.", nil, true
		}
		return e.Code, status, e.Message, e, false
	case errors.Is(err, store.ErrNotFound):
		return ECodeNotFound, fiber.StatusNotFound, "Not found.", nil, false
	case errors.Is(err, store.ErrConflict):
		return ECodeConflict, fiber.StatusConflict, "The change conflicts with the current state; reload and try again.", nil, false
	case errors.As(err, &fe):
		return classifyFiber(fe)
	default:
		return ECodeInternal, fiber.StatusInternalServerError, "An internal error occurred.", nil, true
	}
}

// classifyFiber maps Fiber's own errors (unknown route, wrong method, body
// too large, malformed request) onto the same shape, keeping their status.
func classifyFiber(fe *fiber.Error) (string, int, string, *Error, bool) {
	switch fe.Code {
	case fiber.StatusNotFound:
		return ECodeNotFound, fe.Code, "No such endpoint.", nil, false
	case fiber.StatusMethodNotAllowed:
		return ECodeInvalid, fe.Code, "This endpoint does not support that method.", nil, false
	case fiber.StatusRequestEntityTooLarge:
		return ECodeInvalid, fe.Code, "The request body is too large.", nil, false
	case fiber.StatusRequestHeaderFieldsTooLarge:
		return ECodeInvalid, fe.Code, "The request headers are too large.", nil, false
	case fiber.StatusRequestTimeout:
		return ECodeInvalid, fe.Code, "The request took too long to arrive.", nil, false
	case fiber.StatusUnauthorized:
		return ECodeUnauthorized, fe.Code, "Authentication is required.", nil, false
	case fiber.StatusForbidden:
		return ECodeForbidden, fe.Code, "Forbidden.", nil, false
	case fiber.StatusTooManyRequests:
		return ECodeRateLimited, fe.Code, "Too many requests.", nil, false
	case fiber.StatusServiceUnavailable:
		return ECodeUnavailable, fe.Code, "The service is not available right now.", nil, false
	}
	if fe.Code >= 400 && fe.Code < 500 {
		// Fiber's messages for client errors name the problem, never a
		// secret of ours; keep the text generic anyway.
		return ECodeInvalid, fe.Code, "The request is malformed.", nil, false
	}
	return ECodeInternal, fiber.StatusInternalServerError, "An internal error occurred.", nil, true
}

// handleError is the Fiber ErrorHandler: it renders every error as
// {"error","message"}, logs internal ones without exposing them, and adds
// WWW-Authenticate to 401 and Retry-After to 429 answers.
func (s *Server) handleError(c *fiber.Ctx, err error) error {
	code, status, message, appErr, internal := classify(err)
	if internal {
		// The route pattern, not the URL: query strings may carry tokens.
		s.log.Error("request failed", "method", c.Method(), "route", c.Route().Path, "err", err)
	}
	switch status {
	case fiber.StatusUnauthorized:
		c.Set(fiber.HeaderWWWAuthenticate, `Basic realm="signet"`)
	case fiber.StatusTooManyRequests:
		if appErr != nil && appErr.retryAfter > 0 {
			c.Set(fiber.HeaderRetryAfter, retryAfterSeconds(appErr.retryAfter))
		} else if len(c.Response().Header.Peek(fiber.HeaderRetryAfter)) == 0 {
			c.Set(fiber.HeaderRetryAfter, "1")
		}
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	// A streamed body set before the error must not survive.
	c.Response().ResetBody()
	return c.Status(status).JSON(errorBody{Error: code, Message: message})
}
