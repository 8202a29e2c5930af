package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func writeFile(tb testing.TB, body string) string {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		tb.Fatal(err)
	}
	return p
}

func TestDefaultsMatchContract(t *testing.T) {
	t.Chdir(t.TempDir()) // no ./config.yaml
	c, err := Load("", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"server.listen", c.Server.Listen, ":8080"},
		{"server.public_url", c.Server.PublicURL, "http://localhost:8080"},
		{"store.driver", c.Store.Driver, "sqlite"},
		{"store.dsn", c.Store.DSN, "data/signet.db"},
		{"keys.dir", c.Keys.Dir, "keys"},
		{"keys.algorithm", c.Keys.Algorithm, "ES256"},
		{"keys.publish_delay", c.Keys.PublishDelay, 10 * time.Minute},
		{"tokens.user_token_ttl", c.Tokens.UserTokenTTL, 24 * time.Hour},
		{"tokens.max_ttl", c.Tokens.MaxTTL, 8760 * time.Hour},
		{"tokens.default_ttl", c.Tokens.DefaultTTL, 8760 * time.Hour},
		{"tokens.max_regenerate_grace", c.Tokens.MaxRegenerateGrace, 24 * time.Hour},
		{"tokens.personal_tokens", c.Tokens.PersonalTokens, true},
		{"revocation.false_positive_rate", c.Revocation.FalsePositiveRate, 1e-6},
	}
	for _, tc := range checks {
		if tc.got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	if got := c.Roles["admin"].Scopes; len(got) != 1 || got[0] != "*" {
		t.Errorf("roles.admin.scopes: got %v, want [*]", got)
	}
}

func TestRepositoryConfigLoads(t *testing.T) {
	c, err := Load("../config.yaml", nil, nil)
	if err != nil {
		t.Fatalf("the shipped config.yaml does not load: %v", err)
	}
	if c.Server.Listen != ":8080" || c.Store.Driver != "sqlite" || c.Keys.Dir != "keys" {
		t.Fatalf("shipped config.yaml differs from the contract defaults: %+v", c)
	}
}

func TestPrecedenceFileEnvFlag(t *testing.T) {
	p := writeFile(t, "server:\n  listen: \":7000\"\n  public_url: https://file.example\ntokens:\n  max_ttl: 48h\n  user_token_ttl: 1h\n  default_ttl: 2h\npresets:\n  extended: [\"reports:read\", \"bucket:*\"]\nroles:\n  member:\n    scopes: [\"reports:*\"]\n")
	t.Setenv("SIGNET_SERVER_LISTEN", ":7001")
	t.Setenv("SIGNET_KEYS_ALGORITHM", "ES256")
	t.Setenv("SIGNET_TOKENS_USER_TOKEN_TTL", "2h")
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	fs.String("listen", "", "")
	fs.String("public-url", "", "")
	if err := fs.Parse([]string{"--listen", ":7002"}); err != nil {
		t.Fatal(err)
	}
	c, err := Load(p, fs, map[string]string{"server.listen": "listen", "server.public_url": "public-url"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.Listen != ":7002" {
		t.Errorf("flag should win: got %q, want :7002", c.Server.Listen)
	}
	if c.Server.PublicURL != "https://file.example" {
		t.Errorf("an unset flag must not override the file: got %q", c.Server.PublicURL)
	}
	if c.Keys.Algorithm != "ES256" {
		t.Errorf("env should override the default: got %q", c.Keys.Algorithm)
	}
	if c.Tokens.UserTokenTTL != 2*time.Hour || c.Tokens.MaxTTL != 48*time.Hour {
		t.Errorf("ttl: got user %s max %s, want 2h 48h", c.Tokens.UserTokenTTL, c.Tokens.MaxTTL)
	}
	if got := c.Presets["extended"]; len(got) != 2 || got[1] != "bucket:*" {
		t.Errorf("presets.extended: got %v", got)
	}
	if got := c.Roles["member"].Scopes; len(got) != 1 || got[0] != "reports:*" {
		t.Errorf("roles.member: got %v", got)
	}
}

func TestValidationErrors(t *testing.T) {
	cases := []struct {
		name, yaml, want string
	}{
		{"driver", "store:\n  driver: mysql\n", "store.driver"},
		{"algorithm", "keys:\n  algorithm: HS256\n", "keys.algorithm"},
		{"user ttl over max", "tokens:\n  user_token_ttl: 100h\n  max_ttl: 10h\n  default_ttl: 1h\n", "tokens.user_token_ttl"},
		{"fp rate", "revocation:\n  false_positive_rate: 2\n", "false_positive_rate"},
		{"public url", "server:\n  public_url: localhost\n", "server.public_url"},
		{"password length", "security:\n  min_password_length: 4\n", "min_password_length"},
		{"unknown role", "roles:\n  owner:\n    scopes: [\"*\"]\n", "roles.owner"},
		{"bad preset scope", "presets:\n  x: [\"a b\"]\n", "presets.x"},
		{"unknown default preset", "presets:\n  x: [\"a\"]\nui:\n  default_preset: y\n", "ui.default_preset"},
		{"bad duration", "keys:\n  publish_delay: soon\n", "config"},
		{"broken yaml", "server: [\n", "config"},
		{"log level", "log:\n  level: degub\n", "log.level"},
		{"log format", "log:\n  format: xml\n", "log.format"},
		{"negative grace", "tokens:\n  max_regenerate_grace: -1h\n", "tokens.max_regenerate_grace"},
		{"tls cert without key", "server:\n  tls_cert_file: /etc/tls.crt\n", "server.tls_key_file"},
		{"tls key without cert", "server:\n  tls_key_file: /etc/tls.key\n", "server.tls_cert_file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(writeFile(t, tc.yaml), nil, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error naming %q", err, tc.want)
			}
		})
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml"), nil, nil); err == nil {
		t.Fatal("a named config file that does not exist must be an error")
	}
}

