package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestUIBrowser runs the browser test of the web UI
// (scripts/ui-e2e/ui.test.mjs: playwright-core driving Debian's chromium)
// against the real binary with an admin and a member of one org. Without
// node, chromium or the test's node_modules it is skipped locally and fails
// in CI (CI=true), which must run it; scripts/ui-e2e/setup.sh installs
// them. SIGNET_UI_SCREENSHOTS=1 also refreshes docs/screenshots/*.png.
func TestUIBrowser(t *testing.T) {
	dir, err := filepath.Abs(filepath.Join("..", "..", "scripts", "ui-e2e"))
	if err != nil {
		t.Fatal(err)
	}
	chromium := os.Getenv("SIGNET_UI_CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	var missing []string
	node, err := exec.LookPath("node")
	if err != nil {
		missing = append(missing, "node")
	}
	if _, err := os.Stat(chromium); err != nil {
		missing = append(missing, chromium)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "playwright-core", "package.json")); err != nil {
		missing = append(missing, "scripts/ui-e2e/node_modules (npm ci)")
	}
	if len(missing) > 0 {
		msg := "browser test needs " + strings.Join(missing, ", ") + "; run scripts/ui-e2e/setup.sh"
		if ci := os.Getenv("CI"); ci != "" && ci != "false" && ci != "0" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}

	const (
		adminPass  = "ui-admin-password-1"
		memberPass = "ui-member-password-1"
	)
	e := newEnv(t, `roles:
  admin:
    scopes: ["*"]
  member:
    scopes: ["reports:*", "bucket:*"]
presets:
  reports: ["reports:read"]
  extended: ["reports:read", "reports:write", "bucket:in.c-main:read"]
  deploy: ["deploy:run", "registry:push"]
ui:
  # The admin may grant it and starts from it; the member may not and
  # starts from all of their scopes.
  default_preset: deploy
`)
	for _, u := range []struct{ name, role, pass string }{
		{"alice", "admin", adminPass},
		{"bob", "member", memberPass},
	} {
		if _, errOut, code := e.cli(u.pass+"\n", "user", "add", u.name, "--org", "acme", "--role", u.role, "--email", u.name+"@example.com", "--password-stdin"); code != 0 {
			t.Fatalf("user add %s: exit %d: %s", u.name, code, errOut)
		}
	}
	e.start()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "ui.test.mjs")
	cmd.Dir = dir
	cmd.Env = append(cleanEnv(),
		"SIGNET_UI_URL="+e.url,
		"SIGNET_UI_ADMIN_USER=alice", "SIGNET_UI_ADMIN_PASSWORD="+adminPass,
		"SIGNET_UI_MEMBER_USER=bob", "SIGNET_UI_MEMBER_PASSWORD="+memberPass,
		"SIGNET_UI_CHROMIUM="+chromium,
	)
	if v := os.Getenv("SIGNET_UI_SCREENSHOTS"); v != "" {
		cmd.Env = append(cmd.Env, "SIGNET_UI_SCREENSHOTS="+v)
	}
	// node and the chromium it starts share a process group, so a timeout
	// ends them all.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node ui.test.mjs: %v\n%s\nissuer log:\n%s", err, out, e.logs.String())
	}
	t.Logf("node ui.test.mjs:\n%s", out)
	if !strings.Contains(string(out), " passed, 0 failed") {
		t.Fatalf("ui.test.mjs exited 0 without its summary line:\n%s", out)
	}
	if logs := e.logs.String(); strings.Contains(logs, adminPass) || strings.Contains(logs, memberPass) {
		t.Fatal("the issuer log contains a password")
	}
}
