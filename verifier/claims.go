package verifier

import "github.com/signet-auth/signet/token"

// Claims are the verified claims of a signet access token: the token
// package's one definition (iss, sub, aud, iat, nbf, exp, jti, org,
// token_type, scope split into Scopes, and the kid that signed it), with
// HasScope and HasScopes applying signet's scope-pattern rule ("bucket:*"
// grants "bucket:in.c-main:read"; "*" grants everything; no scopes grant
// nothing). The slices are shared with the verifier's cache: treat them as
// read-only. As JSON, Claims are the token's wire form.
type Claims = token.Claims

// cloneClaims returns a shallow copy for handing to a caller.
func cloneClaims(c *Claims) *Claims {
	cp := *c
	return &cp
}
