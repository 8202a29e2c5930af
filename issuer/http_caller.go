package issuer

import (
	"strings"

	"github.com/gofiber/fiber/v2"
)

// caller is how every handler learns who is calling: authenticate
// (auth.go: Basic credentials, or the web UI's session cookie) produces the
// principal; caller adds the client address the Service audits.
func (s *Server) caller(c *fiber.Ctx) (*Principal, error) {
	p, err := s.authenticate(c)
	if err != nil {
		return nil, err
	}
	p.Client = s.clientIP(c)
	return p, nil
}

// callerOrBearer is caller for POST /introspect, which also takes an
// administrative token as a bearer (RFC 7662 §2.1). A bearer costs a
// signature check and a store read, never a password hash.
func (s *Server) callerOrBearer(c *fiber.Ctx) (*Principal, error) {
	scheme, value, _ := strings.Cut(c.Get(fiber.HeaderAuthorization), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return s.caller(c)
	}
	setChallenge(c, challengeBearer)
	value = strings.Trim(value, " ")
	if value == "" || strings.ContainsAny(value, " \t") {
		return nil, errorf(ECodeUnauthorized, "The Authorization header does not hold a bearer token.")
	}
	p, err := s.svc.BearerPrincipal(c.UserContext(), value)
	if err != nil {
		return nil, err
	}
	p.Client = s.clientIP(c)
	return p, nil
}
