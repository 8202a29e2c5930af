package issuer

import (
	"errors"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/signet-auth/signet/store"
)

// The one error renderer: every error a handler returns is classified
// once (classify) and rendered once (handleError). Application errors
// (*Error) keep their code, mapped to a status by statusOf; the store's
// sentinels and Fiber's own errors get theirs; anything else is internal:
// logged, and answered without internals.

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

// errorBody is the JSON shape of every error response.
type errorBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// challenge is how a 401 asks for credentials. It is decided where the
// request is authenticated (caller, callerOrBearer, the web UI's session
// and sign-in) and read by handleError.
type challenge int

const (
	// challengeBasic is the default: WWW-Authenticate: Basic realm="signet".
	challengeBasic challenge = iota
	// challengeNone is for the web UI's session and sign-in.
	challengeNone
	// challengeBearer is for a bearer token (introspection).
	challengeBearer
)

// basicChallenge is the WWW-Authenticate value of a Basic 401.
const basicChallenge = `Basic realm="signet"`

// challengeLocal is the request-local key holding the challenge.
const challengeLocal = "signet.challenge"

// setChallenge records how a 401 to this request asks for credentials.
func setChallenge(c *fiber.Ctx, ch challenge) { c.Locals(challengeLocal, ch) }

// challengeOf is the challenge recorded for this request (Basic when none).
func challengeOf(c *fiber.Ctx) challenge {
	ch, _ := c.Locals(challengeLocal).(challenge)
	return ch
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

// handleError is the one error renderer (and Fiber's ErrorHandler): it
// classifies err once, renders it as {"error","message"}, logs internal
// errors without exposing them, challenges a 401 the way the request was
// authenticated (challengeOf), and adds Retry-After to 429 answers.
func (s *Server) handleError(c *fiber.Ctx, err error) error {
	code, status, message, appErr, internal := classify(err)
	if internal {
		// The route pattern, not the URL: query strings may carry tokens.
		s.log.Error("request failed", "method", c.Method(), "route", c.Route().Path, "err", err)
	}
	c.Response().Header.Del(fiber.HeaderWWWAuthenticate)
	switch status {
	case fiber.StatusUnauthorized:
		switch challengeOf(c) {
		case challengeBasic:
			c.Set(fiber.HeaderWWWAuthenticate, basicChallenge)
		case challengeBearer:
			// Both schemes this endpoint takes (RFC 9110 §11.6.1).
			c.Response().Header.Add(fiber.HeaderWWWAuthenticate, basicChallenge)
			c.Response().Header.Add(fiber.HeaderWWWAuthenticate, `Bearer realm="signet", error="invalid_token"`)
		case challengeNone:
			// A web-UI session: Basic would pop up the browser's own
			// dialog, whose credentials the browser would then cache and
			// send with later requests. The page signs in by itself.
		}
	case fiber.StatusForbidden:
		if challengeOf(c) == challengeBearer {
			c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="signet", error="insufficient_scope", scope="`+introspectScope+`"`)
		}
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
