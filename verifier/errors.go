package verifier

import (
	"errors"
	"fmt"
	"time"

	"github.com/signet-auth/signet/token"
)

// Errors returned (wrapped, with detail) by Verify; test them with
// errors.Is. Every message starts with "verifier: " and never contains the
// token itself.
var (
	// ErrExpired means the token's exp has passed (beyond the leeway).
	// The error is an *ExpiredError carrying the expiry.
	ErrExpired = errors.New("verifier: token expired")
	// ErrNotYetValid means nbf or iat lies in the future (beyond the leeway).
	ErrNotYetValid = errors.New("verifier: token not yet valid")
	// ErrRevoked means the revocation list withdraws the token: by its id,
	// by a cut-off for its subject, or because its signing key was withdrawn.
	ErrRevoked = errors.New("verifier: token revoked")
	// ErrBadSignature means the signature does not verify with the key the
	// token names.
	ErrBadSignature = errors.New("verifier: bad signature")
	// ErrUnknownKey means no published key has the token's kid, even after
	// a (rate-limited) refresh of the key set.
	ErrUnknownKey = errors.New("verifier: unknown signing key")
	// ErrMalformed means the token is not a well-formed JWS/JWT of the
	// shape signet issues (including forbidden header parameters such as
	// jku, x5u, jwk, x5c or crit, and a typ other than at+jwt).
	ErrMalformed = errors.New("verifier: malformed token")
	// ErrStale means the revocation list could not be synced for longer
	// than Config.MaxStaleness (or a filter hit could not be confirmed),
	// and Config.FailOpen is off.
	ErrStale = errors.New("verifier: revocation list is stale")
	// ErrIssuer means the token's iss is not the configured issuer.
	ErrIssuer = errors.New("verifier: wrong issuer")
	// ErrAudience means Config.Audience is set and the token's aud does not
	// contain it.
	ErrAudience = errors.New("verifier: wrong audience")
	// ErrAlgorithm means the token's alg is not one signet uses (none and
	// HMAC never are) or is not the algorithm of the key it names.
	ErrAlgorithm = errors.New("verifier: algorithm not accepted")
)

// ExpiredError is returned for an expired token; errors.Is(err, ErrExpired)
// holds for it.
type ExpiredError struct {
	// Expiry is the token's exp claim.
	Expiry time.Time
}

// Error implements error.
func (e *ExpiredError) Error() string {
	return fmt.Sprintf("verifier: token expired at %s", e.Expiry.UTC().Format(time.RFC3339))
}

// Is makes errors.Is(err, ErrExpired) hold.
func (e *ExpiredError) Is(target error) bool { return target == ErrExpired }

// clip shortens attacker-controlled text before it goes into an error.
func clip(s string) string { return token.Clip(s) }
