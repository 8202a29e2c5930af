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
		{"keys.dir", c.Keys.Dir, "data/keys"},
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
	if c.Server.Listen != ":8080" || c.Store.Driver != "sqlite" || c.Keys.Dir != "data/keys" {
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

// TestStrictFile: every mistake in the file is an error that names the key
// and the line it is on.
func TestStrictFile(t *testing.T) {
	cases := []struct {
		name, yaml string
		want       []string // all must appear in the error
	}{
		{"unknown top-level key", "server:\n  listen: \":8080\"\nrolse:\n  member:\n    scopes: [\"reports:*\"]\n",
			[]string{"line 3", "rolse", "unknown key"}},
		{"unknown nested key", "server:\n  public_url: http://localhost:8080\n  listne: \":9090\"\n",
			[]string{"line 3", "server.listne", "did you mean server.listen?"}},
		{"key at the wrong level", "listen: \":9090\"\n", []string{"line 1", "listen", "server.listen"}},
		{"unknown key inside a role", "roles:\n  member:\n    scope: [\"*\"]\n", []string{"line 3", "roles.member.scope"}},
		{"unknown key in a deep section", "log:\n  level: info\n  formt: json\n", []string{"line 3", "log.formt", "log.format"}},
		{"duration without a unit", "server:\n  read_timeout: 10\n", []string{"line 2", "server.read_timeout", "no unit", "10s"}},
		{"duration that is not one", "keys:\n  publish_delay: soon\n", []string{"line 2", "keys.publish_delay", "not a duration"}},
		{"poll interval too short", "revocation:\n  poll_interval: 1ms\n", []string{"line 2", "revocation.poll_interval", "out of range"}},
		{"negative ttl", "tokens:\n  max_ttl: -1h\n", []string{"line 2", "tokens.max_ttl"}},
		{"negative publish delay", "keys:\n  publish_delay: -1m\n", []string{"line 2", "keys.publish_delay", "negative"}},
		{"zero timeout", "server:\n  write_timeout: 0s\n", []string{"line 2", "server.write_timeout"}},
		{"zero shutdown timeout", "server:\n  shutdown_timeout: 0\n", []string{"line 2", "server.shutdown_timeout"}},
		{"zero keep-alive", "revocation:\n  keep_alive: 0s\n", []string{"line 2", "revocation.keep_alive"}},
		{"zero failure limit", "security:\n  max_failures_per_user: 0\n", []string{"line 2", "security.max_failures_per_user"}},
		{"bcrypt cost", "security:\n  bcrypt_cost: 40\n", []string{"line 2", "security.bcrypt_cost"}},
		{"body limit", "server:\n  body_limit: 64k\n", []string{"line 2", "server.body_limit", "whole number"}},
		{"bool", "tokens:\n  personal_tokens: yes\n", []string{"line 2", "tokens.personal_tokens", "true or false"}},
		{"list expected", "tokens:\n  audience: api.example.com\n", []string{"line 2", "tokens.audience", "list"}},
		{"section expected", "server: \":8080\"\n", []string{"line 1", "server", "section"}},
		{"value expected", "server:\n  listen:\n    port: 8080\n", []string{"line 3", "server.listen", "single value"}},
		{"empty value", "server:\n  listen:\n", []string{"line 2", "server.listen", "no value"}},
		{"key given twice", "log:\n  level: info\n  level: debug\n", []string{"line 3", "log.level", "twice", "line 2"}},
		{"bad listen address", "server:\n  listen: localhost\n", []string{"line 2", "server.listen"}},
		{"bad trusted proxy", "server:\n  trusted_proxies: [\"10.0.0.0/8\", \"proxy.internal\"]\n", []string{"line 2", "server.trusted_proxies[1]"}},
		{"rotation period too short", "keys:\n  rotation_period: 1s\n", []string{"line 2", "keys.rotation_period"}},
		{"role scope", "roles:\n  admin:\n    scopes: [\"*\"]\n  member:\n    scopes: [\"a b\"]\n", []string{"line 5", "roles.member.scopes[0]"}},
		{"syntax: indentation slip", "server:\n  listen: \":8080\"\n  public_url: http://x\n   read_timeout: 10s\nlog:\n  level: info\n",
			[]string{"line 4", "not valid YAML"}},
		{"syntax: dedent", "log:\n  level: info\n  format: text\n format: json\n", []string{"line 4", "not valid YAML"}},
		{"syntax: unclosed quote", "log:\n  level: info\nserver:\n  public_url: \"http://x\n  listen: \":1\"\n", []string{"line 4", "not valid YAML"}},
		{"syntax: tab", "log:\n  level: info\n\tformat: json\n", []string{"line 3", "not valid YAML"}},
		{"syntax: missing colon", "log:\n  level: info\nroles:\n  admin\n    scopes: [\"*\"]\n", []string{"line 5", "not valid YAML"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, tc.yaml)
			_, err := Load(path, nil, nil)
			if err == nil {
				t.Fatalf("got no error, want one naming %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("got %q, want it to contain %q", err, w)
				}
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("got %q, want it to name the file %s", err, path)
			}
		})
	}
}

