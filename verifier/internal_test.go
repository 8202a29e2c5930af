package verifier

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/signet-auth/signet/revocation"
	"github.com/signet-auth/signet/token"
)

func TestTokenCacheBounded(t *testing.T) {
	tests := []struct{ size, puts int }{{32, 10}, {32, 1000}, {1, 50}, {1000, 5000}}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("size %d, %d puts", tc.size, tc.puts), func(t *testing.T) {
			c := newTokenCache(tc.size)
			for i := range tc.puts {
				c.put(fmt.Sprintf("token-%d-xyzabcde", i), &cacheEntry{claims: &Claims{}})
			}
			n := 0
			for i := range c.shards {
				n += len(c.shards[i].cur) + len(c.shards[i].old)
			}
			limit := max(tc.size, 2*cacheShards)
			if n > limit {
				t.Errorf("entries: got %d, want at most %d", n, limit)
			}
			last := fmt.Sprintf("token-%d-xyzabcde", tc.puts-1)
			if c.get(last) == nil {
				t.Errorf("most recent token: got miss, want hit")
			}
		})
	}
}

func TestParseJWKSSkipsUnusableKeys(t *testing.T) {
	jwkJSON := func(raw any, set map[string]any) json.RawMessage {
		t.Helper()
		k, err := jwk.FromRaw(raw)
		if err != nil {
			t.Fatal(err)
		}
		for name, v := range set {
			if err := k.Set(name, v); err != nil {
				t.Fatal(err)
			}
		}
		b, err := json.Marshal(k)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	smallRSA, _ := rsa.GenerateKey(rand.Reader, 1024)
	keys := []json.RawMessage{
		jwkJSON(edPub, map[string]any{"kid": "good", "alg": "EdDSA", "use": "sig"}),
		jwkJSON(edPub, map[string]any{"kid": "no-alg"}),
		jwkJSON([]byte("secret-secret-secret"), map[string]any{"kid": "oct"}),
		jwkJSON(edPub, map[string]any{"kid": "wrong-alg", "alg": "ES256"}),
		jwkJSON(edPub, map[string]any{"kid": "enc", "use": "enc"}),
		jwkJSON(edPub, map[string]any{"alg": "EdDSA"}),
		jwkJSON(&ecKey.PublicKey, map[string]any{"kid": "p384"}),
		jwkJSON(&smallRSA.PublicKey, map[string]any{"kid": "rsa1024"}),
		jwkJSON(edPub, map[string]any{"kid": "dup"}),
		jwkJSON(edPub, map[string]any{"kid": "dup"}),
		json.RawMessage(`{"kty":"OKP","crv":"Ed25519","kid":"broken","x":"!!"}`),
	}
	body, _ := json.Marshal(map[string]any{"keys": keys})
	got, skipped, err := parseJWKS(body)
	if err != nil {
		t.Fatalf("parseJWKS: %v", err)
	}
	if len(got) != 2 || got["good"] == nil || got["no-alg"] == nil || got["good"].alg != token.AlgEdDSA {
		t.Errorf("usable keys: got %v, want good and no-alg (EdDSA)", got)
	}
	// Both "dup" keys are dropped; the second one is the one reported.
	if len(skipped) != len(keys)-3 {
		t.Errorf("skipped: got %d (%q), want %d", len(skipped), skipped, len(keys)-3)
	}
	if _, _, err := parseJWKS([]byte(`{"keys":`)); err == nil {
		t.Error("truncated JWKS: got nil error, want one")
	}
}

// bareVerifier is a Verifier with state but no issuer, for the revocation
// state's own rules.
func bareVerifier(tb testing.TB) *Verifier {
	tb.Helper()
	v := &Verifier{cfg: Config{IssuerURL: "http://issuer.test"}.withDefaults(), rev: newRevState(), confirming: map[string]*confirmCall{}}
	v.log, v.hc = v.cfg.Logger, v.cfg.HTTPClient
	v.bg, v.cancel = context.WithCancel(context.Background())
	tb.Cleanup(v.cancel)
	return v
}

func TestInstallSnapshotOrder(t *testing.T) {
	now := time.Now()
	snap := func(version uint64, ids ...string) *revocation.Snapshot {
		var es []revocation.Entry
		for _, id := range ids {
			es = append(es, revocation.Entry{Kind: revocation.KindToken, TokenID: id, ExpiresAt: now.Add(time.Hour)})
		}
		return revocation.NewSnapshot(version, now, es, 0)
	}
	tests := []struct {
		name        string
		reset       bool
		second      *revocation.Snapshot
		wantVersion uint64
		wantFilter  uint64 // the installed filter's version
	}{
		{"newer replaces", false, snap(20, "a", "b", "c"), 20, 20},
		{"same version replaces", false, snap(10, "a", "b"), 10, 10},
		{"older is ignored", false, snap(5, "a"), 10, 10},
		{"older with reset replaces (a new log)", true, snap(5, "a"), 5, 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := bareVerifier(t)
			v.installSnapshot(snap(10, "a", "b"), true)
			gen := v.gen.Load()
			v.installSnapshot(tc.second, tc.reset)
			if got := v.currentVersion(); got != tc.wantVersion {
				t.Errorf("version: got %d, want %d", got, tc.wantVersion)
			}
			if got := v.rev.snap.Version; got != tc.wantFilter {
				t.Errorf("installed filter: got version %d, want %d", got, tc.wantFilter)
			}
			if tc.wantFilter == 10 && !v.rev.snap.MayContainToken("b") {
				t.Errorf("id of the kept filter: got no hit, want one")
			}
			if changed := v.gen.Load() != gen; changed != (v.rev.snap == tc.second) {
				t.Errorf("generation changed: got %v, want %v", changed, v.rev.snap == tc.second)
			}
		})
	}
}

