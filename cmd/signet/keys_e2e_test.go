package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/lestrrat-go/jwx/v2/jws"
)

// revokeKey runs `signet keys revoke` for kid with e's configuration. A
// kid may start with '-' (one in 64 does), so it goes after "--", with the
// config flag before it.
func (e *env) revokeKey(kid string) ([]byte, error) {
	cmd := exec.Command(signetBinary(e.tb), "keys", "revoke", "--config", e.config, "--", kid)
	cmd.Dir = e.dir
	cmd.Env = cleanEnv()
	return cmd.CombinedOutput()
}

// kidOf returns the kid in a token's protected header.
func kidOf(tb testing.TB, token string) string {
	tb.Helper()
	msg, err := jws.Parse([]byte(token))
	if err != nil {
		tb.Fatalf("parse token: %v", err)
	}
	return msg.Signatures()[0].ProtectedHeaders().KeyID()
}

// TestKeysRevokeStopsSigningAtOnce: once `signet keys revoke` returns, no
// running issuer signs a token with the withdrawn key, not even in the
// second before it re-reads the key directory: neither the one whose
// configuration the command used nor a second replica sharing keys.dir.
// Three rounds, each with a burst of parallel requests to both sent the
// moment the command returns.
func TestKeysRevokeStopsSigningAtOnce(t *testing.T) {
	e := newEnv(t, "")
	replica := newEnv(t, "")
	replica.patchConfig(filepath.Join(replica.dir, "keys"), filepath.Join(e.dir, "keys"))
	for _, x := range []*env{e, replica} {
		if _, errOut, code := x.cli("admin-password-1\n", "user", "add", "root", "--org", "acme", "--role", "admin", "--email", "root@example.com", "--password-stdin"); code != 0 {
			t.Fatalf("user add: %s", errOut)
		}
	}
	e.start()
	replica.start()
	for round := range 3 {
		r := e.do("POST", "/user-token", "root", "admin-password-1", "")
		mustStatus(t, r, 200)
		kid := kidOf(t, r.json(t)["user-token"].(string))
		if out, err := e.revokeKey(kid); err != nil {
			t.Fatalf("round %d: keys revoke: %v: %s", round, err, out)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		var bad []string
		for i := range 8 {
			x := []*env{e, replica}[i%2]
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := x.do("POST", "/user-token", "root", "admin-password-1", "")
				if r.status != 200 {
					mu.Lock()
					bad = append(bad, "status "+strings.TrimSpace(string(r.body)))
					mu.Unlock()
					return
				}
				if got := kidOf(t, r.json(t)["user-token"].(string)); got == kid {
					mu.Lock()
					bad = append(bad, "signed by the withdrawn key "+kid)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if len(bad) > 0 {
			t.Fatalf("round %d: right after keys revoke returned: %v", round, bad)
		}
	}
}