// TestStrictFileAccepts: what is allowed stays allowed: names under roles
// and presets are the user's, "0" is a duration, YAML anchors and merges
// work, an empty section or file is fine.
func TestStrictFileAccepts(t *testing.T) {
	for _, body := range []string{
		"",
		"# only a comment\n",
		"server:\n",
		"presets:\n  my-own-name: [\"reports:read\"]\n  another: []\n",
		"keys:\n  publish_delay: 0\n  rotation_period: 0\n",
		"tokens:\n  audience:\n    - api.example.com\n    - reports.example.com\n",
		"base: &b\n  level: debug\n",
	} {
		_, err := Load(writeFile(t, body), nil, nil)
		if body == "base: &b\n  level: debug\n" {
			if err == nil || !strings.Contains(err.Error(), "base") {
				t.Errorf("an unknown top-level key holding an anchor: got %v, want an error", err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", body, err)
		}
	}
	c, err := Load(writeFile(t, "roles:\n  admin: &all\n    scopes: [\"*\"]\n  member:\n    <<: *all\n"), nil, nil)
	if err != nil {
		t.Fatalf("merge key: %v", err)
	}
	if got := c.Roles["member"].Scopes; len(got) != 1 || got[0] != "*" {
		t.Errorf("roles.member via merge: got %v", got)
	}
}

// TestStrictEnvironment: SIGNET_ variables get the same checks as the file;
// ones that are not configuration are left alone.
func TestStrictEnvironment(t *testing.T) {
	t.Chdir(t.TempDir())
	cases := []struct {
		name, env, value string
		want             []string // empty: accepted
	}{
		{"duration without a unit", "SIGNET_SERVER_READ_TIMEOUT", "10", []string{"SIGNET_SERVER_READ_TIMEOUT", "server.read_timeout", "no unit"}},
		{"too short", "SIGNET_REVOCATION_POLL_INTERVAL", "1ms", []string{"SIGNET_REVOCATION_POLL_INTERVAL", "revocation.poll_interval", "out of range"}},
		{"negative", "SIGNET_TOKENS_MAX_TTL", "-5h", []string{"SIGNET_TOKENS_MAX_TTL", "tokens.max_ttl"}},
		{"not a number", "SIGNET_SECURITY_BCRYPT_COST", "ten", []string{"SIGNET_SECURITY_BCRYPT_COST", "security.bcrypt_cost", "whole number"}},
		{"not a bool", "SIGNET_TOKENS_PERSONAL_TOKENS", "maybe", []string{"SIGNET_TOKENS_PERSONAL_TOKENS", "true or false"}},
		{"unknown key in a section", "SIGNET_SERVER_LISTNE", ":9090", []string{"SIGNET_SERVER_LISTNE", "did you mean SIGNET_SERVER_LISTEN?"}},
		{"roles from the environment", "SIGNET_ROLES_MEMBER_SCOPES", "*", []string{"SIGNET_ROLES_MEMBER_SCOPES", "file only"}},
		{"bad value", "SIGNET_STORE_DRIVER", "mysql", []string{"SIGNET_STORE_DRIVER", "store.driver"}},
		{"list element", "SIGNET_SERVER_TRUSTED_PROXIES", "10.0.0.0/8,nope", []string{"SIGNET_SERVER_TRUSTED_PROXIES", "server.trusted_proxies[1]"}},
		{"unknown key two slips away", "SIGNET_LOG_FORMT", "json", []string{"SIGNET_LOG_FORMT", "did you mean SIGNET_LOG_FORMAT?"}},
		{"not configuration", "SIGNET_URL", "http://example.com", nil},
		{"not configuration, in a section's name", "SIGNET_UI_CHROMIUM", "/usr/bin/chromium", nil},
		{"not configuration, far from any key", "SIGNET_SERVER_SOMETHING_ELSE", "x", nil},
		{"not configuration either", "SIGNET_PASSWORD", "x", nil},
		{"a good value", "SIGNET_REVOCATION_POLL_INTERVAL", "100ms", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(tc.env, tc.value)
			c, err := Load("", nil, nil)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("got %v, want no error", err)
				}
				if tc.env == "SIGNET_REVOCATION_POLL_INTERVAL" && c.Revocation.PollInterval != 100*time.Millisecond {
					t.Fatalf("poll_interval: got %s, want 100ms", c.Revocation.PollInterval)
				}
				return
			}
			if err == nil {
				t.Fatalf("got no error, want one naming %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("got %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestNotify(t *testing.T) {
	t.Run("defaults", func(t *testing.T) {
		c, err := Load(writeFile(t, "log:\n  level: info\n"), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		n := c.Notify
		if len(n.Before) != 2 || n.Before[0] != 168*time.Hour || n.Before[1] != 24*time.Hour {
			t.Errorf("notify.before: got %v, want [168h 24h]", n.Before)
		}
		if n.Interval != time.Minute {
			t.Errorf("notify.interval: got %s, want 1m", n.Interval)
		}
		if n.Enabled() {
			t.Error("notify without smtp.addr or webhook_url: got enabled, want off")
		}
	})
	t.Run("file", func(t *testing.T) {
		c, err := Load(writeFile(t, `notify:
  before: [3s, 1s]
  interval: 200ms
  smtp:
    addr: 127.0.0.1:2525
    from: "signet <signet@example.com>"
    username: signet
    password: s3cret
  webhook_url: http://127.0.0.1:9000/hook
`), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		n := c.Notify
		if len(n.Before) != 2 || n.Before[0] != 3*time.Second || n.Before[1] != time.Second || n.Interval != 200*time.Millisecond {
			t.Errorf("got before %v interval %s, want [3s 1s] 200ms", n.Before, n.Interval)
		}
		if n.SMTP.Addr != "127.0.0.1:2525" || n.SMTP.From != "signet <signet@example.com>" || n.SMTP.Username != "signet" ||
			n.SMTP.Password != "s3cret" || n.SMTP.StartTLS || n.WebhookURL != "http://127.0.0.1:9000/hook" || !n.Enabled() {
			t.Errorf("got %+v", n)
		}
	})
	t.Run("environment", func(t *testing.T) {
		t.Setenv("SIGNET_NOTIFY_BEFORE", "72h,1h")
		t.Setenv("SIGNET_NOTIFY_SMTP_ADDR", "mail.example.com:587")
		t.Setenv("SIGNET_NOTIFY_SMTP_FROM", "signet@example.com")
		t.Setenv("SIGNET_NOTIFY_SMTP_USERNAME", "signet")
		t.Setenv("SIGNET_NOTIFY_SMTP_PASSWORD", "from-env")
		t.Setenv("SIGNET_NOTIFY_SMTP_STARTTLS", "true")
		c, err := Load(writeFile(t, "log:\n  level: info\n"), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		n := c.Notify
		if len(n.Before) != 2 || n.Before[0] != 72*time.Hour || n.Before[1] != time.Hour {
			t.Errorf("SIGNET_NOTIFY_BEFORE=72h,1h: got %v", n.Before)
		}
		if n.SMTP.Addr != "mail.example.com:587" || n.SMTP.Password != "from-env" || !n.SMTP.StartTLS {
			t.Errorf("got %+v", n.SMTP)
		}
	})
	t.Run("lower max_ttl drops unreachable default thresholds", func(t *testing.T) {
		t.Setenv("SIGNET_TOKENS_MAX_TTL", "48h")
		c, err := Load(writeFile(t, "notify:\n  webhook_url: https://hooks.example.com/x\n"), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Notify.Before) != 1 || c.Notify.Before[0] != 24*time.Hour {
			t.Errorf("notify.before with max_ttl 48h: got %v, want [24h]", c.Notify.Before)
		}
	})
	cases := []struct {
		name, yaml, want string
	}{
		{"threshold under a second", "notify:\n  before: [500ms]\n", "notify.before"},
		{"negative threshold", "notify:\n  before: [-1h]\n", "notify.before"},
		{"duplicate threshold", "notify:\n  before: [24h, 24h]\n", "notify.before"},
		{"threshold past max_ttl", "tokens:\n  max_ttl: 48h\nnotify:\n  before: [72h]\n", "notify.before"},
		{"empty thresholds with a channel", "notify:\n  before: []\n  webhook_url: https://hooks.example.com/x\n", "notify.before"},
		{"interval too short", "notify:\n  interval: 10ms\n", "notify.interval"},
		{"interval too long", "notify:\n  interval: 48h\n", "notify.interval"},
		{"interval without unit", "notify:\n  interval: 10\n", "notify.interval"},
		{"smtp addr without port", "notify:\n  smtp:\n    addr: mail.example.com\n    from: a@example.com\n", "notify.smtp.addr"},
		{"smtp bad port", "notify:\n  smtp:\n    addr: mail.example.com:99999\n    from: a@example.com\n", "notify.smtp.addr"},
		{"smtp without from", "notify:\n  smtp:\n    addr: mail.example.com:587\n", "notify.smtp.from"},
		{"smtp bad from", "notify:\n  smtp:\n    addr: mail.example.com:587\n    from: not an address\n", "notify.smtp.from"},
		{"smtp username without password", "notify:\n  smtp:\n    addr: mail.example.com:587\n    from: a@example.com\n    username: u\n", "notify.smtp.username"},
		{"smtp password in clear text", "notify:\n  smtp:\n    addr: mail.example.com:587\n    from: a@example.com\n    username: u\n    password: hunter2hunter2\n", "notify.smtp.starttls"},
		{"smtp settings without addr", "notify:\n  smtp:\n    from: a@example.com\n", "notify.smtp.addr"},
		{"webhook not http", "notify:\n  webhook_url: ftp://example.com/hook\n", "notify.webhook_url"},
		{"webhook relative", "notify:\n  webhook_url: /hook\n", "notify.webhook_url"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(writeFile(t, tc.yaml), nil, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error naming %q", err, tc.want)
			}
			if err != nil && (strings.Contains(err.Error(), "hunter2hunter2")) {
				t.Fatalf("the error %q carries the SMTP password", err)
			}
		})
	}
}

// TestFlagErrorsNameTheFlag: a bad flag value names the flag.
func TestFlagErrorsNameTheFlag(t *testing.T) {
	t.Chdir(t.TempDir())
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	fs.String("listen", "", "")
	if err := fs.Parse([]string{"--listen", "nowhere"}); err != nil {
		t.Fatal(err)
	}
	_, err := Load("", fs, map[string]string{"server.listen": "listen"})
	if err == nil || !strings.Contains(err.Error(), "flag --listen") || !strings.Contains(err.Error(), "server.listen") {
		t.Fatalf("got %v, want an error naming flag --listen and server.listen", err)
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
