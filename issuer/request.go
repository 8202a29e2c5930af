package issuer

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"
)

// Limits on labels.
const (
	maxNameLen        = 128  // characters of a token name
	maxDescriptionLen = 1024 // characters of a token description
)

// decodeBody decodes a JSON object body into v strictly: unknown fields,
// trailing data and non-objects are errors, and a body that is not JSON
// is refused even when it arrives without a JSON content type. It reports
// false (and leaves v alone) when the body is empty.
func decodeBody(c *fiber.Ctx, v any) (bool, error) {
	body := bytes.TrimSpace(c.Body())
	if len(body) == 0 {
		return false, nil
	}
	ct := c.Get(fiber.HeaderContentType)
	if formTypedJSON(c, ct, body) {
		ct = fiber.MIMEApplicationJSON
	}
	return true, decodeJSON(ct, body, v)
}

// formTypedJSON reports whether a body labelled as a form is really a JSON
// object from a script rather than a browser: what `curl -u user:pass -d
// '{...}'` sends when no -H 'Content-Type: application/json' is given.
//
// The content type is checked at all to stop cross-site requests (CSRF):
// a page on another site can make a browser POST a form, or a form-typed
// fetch, to the issuer, and a browser that cached Basic credentials for
// the issuer attaches them. Such a request is let through only when
//   - it carries Basic credentials (a session cookie has its own CSRF
//     check and stays strict),
//   - it carries no Origin header (browsers send one on every POST, PUT
//     and DELETE, cross-site or not; curl and HTTP libraries do not) and
//     no Sec-Fetch-Site other than same-origin or none, and
//   - the body starts with '{' (a browser's url-encoded form never does:
//     the encoder escapes it).
func formTypedJSON(c *fiber.Ctx, contentType string, body []byte) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil || mt != fiber.MIMEApplicationForm || len(body) == 0 || body[0] != '{' {
		return false
	}
	if c.Get(fiber.HeaderAuthorization) == "" || len(c.Request().Header.Peek(fiber.HeaderOrigin)) > 0 {
		return false
	}
	switch c.Get("Sec-Fetch-Site") {
	case "", "none", "same-origin":
		return true
	}
	return false
}

// decodeJSON is decodeBody's parser, apart for fuzzing. Its errors never
// repeat values from the body (a password may be among them).
func decodeJSON(contentType string, body []byte, v any) error {
	if contentType != "" {
		mt, _, err := mime.ParseMediaType(contentType)
		if err != nil || (mt != fiber.MIMEApplicationJSON && !strings.HasSuffix(mt, "+json")) {
			return errorf(ECodeInvalid, "The body must be JSON sent as Content-Type: application/json.")
		}
	}
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return errorf(ECodeInvalid, "The body must be a JSON object.")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errorf(ECodeInvalid, "The body must hold exactly one JSON object.")
	}
	return nil
}

// jsonError turns a decoding error into a message that names the field at
// fault, never its value.
func jsonError(err error) *Error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return errorf(ECodeInvalid, "The body is not valid JSON (error at byte %d).", syn.Offset)
	case errors.As(err, &typ):
		if typ.Field != "" {
			return errorf(ECodeInvalid, "Field %q has the wrong type: want %s.", typ.Field, jsonKind(typ.Type.String()))
		}
		return errorf(ECodeInvalid, "The body has a value of the wrong type.")
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return errorf(ECodeInvalid, "The body is not valid JSON (it ends too early).")
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name, uerr := strconv.Unquote(name)
		if uerr != nil || !utf8.ValidString(name) {
			name = "?"
		}
		return errorf(ECodeInvalid, "Unknown field %q in the body.", truncate(name, 64))
	}
	return errorf(ECodeInvalid, "The body is not valid JSON.")
}

// jsonKind names a Go type the way a JSON author thinks of it.
func jsonKind(goType string) string {
	switch {
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	case goType == "string" || goType == "*string":
		return "a string"
	case goType == "bool" || goType == "*bool":
		return "true or false"
	case strings.HasPrefix(goType, "int") || strings.HasPrefix(goType, "float"):
		return "a number"
	}
	return "another type"
}

// expiry is the lifetime part of a token request.
type expiry struct {
	// In is a duration string ("72h") or a number of seconds.
	In json.RawMessage
	// At is an RFC 3339 time.
	At *string
}

// lifetime resolves e into a lifetime in whole seconds, counted from now
// (already truncated to the second). def applies when neither is given.
func (s *Service) lifetime(e expiry, def time.Duration, now time.Time) (time.Duration, error) {
	inSet := len(e.In) > 0 && string(e.In) != "null"
	switch {
	case inSet && e.At != nil:
		return 0, errorf(ECodeInvalid, "Give expires_in or expires_at, not both.")
	case inSet:
		d, err := parseExpiresIn(e.In, s.cfg.MaxTTL)
		if err != nil {
			return 0, err
		}
		return s.checkLifetime(d)
	case e.At != nil:
		t, err := time.Parse(time.RFC3339, *e.At)
		if err != nil {
			return 0, errorf(ECodeInvalid, "expires_at must be an RFC 3339 time such as 2026-01-02T15:04:05Z.")
		}
		d := t.Truncate(time.Second).Sub(now)
		if d <= 0 {
			return 0, errorf(ECodeInvalid, "expires_at is in the past.")
		}
		return s.checkLifetime(d)
	default:
		return def, nil
	}
}

func (s *Service) checkLifetime(d time.Duration) (time.Duration, error) {
	d = d.Truncate(time.Second)
	if d <= 0 {
		return 0, errorf(ECodeInvalid, "The lifetime must be at least one second.")
	}
	if d > s.cfg.MaxTTL {
		return 0, errorf(ECodeInvalid, "The lifetime must not exceed the maximum of %s.", s.cfg.MaxTTL)
	}
	return d, nil
}

// parseExpiresIn reads expires_in: a Go duration string ("72h", "90m"), a
// string of digits, or a JSON integer, both counting seconds.
func parseExpiresIn(raw json.RawMessage, maxTTL time.Duration) (time.Duration, error) {
	bad := errorf(ECodeInvalid, `expires_in must be a duration such as "72h" or a whole number of seconds.`)
	var text string
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &text); err != nil || text == "" {
			return 0, bad
		}
		if d, err := time.ParseDuration(text); err == nil {
			return d, nil
		}
	} else {
		text = string(raw)
	}
	secs, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		if ne := (*strconv.NumError)(nil); errors.As(err, &ne) && errors.Is(ne.Err, strconv.ErrRange) {
			return 0, errorf(ECodeInvalid, "The lifetime must not exceed the maximum of %s.", maxTTL)
		}
		return 0, bad
	}
	if secs > int64(maxTTL/time.Second) {
		return 0, errorf(ECodeInvalid, "The lifetime must not exceed the maximum of %s.", maxTTL)
	}
	return time.Duration(secs) * time.Second, nil
}

// checkLabel validates a token name or description: valid UTF-8, at most
// max characters, no control characters (descriptions may hold newlines
// and tabs).
func checkLabel(field, v string, maxLen int, multiline bool) error {
	if !utf8.ValidString(v) {
		return errorf(ECodeInvalid, "%s must be valid UTF-8 text.", field)
	}
	if utf8.RuneCountInString(v) > maxLen {
		return errorf(ECodeInvalid, "%s must be at most %d characters long.", field, maxLen)
	}
	for _, r := range v {
		if unicode.IsControl(r) && !(multiline && (r == '\n' || r == '\t')) {
			return errorf(ECodeInvalid, "%s must not contain control characters.", field)
		}
	}
	return nil
}