func TestApplyEntriesGeneration(t *testing.T) {
	tok := revocation.Entry{Seq: 7, Kind: revocation.KindToken, TokenID: "t1", ExpiresAt: time.Now().Add(time.Hour)}
	tests := []struct {
		name        string
		entries     []revocation.Entry
		version     uint64
		wantVersion uint64
		wantBump    bool
	}{
		{"empty delta raises the version only", nil, 5, 5, false},
		{"an entry", []revocation.Entry{tok}, 7, 7, true},
		{"an entry and a higher delta version", []revocation.Entry{tok}, 9, 9, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := bareVerifier(t)
			gen := v.gen.Load()
			v.applyEntries(tc.entries, revocation.Cursor{Version: tc.version})
			if got := v.currentVersion(); got != tc.wantVersion {
				t.Errorf("version: got %d, want %d", got, tc.wantVersion)
			}
			if bumped := v.gen.Load() != gen; bumped != tc.wantBump {
				t.Errorf("generation bumped: got %v, want %v", bumped, tc.wantBump)
			}
		})
	}
}

func TestConfirmDenialRacingSnapshot(t *testing.T) {
	// GET /revocations/{id} answers 404; before the answer is recorded, a
	// snapshot that holds the id (revoked meanwhile) is installed. The old
	// "not revoked" must not be remembered against the new filter.
	asked, release := make(chan struct{}), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(asked)
		<-release
		http.NotFound(w, r)
	}))
	defer srv.Close()
	now := time.Now()
	snap := func(version uint64, ids ...string) *revocation.Snapshot {
		return revocation.NewSnapshotWithFilter(version, now, ids, 1, 1) // every id hits once any is in
	}
	v := bareVerifier(t)
	v.listURL, v.entryURL = srv.URL+"/revocations", srv.URL+"/revocations/{token_id}"
	v.installSnapshot(snap(1, "other"), true)

	type result struct {
		revoked bool
		err     error
	}
	done := make(chan result, 1)
	go func() {
		r, err := v.confirm(context.Background(), "tok")
		done <- result{r, err}
	}()
	<-asked
	v.installSnapshot(snap(2, "other", "tok"), true)
	close(release)
	r := <-done
	if r.err != nil || r.revoked {
		t.Fatalf("confirm: got %v, %v; want not revoked, nil (the issuer's answer)", r.revoked, r.err)
	}
	v.rev.mu.RLock()
	_, denied := v.rev.notRevoked["tok"]
	v.rev.mu.RUnlock()
	if denied {
		t.Error("404 asked about the old filter: got it remembered against the new one, want forgotten")
	}
}
