package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The README's walkthrough is tested by running it, so that it cannot rot.
//
// Which blocks run: every fenced block whose info string is exactly "sh"
// under the level-2 headings "## Walkthrough" and "## Keys" (their ###
// subsections included), in document order, joined into one bash script,
// so that shell variables carry from block to block as in a reader's
// terminal. Blocks elsewhere (the set-up's build and serve, scripts/test.sh,
// the load scripts, go get) are not run by it.
//
// What the test does for the set-up the README describes before them: the
// real binary as ./bin/signet in a fresh directory holding the repository's
// config.yaml, and `./bin/signet serve` started there in the background.
// The one substitution: localhost:8080 becomes localhost:<a free port>,
// with SIGNET_SERVER_LISTEN=127.0.0.1:<port> and SIGNET_SERVER_PUBLIC_URL=
// http://localhost:<port> for the issuer (loopback only).
//
// The script runs under `set -euo pipefail` (and -x, so the log shows the
// command that failed); curl runs with --fail-with-body and jq with -e, so
// an HTTP error answer or a missing field fails the test even where a
// reader's shell would carry on.

// walkthroughHeadings are the level-2 sections whose sh blocks are run.
var walkthroughHeadings = []string{"Walkthrough", "Keys"}

// fencedBlock is one fenced code block of a Markdown file.
type fencedBlock struct {
	info    string // the info string after ```
	heading string // the level-2 heading it sits under
	line    int    // line number of the opening fence
	body    string
}

// fencedBlocks returns the fenced code blocks of a Markdown document.
func fencedBlocks(tb testing.TB, doc string) []fencedBlock {
	tb.Helper()
	var blocks []fencedBlock
	var cur *fencedBlock
	var body strings.Builder
	heading := ""
	sc := bufio.NewScanner(strings.NewReader(doc))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if cur != nil {
			if trimmed == "```" {
				cur.body = body.String()
				blocks = append(blocks, *cur)
				cur = nil
				continue
			}
			body.WriteString(line + "\n")
			continue
		}
		if strings.HasPrefix(trimmed, "```") {
			cur = &fencedBlock{info: strings.TrimSpace(strings.TrimPrefix(trimmed, "```")), heading: heading, line: n}
			body.Reset()
			continue
		}
		if h, ok := strings.CutPrefix(line, "## "); ok {
			heading = strings.TrimSpace(h)
		}
	}
	if cur != nil {
		tb.Fatalf("line %d: a code block is never closed", cur.line)
	}
	return blocks
}

