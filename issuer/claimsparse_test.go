package issuer

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/signet-auth/signet/keys"
	"github.com/signet-auth/signet/verifier"
)

// signWithEnvKey signs payload, any bytes at all, with the env's current
// signing key read from its key file, under the header signet writes. It
// makes the tokens an attacker who got the issuer to sign odd claims
// would hold, without going through keys.Sign's own checks.
func signWithEnvKey(tb testing.TB, e *testEnv, payload []byte) string {
	tb.Helper()
	var kid string
	for _, k := range e.keys.List() {
		if k.State == keys.StateSigning {
			kid = k.ID
		}
	}
	raw, err := os.ReadFile(filepath.Join(e.dir, "keys", kid+".json"))
	if err != nil {
		tb.Fatalf("read key file: %v", err)
	}
	var kf struct {
		Algorithm string          `json:"algorithm"`
		Key       json.RawMessage `json:"key"`
	}
	if err := json.Unmarshal(raw, &kf); err != nil {
		tb.Fatalf("key file: %v", err)
	}
	priv, err := jwk.ParseKey(kf.Key)
	if err != nil {
		tb.Fatalf("key: %v", err)
	}
	hdr := jws.NewHeaders()
	_ = hdr.Set(jws.KeyIDKey, kid)
	_ = hdr.Set(jws.TypeKey, "at+jwt")
	out, err := jws.Sign(payload, jws.WithKey(jwa.SignatureAlgorithm(kf.Algorithm), priv, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		tb.Fatalf("sign: %v", err)
	}
	return string(out)
}

// listenLoopback opens a free loopback port for an issuer whose
// PublicURL must be base.
func listenLoopback(tb testing.TB) (net.Listener, string) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	return ln, "http://" + ln.Addr().String()
}

// TestIssuerAndVerifierReadClaimsAlike signs ambiguous claims JSON with
// the issuer's real key — a duplicate jti, a JTI case variant, data after
// the object, a duplicate sub — and asks both readers of signed bytes:
// the issuer's own look-ups (GET /user-token, POST /introspect) and a
// verifier following this issuer. Both must refuse every one: a token one
// of them reads as token A and the other as token B (or not at all) lets
// a revoked token pass where the other side says it is dead.
func TestIssuerAndVerifierReadClaimsAlike(t *testing.T) {
	ln, base := listenLoopback(t)
	e := newEnv(t, func(c *Config) { c.PublicURL = base })
	go func() { _ = e.srv.App().Listener(ln) }()
	t.Cleanup(func() { _ = e.srv.App().ShutdownWithTimeout(5 * time.Second) })

	// The revocation list answers 503 until the feed has loaded.
	waitFor(t, "issuer ready", func() bool { return e.do("GET", "/readyz").status == http.StatusOK })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := verifier.New(ctx, verifier.Config{
		IssuerURL: base, Now: e.clock.Now, DisableSSE: true,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatalf("verifier.New: %v", err)
	}
	defer v.Close()

	revokedTok, revokedID := e.userToken("alice", nil)
	liveTok, liveID := e.userToken("alice", nil)
	r := e.do("POST", "/revoke", as("alice"), form("token", revokedTok))
	wantStatus(t, r, http.StatusOK)
	if _, err := v.Verify(ctx, liveTok); err != nil {
		t.Fatalf("the live token itself: got %v, want it valid", err)
	}

	// live is the live token's claims object without its closing brace.
	raw, err := base64.RawURLEncoding.DecodeString(strings.Split(liveTok, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	live := strings.TrimSuffix(string(raw), "}")
	rest := strings.TrimPrefix(string(raw), "{")
	cases := []struct{ name, payload string }{
		{"duplicate jti, the revoked id first", `{"jti":"` + revokedID + `",` + rest},
		{"duplicate jti, the revoked id last", live + `,"jti":"` + revokedID + `"}`},
		{"JTI case variant naming the revoked id", live + `,"JTI":"` + revokedID + `"}`},
		{"trailing data after the claims", live + `} {"jti":"` + revokedID + `"}`},
		{"duplicate sub", `{"sub":"bob",` + rest},
		{"duplicate sub, the real one first", live + `,"sub":"bob"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tok := signWithEnvKey(t, e, []byte(tc.payload))

			r := e.do("GET", "/user-token?token="+tok, as("alice"))
			if r.status != http.StatusBadRequest {
				var info struct {
					TokenID string `json:"token_id"`
					Revoked bool   `json:"revoked"`
				}
				_ = json.Unmarshal(r.body, &info)
				t.Errorf("GET /user-token: got %d (token_id %q, revoked %v), want 400 invalid_token", r.status, info.TokenID, info.Revoked)
			} else {
				wantError(t, r, http.StatusBadRequest, "invalid_token")
			}

			r = e.do("POST", "/introspect", as("alice"), form("token", tok))
			wantStatus(t, r, http.StatusOK)
			if got := r.object(t); got["active"] != false || len(got) != 1 {
				t.Errorf("POST /introspect: got %s, want {\"active\":false}", r.body)
			}

			c, err := v.Verify(ctx, tok)
			if !errors.Is(err, verifier.ErrMalformed) {
				id := ""
				if c != nil {
					id = c.ID
				}
				t.Errorf("verifier: got claims for %q, err %v; want ErrMalformed (live id %s, revoked id %s)", id, err, liveID, revokedID)
			}
		})
	}
}
