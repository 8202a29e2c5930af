package interop

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/golang-jwt/jwt/v5"
	"github.com/lestrrat-go/jwx/v2/jwk"
	jwxjwt "github.com/lestrrat-go/jwx/v2/jwt"
)

// verifyFunc is one client's verdict on a token: nil when it accepts it.
type verifyFunc func(ctx context.Context, token string) error

// expectations are what a client does with the fixture. Every case not
// listed as a gap must be refused; a gap is a forgery the library is known
// to accept, with the reason (checked, so the docs stay true).
type expectations struct {
	// refusesAlg: the client cannot verify this algorithm at all.
	refusesAlg map[string]string
	// gaps: forgeries the library accepts, by name, with why.
	gaps map[string]string
}

// checkClient holds one client, created after the key withdrawal, to the
// fixture of f: the valid token passes; the token of the withdrawn key and
// every forgery fail; the revoked token passes, because a generic JWT
// library cannot see signet's revocation list.
func checkClient(t *testing.T, f fixture, verify verifyFunc, exp expectations) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if why, ok := exp.refusesAlg[f.Alg]; ok {
		if err := verify(ctx, f.Valid); err == nil {
			t.Fatalf("valid %s token: accepted, want refused (%s)", f.Alg, why)
		} else {
			t.Logf("valid %s token: refused as expected (%s): %v", f.Alg, why, err)
		}
		return
	}
	if err := verify(ctx, f.Valid); err != nil {
		t.Fatalf("valid %s token: refused: %v", f.Alg, err)
	}
	if err := verify(ctx, f.WithdrawnKey); err == nil {
		t.Errorf("token of the withdrawn key: accepted, want refused")
	}
	if err := verify(ctx, f.RevokedToken); err != nil {
		t.Errorf("revoked token: refused (%v); a generic JWT library cannot see the revocation list, so the docs say it accepts it", err)
	}
	for _, fg := range f.Forged {
		err := verify(ctx, fg.Token)
		why, gap := exp.gaps[fg.Name]
		switch {
		case gap && err == nil:
			t.Logf("forgery %q: accepted, a known gap of this library: %s", fg.Name, why)
		case gap:
			t.Errorf("forgery %q: refused (%v), but the docs list it as accepted (%s): update them", fg.Name, err, why)
		case err == nil:
			t.Errorf("forgery %q: accepted, want refused", fg.Name)
		}
	}
}

// discoveredJWKSURI reads jwks_uri from the issuer's OpenID configuration,
// the way clients without discovery support are set up.
func discoveredJWKSURI(ctx context.Context, iss *issuer) (string, error) {
	resp, err := iss.httpClient().Get(iss.url + "/.well-known/openid-configuration")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var doc struct {
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		return "", err
	}
	return doc.JWKSURI, nil
}

// TestGoOIDC: github.com/coreos/go-oidc/v3 through discovery
// (NewProvider), with no algorithm configured: it takes them from
// id_token_signing_alg_values_supported.
func TestGoOIDC(t *testing.T) {
	for _, alg := range algorithms {
		t.Run(alg, func(t *testing.T) {
			iss := issuerFor(t, alg)
			ctx := oidc.ClientContext(context.Background(), iss.httpClient())
			p, err := oidc.NewProvider(ctx, iss.url)
			if err != nil {
				t.Fatalf("NewProvider: %v", err)
			}
			var meta struct {
				Algs []string `json:"id_token_signing_alg_values_supported"`
			}
			if err := p.Claims(&meta); err != nil || !slices.Equal(meta.Algs, []string{alg}) {
				t.Errorf("discovered algorithms %v (%v), want [%s]", meta.Algs, err, alg)
			}
			v := p.Verifier(&oidc.Config{ClientID: audience})
			checkClient(t, iss.fixture, func(ctx context.Context, token string) error {
				_, err := v.Verify(oidc.ClientContext(ctx, iss.httpClient()), token)
				return err
			}, expectations{})
		})
	}
}

// TestJWX: github.com/lestrrat-go/jwx/v2 with the key set from jwks_uri.
func TestJWX(t *testing.T) {
	for _, alg := range algorithms {
		t.Run(alg, func(t *testing.T) {
			iss := issuerFor(t, alg)
			ctx := context.Background()
			uri, err := discoveredJWKSURI(ctx, iss)
			if err != nil {
				t.Fatal(err)
			}
			set, err := jwk.Fetch(ctx, uri, jwk.WithHTTPClient(iss.httpClient()))
			if err != nil {
				t.Fatalf("jwk.Fetch: %v", err)
			}
			checkClient(t, iss.fixture, func(_ context.Context, token string) error {
				_, err := jwxjwt.Parse([]byte(token), jwxjwt.WithKeySet(set), jwxjwt.WithValidate(true),
					jwxjwt.WithIssuer(iss.url), jwxjwt.WithAudience(audience))
				return err
			}, expectations{gaps: map[string]string{
				forgedCrit: "jwx v2 does not check crit; only a holder of the private key can make such a token",
			}})
		})
	}
}

// TestGolangJWT: github.com/golang-jwt/jwt/v5 with the JWKS key func of
// github.com/MicahParks/keyfunc/v3.
func TestGolangJWT(t *testing.T) {
	for _, alg := range algorithms {
		t.Run(alg, func(t *testing.T) {
			iss := issuerFor(t, alg)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			uri, err := discoveredJWKSURI(ctx, iss)
			if err != nil {
				t.Fatal(err)
			}
			kf, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{uri}, keyfunc.Override{Client: iss.httpClient()})
			if err != nil {
				t.Fatalf("keyfunc: %v", err)
			}
			checkClient(t, iss.fixture, func(_ context.Context, token string) error {
				_, err := jwt.Parse(token, kf.Keyfunc,
					jwt.WithValidMethods([]string{"ES256", "RS256", "EdDSA"}),
					jwt.WithIssuer(iss.url), jwt.WithAudience(audience), jwt.WithExpirationRequired())
				return err
			}, expectations{gaps: map[string]string{
				forgedCrit: "golang-jwt does not check crit; only a holder of the private key can make such a token",
			}})
		})
	}
}

// errRefused is a client's answer "not authenticated" without an error.
var errRefused = errors.New("not authenticated")
