package verifiertest_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/signet-auth/signet/revocation"
	"github.com/signet-auth/signet/verifier/verifiertest"
)

func TestIssuerServesTheContract(t *testing.T) {
	iss := verifiertest.NewIssuer(t)
	tok := iss.SignToken(t, nil)
	iss.Revoke(verifiertest.TokenID(t, tok))

	get := func(path string, hdr map[string]string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, iss.URL()+path, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	tests := []struct {
		name string
		path string
		hdr  map[string]string
		want int
	}{
		{"metadata", "/.well-known/oauth-authorization-server", nil, 200},
		{"jwks", "/.well-known/jwks.json", nil, 200},
		{"snapshot", "/revocations", nil, 200},
		{"snapshot unchanged", "/revocations", map[string]string{"If-None-Match": get("/revocations", nil).Header.Get("ETag")}, 304},
		{"snapshot of a bare version", "/revocations", map[string]string{"If-None-Match": `"1"`}, 200},
		{"delta", "/revocations?since=0", nil, 200},
		{"delta from a cursor on the log", "/revocations?since=" + strings.Trim(get("/revocations", nil).Header.Get("ETag"), `"`), nil, 200},
		{"delta from a cursor of another log", "/revocations?since=1." + iss.Epoch() + ".0123456789abcdef", nil, 410},
		{"delta from a cursor of another epoch", "/revocations?since=0.0123456789abcdef", nil, 410},
		{"delta from the future", "/revocations?since=7", nil, 410},
		{"revoked id", "/revocations/" + verifiertest.TokenID(t, tok), nil, 200},
		{"unknown id", "/revocations/nope", nil, 404},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := get(tc.path, tc.hdr).StatusCode; got != tc.want {
				t.Errorf("status: got %d, want %d", got, tc.want)
			}
		})
	}
	t.Run("snapshot decodes", func(t *testing.T) {
		b, err := io.ReadAll(get("/revocations", nil).Body)
		if err != nil {
			t.Fatal(err)
		}
		s, err := revocation.Decode(b)
		if err != nil || s.Version != 1 || !s.MayContainToken(verifiertest.TokenID(t, tok)) {
			t.Errorf("got %v, %v; want version 1 containing the revoked id", s, err)
		}
	})
	t.Run("down", func(t *testing.T) {
		iss.SetDown(true)
		defer iss.SetDown(false)
		before := iss.Requests("/revocations")
		if got := get("/revocations", nil).StatusCode; got != http.StatusServiceUnavailable {
			t.Errorf("status while down: got %d, want 503", got)
		}
		if got := iss.Requests("/revocations"); got != before+1 {
			t.Errorf("request count: got %d, want %d", got, before+1)
		}
	})
}
