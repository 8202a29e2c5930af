package keys

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// testClock is an injected clock that moves only when told to.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock {
	return &testClock{t: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// openTest opens a keyring on dir with the clock and optional changes to
// the config.
func openTest(tb testing.TB, dir string, clock *testClock, mods ...func(*Config)) *Keyring {
	tb.Helper()
	cfg := Config{Dir: dir, Algorithm: "EdDSA", MaxTTL: time.Hour, PublishDelay: 10 * time.Minute, Now: clock.Now}
	for _, m := range mods {
		m(&cfg)
	}
	k, err := Open(cfg)
	if err != nil {
		tb.Fatalf("Open(%s): %v", dir, err)
	}
	return k
}

// testClaims is the payload every test signs.
const testClaims = `{"iss":"http://localhost:8080","sub":"alice","jti":"abc","exp":1900000000}`

// mustSign signs testClaims and fails the test on error.
func mustSign(tb testing.TB, k *Keyring) (token, kid string) {
	tb.Helper()
	token, kid, err := k.Sign([]byte(testClaims))
	if err != nil {
		tb.Fatalf("Sign: %v", err)
	}
	return token, kid
}

// jwksKIDs lists the kids in k's JWKS in order.
func jwksKIDs(tb testing.TB, k *Keyring) []string {
	tb.Helper()
	var set struct {
		Keys []struct {
			KID string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(k.JWKS(), &set); err != nil {
		tb.Fatalf("JWKS is not JSON: %v", err)
	}
	kids := []string{}
	for _, key := range set.Keys {
		kids = append(kids, key.KID)
	}
	return kids
}

// keyFiles lists the key file names in dir, sorted.
func keyFiles(tb testing.TB, dir string) []string {
	tb.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatalf("ReadDir(%s): %v", dir, err)
	}
	var names []string
	for _, de := range des {
		if strings.HasSuffix(de.Name(), fileSuffix) && !strings.HasPrefix(de.Name(), ".") {
			names = append(names, de.Name())
		}
	}
	slices.Sort(names)
	return names
}

// infoOf returns the KeyInfo of kid from k.List.
func infoOf(tb testing.TB, k *Keyring, kid string) KeyInfo {
	tb.Helper()
	for _, info := range k.List() {
		if info.ID == kid {
			return info
		}
	}
	tb.Fatalf("List has no key %s", kid)
	return KeyInfo{}
}

// signingKey returns the kid k signs with now.
func signingKey(tb testing.TB, k *Keyring) string {
	tb.Helper()
	_, kid := mustSign(tb, k)
	return kid
}

// readKeyFile returns the raw JSON of the key file of kid.
func readKeyFile(tb testing.TB, dir, kid string) map[string]any {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join(dir, kid+fileSuffix))
	if err != nil {
		tb.Fatalf("read key file: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		tb.Fatalf("key file is not JSON: %v", err)
	}
	return m
}

// writeKeyFileJSON writes m as the key file name in dir with mode perm.
func writeKeyFileJSON(tb testing.TB, dir, name string, m map[string]any, perm os.FileMode) {
	tb.Helper()
	data, err := json.Marshal(m)
	if err != nil {
		tb.Fatalf("marshal key file: %v", err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, perm); err != nil {
		tb.Fatalf("write %s: %v", path, err)
	}
	if err := os.Chmod(path, perm); err != nil {
		tb.Fatalf("chmod %s: %v", path, err)
	}
}

// verify calls k.Verify and answers in the shape the tests compare: the
// verified token's payload bytes and the kid.
func verify(k *Keyring, tok string) ([]byte, string, error) {
	c, err := k.Verify(tok)
	if err != nil {
		return nil, "", err
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	if err != nil {
		return nil, "", err
	}
	return payload, c.KeyID, nil
}
