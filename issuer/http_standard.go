package issuer

import (
	"context"
	"encoding/json"
	"fmt"
	"mime"
	"slices"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
)

// formToken reads the form field token of RFC 7009 and RFC 7662 requests,
// sent url-encoded (curl -d) or as multipart (curl -F).
func formToken(c *fiber.Ctx) (string, error) {
	mt, _, err := mime.ParseMediaType(c.Get(fiber.HeaderContentType))
	if err != nil || (mt != fiber.MIMEApplicationForm && mt != fiber.MIMEMultipartForm) {
		return "", errorf(ECodeInvalid, "Send the token as a form (Content-Type: application/x-www-form-urlencoded).")
	}
	token := c.FormValue("token")
	if token == "" {
		return "", errorf(ECodeInvalid, "The token form field is required.")
	}
	return token, nil
}

// handleRevoke serves POST /revoke (RFC 7009). Success, an already revoked
// token and a token that is malformed or not ours all answer 200 with an
// empty body (§2.2); a token the caller may not revoke answers 403.
func (s *Server) handleRevoke(c *fiber.Ctx) error {
	p, err := s.caller(c)
	if err != nil {
		return err
	}
	value, err := formToken(c)
	if err != nil {
		return err
	}
	if err := s.svc.RevokeValue(c.UserContext(), p, value); err != nil {
		return err
	}
	return revoked(c)
}

// introspection is the RFC 7662 answer for an active token.
type introspection struct {
	Active    bool     `json:"active"`
	Subject   string   `json:"sub"`
	Username  string   `json:"username,omitempty"`
	Org       string   `json:"org"`
	Scope     string   `json:"scope"`
	Expiry    int64    `json:"exp"`
	IssuedAt  int64    `json:"iat"`
	NotBefore int64    `json:"nbf"`
	ID        string   `json:"jti"`
	TokenID   string   `json:"token_id"`
	TokenType string   `json:"token_type"`
	Issuer    string   `json:"iss"`
	Audience  []string `json:"aud,omitempty"`
}

// handleIntrospect serves POST /introspect (RFC 7662), for Basic
// credentials or, from a resource server, a bearer token (§2.1). Anything
// not active, not ours, or not the caller's to see answers exactly
// {"active":false}.
func (s *Server) handleIntrospect(c *fiber.Ctx) error {
	p, err := s.callerOrBearer(c)
	if err != nil {
		return err
	}
	value, err := formToken(c)
	if err != nil {
		return err
	}
	in, err := s.svc.Introspect(c.UserContext(), p, value)
	if err != nil {
		return err
	}
	if !in.Active {
		return c.JSON(fiber.Map{"active": false})
	}
	cl := in.Claims
	return c.JSON(introspection{
		Active:    true,
		Subject:   cl.Subject,
		Username:  in.Username,
		Org:       cl.Org,
		Scope:     strings.Join(cl.Scopes, " "),
		Expiry:    numericDate(cl.Expiry),
		IssuedAt:  numericDate(cl.IssuedAt),
		NotBefore: numericDate(cl.NotBefore),
		ID:        cl.ID,
		TokenID:   cl.ID,
		TokenType: cl.TokenType,
		Issuer:    cl.Issuer,
		Audience:  cl.Audience,
	})
}

