package verifier_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/signet-auth/signet/verifier"
	"github.com/signet-auth/signet/verifier/verifiertest"
)

func TestMiddleware(t *testing.T) {
	iss := verifiertest.NewIssuer(t)
	v := newVerifier(t, iss, nil)
	reader := iss.SignToken(t, verifiertest.Claims{"scope": "reports:read"})
	buckets := iss.SignToken(t, verifiertest.Claims{"scope": "bucket:* reports:read"})
	admin := iss.SignToken(t, verifiertest.Claims{"scope": "*"})
	none := iss.SignToken(t, verifiertest.Claims{"scope": nil})
	revoked := iss.SignToken(t, verifiertest.Claims{"scope": "*"})
	iss.Revoke(verifiertest.TokenID(t, revoked))
	eventually(t, "revocation synced", func() bool {
		_, err := v.Verify(t.Context(), revoked)
		return err != nil
	})

	tests := []struct {
		name       string
		scopes     []string
		auth       string
		wantStatus int
		wantChal   string // prefix of WWW-Authenticate
		wantError  string
	}{
		{"no header", []string{"reports:read"}, "", 401, "Bearer", "unauthorized"},
		{"basic auth", nil, "Basic YTpi", 401, "Bearer", "unauthorized"},
		{"empty bearer", nil, "Bearer ", 401, "Bearer", "unauthorized"},
		{"garbage token", nil, "Bearer abc.def.ghi", 401, `Bearer error="invalid_token"`, "invalid_token"},
		{"revoked", nil, "Bearer " + revoked, 401, `Bearer error="invalid_token"`, "invalid_token"},
		{"exact scope", []string{"reports:read"}, "Bearer " + reader, 200, "", ""},
		{"lowercase scheme", []string{"reports:read"}, "bearer " + reader, 200, "", ""},
		{"no scope required", nil, "Bearer " + none, 200, "", ""},
		{"missing scope", []string{"reports:write"}, "Bearer " + reader, 403, `Bearer error="insufficient_scope", scope="reports:write"`, "insufficient_scope"},
		{"one of two scopes", []string{"reports:read", "bucket:x:read"}, "Bearer " + reader, 403, `Bearer error="insufficient_scope"`, "insufficient_scope"},
		{"prefix wildcard", []string{"bucket:in.c-main:write", "reports:read"}, "Bearer " + buckets, 200, "", ""},
		{"star", []string{"anything:else"}, "Bearer " + admin, 200, "", ""},
		{"token without scopes", []string{"reports:read"}, "Bearer " + none, 403, `Bearer error="insufficient_scope"`, "insufficient_scope"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got *verifier.Claims
			h := v.Middleware(tc.scopes...)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				c, ok := verifier.ClaimsFromContext(r.Context())
				if !ok {
					t.Error("ClaimsFromContext: got false, want true")
				}
				got = c
				w.WriteHeader(http.StatusOK)
			}))
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.wantStatus {
				t.Fatalf("status: got %d, want %d (body %s)", rec.Code, tc.wantStatus, rec.Body)
			}
			if tc.wantStatus == 200 {
				if got == nil || got.Subject != verifiertest.DefaultSubject {
					t.Errorf("claims in context: got %+v, want subject %q", got, verifiertest.DefaultSubject)
				}
				return
			}
			if ch := rec.Header().Get("WWW-Authenticate"); !strings.HasPrefix(ch, tc.wantChal) {
				t.Errorf("WWW-Authenticate: got %q, want prefix %q", ch, tc.wantChal)
			}
			var body struct{ Error, Message string }
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Error != tc.wantError || body.Message == "" {
				t.Errorf("body: got %s (%v), want error %q with a message", rec.Body, err, tc.wantError)
			}
			if strings.Contains(rec.Body.String(), strings.TrimPrefix(tc.auth, "Bearer ")) && len(tc.auth) > 20 {
				t.Error("body echoes the token")
			}
		})
	}
}

func TestBearerToken(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"Bearer abc", "abc", true},
		{"BEARER  abc ", "abc", true},
		{"Bearer", "", false},
		{"Token abc", "", false},
		{"", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, ok := verifier.BearerToken(tc.in)
			if got != tc.want || ok != tc.ok {
				t.Errorf("got %q, %v; want %q, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}
