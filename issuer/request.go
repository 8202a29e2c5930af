package issuer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/url"
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
// object from a script: what `curl -u user:pass -d '{...}'` sends when no
// -H 'Content-Type: application/json' is given. It holds for requests
// with Basic credentials (a web-UI session's requests stay strict) whose
// body starts with '{' (a url-encoded form never does: the encoder
// escapes it). Requests from other web origins never get here:
// refuseCrossSite has answered them already.
func formTypedJSON(c *fiber.Ctx, contentType string, body []byte) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil || mt != fiber.MIMEApplicationForm || len(body) == 0 || body[0] != '{' {
		return false
	}
	return c.Get(fiber.HeaderAuthorization) != ""
}

// refuseCrossSite is the issuer's one rule against cross-site requests
// (CSRF). A browser that once sent Basic credentials to the issuer keeps
// attaching them, also to requests that a page of another origin makes it
// send: fetch, XMLHttpRequest and sendBeacon with a raw body (so no
// Content-Type), and plain HTML forms. So a state-changing request (POST,
// PUT, PATCH, DELETE) that carries an Origin other than the issuer's own
// (that of the public URL), or Fetch Metadata saying it is not
// same-origin, is refused with 403 before anything else is read: no
// credentials are checked (a cross-site page can neither spend a user's
// failed-login budget nor learn a password is right) and no body is
// parsed. This runs for every path and every content type, bodies or none.
//
// Browsers send Origin on every POST, PUT, PATCH and DELETE (also
// same-origin ones; "null" from opaque origins) and Sec-Fetch-Site on
// every request; scripts, curl and the CLI send neither and are not
// affected. "Same site" is not enough: another origin of the same site
// (another port, another host of the same registrable domain) is another
// program and is refused too.
func (s *Server) refuseCrossSite(c *fiber.Ctx) error {
	switch c.Method() {
	case fiber.MethodPost, fiber.MethodPut, fiber.MethodPatch, fiber.MethodDelete:
	default:
		return c.Next()
	}
	h := &c.Request().Header
	for _, v := range h.PeekAll("Sec-Fetch-Site") {
		// Only browsers set it (scripts in pages cannot): same-origin, or
		// none for what the user started (a typed URL, a bookmark); any
		// other value, unknown ones included, is refused.
		switch strings.ToLower(strings.TrimSpace(string(v))) {
		case "same-origin", "none":
		default:
			return s.errCrossSite()
		}
	}
	for _, v := range h.PeekAll(fiber.HeaderOrigin) {
		if o, ok := requestOrigin(string(v)); !ok || o != s.origin {
			return s.errCrossSite()
		}
	}
	return c.Next()
}

func (s *Server) errCrossSite() error {
	return errorf(ECodeForbidden, "This request comes from a web page of another origin; the issuer accepts changes from browsers only at its own address, %s (server.public_url).", s.origin)
}

// publicOrigin is the web origin (RFC 6454) of the issuer's public URL:
// scheme, host and port, serialized as browsers send it in Origin
// (lower case, no default port, no path).
func publicOrigin(publicURL string) (string, error) {
	u, err := url.Parse(publicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("issuer: public URL %q must be an absolute http(s) URL", publicURL)
	}
	return serializeOrigin(u), nil
}

// requestOrigin parses an Origin header: scheme://host[:port] and nothing
// else. "null" (an opaque origin) and anything else malformed is not an
// origin the issuer can be.
func requestOrigin(v string) (string, bool) {
	u, err := url.Parse(strings.TrimSpace(v))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		u.Path != "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(v, "#") {
		return "", false
	}
	return serializeOrigin(u), true
}

func serializeOrigin(u *url.URL) string {
	scheme := strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Hostname())
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	port := u.Port()
	if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
		port = ""
	}
	if port != "" {
		host += ":" + port
	}
	return scheme + "://" + host
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
	return parseDuration(raw, maxTTL,
		errorf(ECodeInvalid, `expires_in must be a duration such as "72h" or a whole number of seconds.`),
		errorf(ECodeInvalid, "The lifetime must not exceed the maximum of %s.", maxTTL))
}

// parseDuration reads a duration field the way expires_in is read: a Go
// duration string, a string of digits, or a JSON integer, both counting
// seconds. A number of seconds past limit is tooLong and one far below
// zero is clamped (so that neither overflows); anything malformed is bad.
func parseDuration(raw json.RawMessage, limit time.Duration, bad, tooLong *Error) (time.Duration, error) {
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
			return 0, tooLong
		}
		return 0, bad
	}
	if secs > int64(limit/time.Second) {
		return 0, tooLong
	}
	if secs < -int64(limit/time.Second) {
		// Far below zero: clamped, so that the product cannot overflow
		// into a plausible positive duration.
		return -limit - time.Second, nil
	}
	return time.Duration(secs) * time.Second, nil
}

// grace resolves a regenerate's grace field: unset, null or zero is none
// (the old value is revoked at once); otherwise whole seconds, at least
// one, at most MaxRegenerateGrace.
func (s *Service) grace(raw json.RawMessage) (time.Duration, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, nil
	}
	limit := max(s.cfg.MaxRegenerateGrace, 0)
	tooLong := errorf(ECodeInvalid, "grace must not exceed the maximum of %s (tokens.max_regenerate_grace).", shortDuration(limit))
	if limit == 0 {
		tooLong = errorf(ECodeInvalid, "grace periods are turned off here (tokens.max_regenerate_grace is 0); regenerate without grace.")
	}
	d, err := parseDuration(raw, max(limit, time.Second), errorf(ECodeInvalid,
		`grace must be a duration such as "1h" or a whole number of seconds (0 or absent: the old value stops at once).`), tooLong)
	switch {
	case err != nil:
		return 0, err
	case d < 0:
		return 0, errorf(ECodeInvalid, "grace must not be negative.")
	case d == 0:
		return 0, nil
	case d > limit:
		return 0, tooLong
	case d < time.Second:
		return 0, errorf(ECodeInvalid, "grace must be 0 or at least one second.")
	}
	return d.Truncate(time.Second), nil
}

// shortDuration spells d without zero units: 24h, 1h30m, 90s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
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
