package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestConfigMistakesCreateNothing runs every command of the binary in an
// empty directory whose config.yaml (or environment) has a mistake: each
// exits non-zero naming the key and where it was set, and leaves no store
// file, key directory or key behind (the defaults would put them in data/).
func TestConfigMistakesCreateNothing(t *testing.T) {
	bin := signetBinary(t)
	commands := []struct {
		args  []string
		stdin string
	}{
		{[]string{"serve"}, ""},
		{[]string{"user", "add", "alice", "--org", "acme", "--role", "admin", "--email", "a@example.com", "--password-stdin"}, "long-enough-password\n"},
		{[]string{"user", "list"}, ""},
		{[]string{"user", "remove", "alice"}, ""},
		{[]string{"user", "passwd", "alice", "--password-stdin"}, "long-enough-password\n"},
		{[]string{"keys", "list"}, ""},
		{[]string{"keys", "rotate", "--now"}, ""},
		{[]string{"keys", "revoke", "somekid"}, ""},
		{[]string{"token", "list", "--user", "alice"}, "pw\n"},
		{[]string{"token", "list", "--user", "alice", "--url", "http://127.0.0.1:1", "--config", "config.yaml"}, "pw\n"},
		{[]string{"verify", "--issuer", "http://127.0.0.1:1", "--config", "config.yaml", "a.b.c"}, ""},
	}
	mistakes := []struct {
		name, yaml string
		env        []string
		want       []string
	}{
		{"unknown key", "server:\n  listen: \"127.0.0.1:0\"\nrolse:\n  member:\n    scopes: [\"*\"]\n", nil, []string{"config.yaml line 3", "rolse"}},
		{"nested typo", "server:\n  listne: \"127.0.0.1:0\"\n", nil, []string{"config.yaml line 2", "server.listne"}},
		{"duration without unit", "server:\n  read_timeout: 10\n", nil, []string{"config.yaml line 2", "server.read_timeout", "unit"}},
		{"out of range", "revocation:\n  poll_interval: 1ms\n", nil, []string{"config.yaml line 2", "revocation.poll_interval"}},
		{"bad scope pattern for the issuer", "presets:\n  ops: [\"deploy:*:run\"]\n", nil, []string{"config.yaml line 2", "presets.ops[0]"}},
		{"environment", "log:\n  level: info\n", []string{"SIGNET_SERVER_IDLE_TIMEOUT=60"}, []string{"SIGNET_SERVER_IDLE_TIMEOUT", "server.idle_timeout"}},
		{"yaml syntax", "log:\n  level: info\n format: text\n", nil, []string{"config.yaml line 3", "YAML"}},
	}
	for _, m := range mistakes {
		for _, c := range commands {
			t.Run(m.name+"/"+strings.Join(c.args[:min(3, len(c.args))], " "), func(t *testing.T) {
				dir := t.TempDir()
				if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(m.yaml), 0o600); err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
				defer cancel()
				cmd := exec.CommandContext(ctx, bin, c.args...)
				cmd.Dir = dir
				cmd.Env = append(cleanEnv(), m.env...)
				cmd.Stdin = strings.NewReader(c.stdin)
				var errb bytes.Buffer
				cmd.Stderr = &errb
				err := cmd.Run()
				if ctx.Err() != nil {
					t.Fatalf("still running after 15s: the mistake was not refused; stderr %q", errb.String())
				}
				if err == nil {
					t.Fatalf("exit 0, want a refusal; stderr %q", errb.String())
				}
				for _, w := range m.want {
					if !strings.Contains(errb.String(), w) {
						t.Errorf("stderr %q does not contain %q", errb.String(), w)
					}
				}
				des, _ := os.ReadDir(dir)
				for _, de := range des {
					if de.Name() != "config.yaml" {
						t.Errorf("created %s before the configuration was accepted", de.Name())
					}
				}
			})
		}
	}
}