func readRepoFile(tb testing.TB, name string) string {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", name))
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// TestDocsShellBlocksPasteable: no shell block in README.md or docs/
// carries a prompt, and the README's blocks call the binary one way.
func TestDocsShellBlocksPasteable(t *testing.T) {
	docs, err := filepath.Glob(filepath.Join("..", "..", "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	files := []string{"README.md"}
	for _, d := range docs {
		files = append(files, filepath.Join("docs", filepath.Base(d)))
	}
	bareSignet := regexp.MustCompile(`(^|[|;&(]\s*|\$\(\s*)signet\s`)
	for _, f := range files {
		for _, b := range fencedBlocks(t, readRepoFile(t, f)) {
			for i, l := range strings.Split(b.body, "\n") {
				where := fmt.Sprintf("%s:%d", f, b.line+1+i)
				if strings.HasPrefix(l, "$ ") || strings.HasPrefix(l, "% ") {
					t.Errorf("%s: a prompt in a code block (%q): blocks must paste as they are; show output as comments or in a separate block", where, l)
				}
				if f == "README.md" && b.info == "sh" && bareSignet.MatchString(strings.TrimSpace(l)) {
					t.Errorf("%s: %q calls signet, which is not on PATH after the README's build; write ./bin/signet", where, l)
				}
			}
		}
	}
}

func TestREADMEWalkthrough(t *testing.T) {
	var missing []string
	tools := map[string]string{}
	for _, name := range []string{"bash", "curl", "jq", "awk"} {
		p, err := exec.LookPath(name)
		if err != nil {
			missing = append(missing, name)
		}
		tools[name] = p
	}
	if len(missing) > 0 {
		msg := "the README walkthrough needs " + strings.Join(missing, ", ") + " (scripts/test.sh installs them)"
		if inCI() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}

	readme := readRepoFile(t, "README.md")
	// The set-up the test stands in for must be what the README says.
	for _, want := range []string{"go build -o bin/signet ./cmd/signet\n./bin/signet serve\n"} {
		found := false
		for _, b := range fencedBlocks(t, readme) {
			if b.heading == "Set-up on a fresh machine" && strings.Contains(b.body, want) {
				found = true
			}
		}
		if !found {
			t.Fatalf("README's set-up no longer says %q; update TestREADMEWalkthrough with it", want)
		}
	}
	var script strings.Builder
	blocks := 0
	for _, b := range fencedBlocks(t, readme) {
		run := false
		for _, h := range walkthroughHeadings {
			run = run || b.heading == h
		}
		if !run || b.info != "sh" {
			continue
		}
		blocks++
		fmt.Fprintf(&script, "\n# ---- README.md line %d (%s)\n%s", b.line, b.heading, b.body)
	}
	if blocks < 4 {
		t.Fatalf("found %d sh blocks under %v, want the walkthrough's (at least 4)", blocks, walkthroughHeadings)
	}

	port := freePort(t)
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(signetBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bin", "signet"), bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(readRepoFile(t, "config.yaml")), 0o644); err != nil {
		t.Fatal(err)
	}
	base := fmt.Sprintf("http://localhost:%d", port)
	env := append(cleanEnv(),
		fmt.Sprintf("SIGNET_SERVER_LISTEN=127.0.0.1:%d", port),
		"SIGNET_SERVER_PUBLIC_URL="+base,
	)

	logs := &syncBuffer{}
	srv := exec.Command("./bin/signet", "serve")
	srv.Dir, srv.Env, srv.Stdout, srv.Stderr = dir, env, logs, logs
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = srv.Process.Kill()
		_ = srv.Wait()
	})
	ready := false
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", port))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				ready = true
				break
			}
		}
	}
	if !ready {
		t.Fatalf("./bin/signet serve not ready within 20s:\n%s", logs.String())
	}

	body := strings.ReplaceAll(script.String(), "localhost:8080", fmt.Sprintf("localhost:%d", port))
	full := "set -euxo pipefail\n" +
		"curl() { command curl --fail-with-body \"$@\"; }\n" +
		"jq() { command jq -e \"$@\"; }\n" +
		body
	if err := os.WriteFile(filepath.Join(dir, "walkthrough.sh"), []byte(full), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	sh := exec.CommandContext(ctx, tools["bash"], "walkthrough.sh")
	sh.Dir = dir
	// The reader's terminal: none of the test's SIGNET_* settings leak in.
	sh.Env = cleanEnv()
	var out bytes.Buffer
	sh.Stdout, sh.Stderr = &out, &out
	if err := sh.Run(); err != nil {
		t.Fatalf("the README walkthrough failed: %v\n%s\nissuer log:\n%s", err, out.String(), logs.String())
	}

	// It did what it says: the tokens it made and revoked.
	req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/tokens?include_revoked=true", port), nil)
	req.SetBasicAuth("alice", "correct-horse-battery")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list struct {
		Tokens []struct {
			Name       string `json:"name"`
			Revoked    bool   `json:"revoked"`
			ReplacedBy string `json:"replaced_by"`
		} `json:"tokens"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	revoked := map[string]int{}
	for _, tk := range list.Tokens {
		if tk.Revoked {
			revoked[tk.Name]++
		}
	}
	// ci-deploy three times (regenerated; regenerated with a grace period,
	// which `signet keys revoke` in the Keys section ends by withdrawing
	// the key that signed it; then the newest one revoked), and the CLI's
	// reports-export.
	if revoked["ci-deploy"] != 3 || revoked["reports-export"] != 1 {
		t.Errorf("revoked tokens after the walkthrough: got %v, want ci-deploy 3 and reports-export 1\n%s", revoked, out.String())
	}
	if !strings.Contains(out.String(), `"valid": true`) {
		t.Errorf("signet verify printed no valid claims:\n%s", out.String())
	}
	if strings.Contains(logs.String(), "correct-horse-battery") {
		t.Error("the issuer log contains the password")
	}
}
