// Package fiberverifier is Fiber middleware over the verifier package: it
// requires a valid bearer token with the given scopes and puts the claims
// in the request's Locals.
package fiberverifier

import (
	"github.com/gofiber/fiber/v2"

	"github.com/signet-auth/signet/verifier"
)

// LocalsKey is the c.Locals key under which New stores *verifier.Claims.
const LocalsKey = "signet.claims"

// New returns a handler that lets a request through only with a valid
// bearer token granting every scope in scopes (with the contract's wildcard
// rule) and stores its claims (see Claims). Refusals follow RFC 6750: 401
// with WWW-Authenticate: Bearer error="invalid_token", 403 with
// error="insufficient_scope", and 503 when the revocation list is stale;
// the body is {"error","message"}.
func New(v *verifier.Verifier, scopes ...string) fiber.Handler {
	scopes = append([]string(nil), scopes...)
	return func(c *fiber.Ctx) error {
		claims, d := v.Authorize(c.UserContext(), c.Get(fiber.HeaderAuthorization), scopes...)
		if d != nil {
			if d.WWWAuthenticate != "" {
				c.Set(fiber.HeaderWWWAuthenticate, d.WWWAuthenticate)
			}
			if d.Status == fiber.StatusServiceUnavailable {
				c.Set(fiber.HeaderRetryAfter, "5")
			}
			c.Set(fiber.HeaderCacheControl, "no-store")
			return c.Status(d.Status).JSON(fiber.Map{"error": d.Code, "message": d.Message})
		}
		c.Locals(LocalsKey, claims)
		c.SetUserContext(verifier.ContextWithClaims(c.UserContext(), claims))
		return c.Next()
	}
}

// Claims returns the claims New stored for this request.
func Claims(c *fiber.Ctx) (*verifier.Claims, bool) {
	cl, ok := c.Locals(LocalsKey).(*verifier.Claims)
	return cl, ok && cl != nil
}
