package interop

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// inCI reports whether CI=true: there a missing component fails the test.
func inCI() bool {
	v := os.Getenv("CI")
	return v != "" && v != "false" && v != "0"
}

// TestNode runs node/clients.test.mjs (node:test) against the issuers of
// every algorithm: jose, and jsonwebtoken with jwks-rsa. node/setup.sh
// installs them (scripts/test.sh calls it).
func TestNode(t *testing.T) {
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat("node/node_modules/jose")
	}
	if err != nil {
		if inCI() {
			t.Fatalf("node or the npm packages are missing (run interop/node/setup.sh): %v", err)
		}
		t.Skipf("node or the npm packages are missing (run interop/node/setup.sh): %v", err)
	}
	var fixtures []fixture
	var cas bytes.Buffer
	for _, alg := range algorithms {
		iss := issuerFor(t, alg)
		fixtures = append(fixtures, iss.fixture)
		cas.Write(iss.ca.PEM)
	}
	dir := t.TempDir()
	fixtureFile, caFile := filepath.Join(dir, "fixtures.json"), filepath.Join(dir, "ca.pem")
	b, _ := json.Marshal(fixtures)
	if err := os.WriteFile(fixtureFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(caFile, cas.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, "--test", "--test-reporter=spec", "clients.test.mjs")
	cmd.Dir = "node"
	cmd.Env = append(os.Environ(), "SIGNET_INTEROP_FIXTURES="+fixtureFile, "NODE_EXTRA_CA_CERTS="+caFile)
	out, err := cmd.CombinedOutput()
	t.Logf("node --test:\n%s", out)
	if err != nil {
		t.Fatalf("node --test failed: %v", err)
	}
}