// numericDate is t in RFC 7519 seconds, 0 for a claim the token lacks.
func numericDate(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

// handleJWKS serves the public keys, cacheable for five minutes and
// revalidated by ETag.
func (s *Server) handleJWKS(c *fiber.Ctx) error {
	etag := `"` + s.keys.JWKSVersion() + `"`
	c.Set(fiber.HeaderCacheControl, "public, max-age=300")
	c.Set(fiber.HeaderETag, etag)
	if etagMatches(c.Get(fiber.HeaderIfNoneMatch), etag) {
		return c.SendStatus(fiber.StatusNotModified)
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Send(s.keys.JWKS())
}

// serverMetadata is the RFC 8414 document.
func (s *Server) serverMetadata() map[string]any {
	u := s.issuer
	return map[string]any{
		"issuer":                 u,
		"jwks_uri":               u + "/.well-known/jwks.json",
		"revocation_endpoint":    u + "/revoke",
		"introspection_endpoint": u + "/introspect",
		"revocation_list_uri":    u + "/revocations",
		"revocation_events_uri":  u + "/revocations/events",
		"revocation_entry_uri":   u + "/revocations/{token_id}",
		"user_token_endpoint":    u + "/user-token",
		"revocation_endpoint_auth_methods_supported":    []string{"client_secret_basic"},
		"introspection_endpoint_auth_methods_supported": []string{"client_secret_basic"},
		"response_types_supported":                      []string{},
		"grant_types_supported":                         []string{},
	}
}

// renderedMetadata is the discovery document for one version of the JWKS.
type renderedMetadata struct {
	jwksVersion string
	body        []byte
}

// metadataDocument returns the discovery document served at both
// /.well-known/oauth-authorization-server (RFC 8414) and
// /.well-known/openid-configuration (OpenID Connect Discovery 1.0), one
// source for both: serverMetadata plus
// id_token_signing_alg_values_supported, the algorithms of the keys
// published in the JWKS right now (go-oidc and the Kubernetes API server
// take their accepted algorithms from it). It is rendered again only when
// the JWKS changes.
func (s *Server) metadataDocument() ([]byte, error) {
	version := s.keys.JWKSVersion()
	if m := s.metadata.Load(); m != nil && m.jwksVersion == version {
		return m.body, nil
	}
	// The version is read before the set, so a concurrent change at worst
	// renders once more.
	algs, err := publishedAlgorithms(s.keys.JWKS())
	if err != nil {
		return nil, err
	}
	doc := s.serverMetadata()
	doc["id_token_signing_alg_values_supported"] = algs
	// What OpenID Connect Discovery requires and signet can honestly say.
	// There is no authorization or token endpoint (tokens come from POST
	// /user-token and POST /tokens), so response_types_supported stays
	// empty and no authorization_endpoint is claimed.
	doc["subject_types_supported"] = []string{"public"} // one sub for every relying party
	// Every claim a token may carry (aud only when tokens.audience is set).
	doc["claims_supported"] = []string{"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "org", "token_type", "scope"}
	body, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("issuer: render metadata: %w", err)
	}
	s.metadata.Store(&renderedMetadata{jwksVersion: version, body: body})
	return body, nil
}

// publishedAlgorithms lists the distinct alg values of a JWKS, newest key
// first.
func publishedAlgorithms(jwks []byte) ([]string, error) {
	var set struct {
		Keys []struct {
			Alg string `json:"alg"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(jwks, &set); err != nil {
		return nil, fmt.Errorf("issuer: read the JWKS: %w", err)
	}
	algs := []string{}
	for _, k := range set.Keys {
		if k.Alg != "" && !slices.Contains(algs, k.Alg) {
			algs = append(algs, k.Alg)
		}
	}
	return algs, nil
}

// handleMetadata serves the discovery document. It is cacheable as long
// as the JWKS (five minutes): the algorithms change with the keys.
func (s *Server) handleMetadata(c *fiber.Ctx) error {
	body, err := s.metadataDocument()
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "public, max-age=300")
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Send(body)
}

func (s *Server) handleHealthz(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{"status": "ok"})
}

// readyTimeout bounds the readiness checks.
const readyTimeout = 2 * time.Second

// handleReadyz reports whether the store answers, a signing key is loaded
// and the revocation list is loaded: 200, or 503 naming what is not ready
// (the reasons themselves go to the log).
func (s *Server) handleReadyz(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), readyTimeout)
	defer cancel()
	checks := map[string]string{}
	ready := true
	check := func(name string, err error) {
		if err != nil {
			ready = false
			checks[name] = "unavailable"
			s.log.Warn("not ready", "check", name, "err", err)
			return
		}
		checks[name] = "ok"
	}
	check("store", s.st.Ping(ctx))
	check("keys", s.keys.Ready())
	check("revocations", s.feed.ready())
	if !ready {
		return c.Status(fiber.StatusServiceUnavailable).JSON(fiber.Map{"status": "unavailable", "checks": checks})
	}
	return c.JSON(fiber.Map{"status": "ok", "checks": checks})
}

// revoked answers a revocation request: 200 with an empty body (RFC 7009
// §2.2).
func revoked(c *fiber.Ctx) error {
	c.Status(fiber.StatusOK)
	c.Response().ResetBody()
	return nil
}