// TestMaxRegenerateGrace: the file and SIGNET_TOKENS_MAX_REGENERATE_GRACE
// set the bound; 0 (grace periods off) is valid.
func TestMaxRegenerateGrace(t *testing.T) {
	c, err := Load(writeFile(t, "tokens:\n  max_regenerate_grace: 2s\n"), nil, nil)
	if err != nil || c.Tokens.MaxRegenerateGrace != 2*time.Second {
		t.Fatalf("file: got %v, %v; want 2s", c.Tokens.MaxRegenerateGrace, err)
	}
	t.Setenv("SIGNET_TOKENS_MAX_REGENERATE_GRACE", "0s")
	c, err = Load(writeFile(t, "tokens:\n  max_regenerate_grace: 2s\n"), nil, nil)
	if err != nil || c.Tokens.MaxRegenerateGrace != 0 {
		t.Fatalf("environment: got %v, %v; want 0 (off)", c.Tokens.MaxRegenerateGrace, err)
	}
}

// TestShippedConfigFollowsLowerMaxTTL: with the repository's config.yaml,
// SIGNET_TOKENS_MAX_TTL alone is enough to shorten every lifetime.
func TestShippedConfigFollowsLowerMaxTTL(t *testing.T) {
	t.Setenv("SIGNET_TOKENS_MAX_TTL", "12h")
	c, err := Load("../config.yaml", nil, nil)
	if err != nil {
		t.Fatalf("config.yaml with SIGNET_TOKENS_MAX_TTL=12h: %v", err)
	}
	if c.Tokens.UserTokenTTL != 12*time.Hour || c.Tokens.DefaultTTL != 12*time.Hour {
		t.Fatalf("got user_token_ttl %s default_ttl %s, want 12h and 12h", c.Tokens.UserTokenTTL, c.Tokens.DefaultTTL)
	}
}

func TestLowerMaxTTLCapsUnsetLifetimes(t *testing.T) {
	t.Setenv("SIGNET_TOKENS_MAX_TTL", "48h")
	c, err := Load(writeFile(t, "log:\n  level: info\n"), nil, nil)
	if err != nil {
		t.Fatalf("a lower max_ttl alone must load: %v", err)
	}
	if c.Tokens.DefaultTTL != 48*time.Hour || c.Tokens.UserTokenTTL != 24*time.Hour {
		t.Fatalf("got default_ttl %s user_token_ttl %s, want 48h and 24h", c.Tokens.DefaultTTL, c.Tokens.UserTokenTTL)
	}
	// An explicit lifetime above the maximum is still an error.
	if _, err := Load(writeFile(t, "tokens:\n  default_ttl: 100h\n"), nil, nil); err == nil || !strings.Contains(err.Error(), "default_ttl") {
		t.Fatalf("explicit default_ttl over max_ttl: got %v, want an error", err)
	}
	t.Setenv("SIGNET_TOKENS_MAX_TTL", "1h")
	c, err = Load(writeFile(t, "log:\n  level: info\n"), nil, nil)
	if err != nil || c.Tokens.UserTokenTTL != time.Hour {
		t.Fatalf("max_ttl 1h: got %v, user_token_ttl %s; want 1h", err, c.Tokens.UserTokenTTL)
	}
}

func TestGateKeys(t *testing.T) {
	t.Chdir(t.TempDir()) // no ./config.yaml
	c, err := Load("", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Gate.Listen != "127.0.0.1:4181" || c.Gate.MaxStaleness != 10*time.Minute || c.Gate.FailOpen || c.Gate.IssuerURL != "" || c.Gate.Audience != "" {
		t.Errorf("gate defaults: got %+v, want listen 127.0.0.1:4181, max_staleness 10m, fail_open false, no issuer_url or audience", c.Gate)
	}

	p := writeFile(t, "gate:\n  listen: \"127.0.0.1:5000\"\n  issuer_url: https://file.example\n  audience: file-aud\n  max_staleness: 2m\n")
	t.Setenv("SIGNET_GATE_AUDIENCE", "env-aud")
	t.Setenv("SIGNET_GATE_FAIL_OPEN", "true")
	t.Setenv("SIGNET_GATE_MAX_STALENESS", "90s")
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	fs.String("listen", "", "")
	fs.String("issuer", "", "")
	if err := fs.Parse([]string{"--issuer", "https://flag.example"}); err != nil {
		t.Fatal(err)
	}
	c, err = Load(p, fs, map[string]string{"gate.listen": "listen", "gate.issuer_url": "issuer"})
	if err != nil {
		t.Fatal(err)
	}
	want := Gate{Listen: "127.0.0.1:5000", IssuerURL: "https://flag.example", Audience: "env-aud", MaxStaleness: 90 * time.Second, FailOpen: true}
	if c.Gate != want {
		t.Errorf("gate: got %+v, want %+v", c.Gate, want)
	}
}

func TestGateValidation(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"issuer url", "gate:\n  issuer_url: auth.example.com\n", "gate.issuer_url"},
		{"zero staleness", "gate:\n  max_staleness: 0s\n", "gate.max_staleness"},
		{"negative staleness", "gate:\n  max_staleness: -1m\n", "gate.max_staleness"},
		{"empty listen", "gate:\n  listen: \"\"\n", "gate.listen"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(writeFile(t, tc.yaml), nil, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error naming %q", err, tc.want)
			}
		})
	}
}
