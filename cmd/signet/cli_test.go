package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
)

// inCI reports whether the tests run in CI, where a missing tool is a
// failure rather than a skip.
func inCI() bool {
	ci := os.Getenv("CI")
	return ci != "" && ci != "false" && ci != "0"
}

func TestBuildVersion(t *testing.T) {
	for _, tc := range []struct {
		name string
		info *debug.BuildInfo
		ok   bool
		want []string
		not  []string
	}{
		{"no build info", nil, false, []string{"signet (unknown) (commit unknown"}, nil},
		{"plain build", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, true,
			[]string{"signet (devel) (commit unknown (built without VCS information)"}, nil},
		{"from a checkout", &debug.BuildInfo{
			Main: debug.Module{Version: "v0.0.0-20261201093000-0123456789ab"},
			Settings: []debug.BuildSetting{
				{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
				{Key: "vcs.time", Value: "2026-12-01T09:30:00Z"},
				{Key: "vcs.modified", Value: "false"},
			},
		}, true, []string{
			"signet v0.0.0-20261201093000-0123456789ab (commit 0123456789abcdef0123456789abcdef01234567, committed 2026-12-01T09:30:00Z, go",
		}, []string{"uncommitted"}},
		{"from a modified checkout", &debug.BuildInfo{
			Main:     debug.Module{Version: "v1.2.3+dirty"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc"}, {Key: "vcs.modified", Value: "true"}},
		}, true, []string{"signet v1.2.3+dirty (commit abc with uncommitted changes, go"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := buildVersion(tc.info, tc.ok)
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("got %q, want it to contain %q", got, w)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(got, n) {
					t.Errorf("got %q, want no %q", got, n)
				}
			}
		})
	}
}

// TestVersionOfRealBinary builds signet from a fresh git repository
// holding this source tree (so that the go command stamps VCS information
// wherever the tests run, a git worktree or an export included) and checks
// that `signet --version` and `signet version` name the module version and
// the commit it was built from.
func TestVersionOfRealBinary(t *testing.T) {
	git, err := exec.LookPath("git")
	if err != nil {
		if inCI() {
			t.Fatal("git is needed to test the version stamping")
		}
		t.Skip("git is not installed")
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	files, err := exec.Command(git, "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		t.Skipf("the source is not in a git checkout (%v); nothing to compare the commit with", err)
	}
	repo := t.TempDir()
	for _, name := range strings.Split(strings.TrimRight(string(files), "\x00"), "\x00") {
		b, err := os.ReadFile(filepath.Join(root, name))
		if errors.Is(err, os.ErrNotExist) {
			continue // deleted in the working tree
		}
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(repo, name)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	gitIn := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(git, append([]string{"-C", repo, "-c", "user.name=signet-test", "-c", "user.email=test@signet.invalid"}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	gitIn("init", "-q")
	gitIn("add", "-A")
	gitIn("commit", "-q", "-m", "version test")
	head := gitIn("rev-parse", "HEAD")

	bin := filepath.Join(t.TempDir(), "signet")
	build := exec.Command("go", "build", "-buildvcs=true", "-o", bin, "./cmd/signet")
	build.Dir = repo
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build -buildvcs=true: %v\n%s", err, out)
	}
	// The pseudo-version the go command derives from the commit: no tag,
	// so v0.0.0-<UTC commit time>-<12 hex digits of the commit>.
	pseudo := regexp.MustCompile(`^signet v0\.0\.0-\d{14}-` + head[:12] + ` \(commit ` + head + `, committed \d{4}-\d\d-\d\dT[0-9:]+Z, go\S+ \S+/\S+\)\n$`)
	var first string
	for _, args := range [][]string{{"--version"}, {"version"}} {
		cmd := exec.Command(bin, args...)
		cmd.Env = cleanEnv()
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("signet %v: %v; stderr %s", args, err, stderr.String())
		}
		if !pseudo.MatchString(stdout.String()) {
			t.Errorf("signet %v: got %q, want the pseudo-version and commit %s", args, stdout.String(), head)
		}
		if stderr.Len() != 0 {
			t.Errorf("signet %v: stderr %q, want nothing", args, stderr.String())
		}
		if first == "" {
			first = stdout.String()
		} else if stdout.String() != first {
			t.Errorf("signet version %q differs from signet --version %q", stdout.String(), first)
		}
	}
}

// TestVerifyIssuerDefaultsAndOutput: signet verify finds the issuer like
// signet token does (--issuer, else SIGNET_URL, else server.public_url),
// prints claims once on stdout when valid and the reason once on stderr
// when not.
func TestVerifyIssuerDefaultsAndOutput(t *testing.T) {
	e := newEnv(t, "")
	if _, errOut, code := e.cli("verify-password-1\n", "user", "add", "alice", "--org", "acme", "--role", "admin", "--email", "alice@example.com", "--password-stdin"); code != 0 {
		t.Fatalf("user add: %s", errOut)
	}
	e.start()
	r := e.do("POST", "/user-token", "alice", "verify-password-1", "")
	mustStatus(t, r, 200)
	token := r.json(t)["user-token"].(string)
	tokenID := r.json(t)["token_id"].(string)

	run := func(env []string, args ...string) (string, string, int) {
		t.Helper()
		cmd := exec.Command(signetBinary(t), args...)
		cmd.Dir = e.dir
		cmd.Env = append(cleanEnv(), env...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return stdout.String(), stderr.String(), ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return stdout.String(), stderr.String(), 0
	}
	unreachable := "http://127.0.0.1:1"
	valid := []struct {
		name string
		env  []string
		args []string
	}{
		{"--issuer", []string{"SIGNET_URL=" + unreachable}, []string{"verify", "--issuer", e.url, token}},
		{"SIGNET_URL", []string{"SIGNET_URL=" + e.url}, []string{"verify", token}},
		{"server.public_url of --config", nil, []string{"verify", "--config", e.config, token}},
		{"SIGNET_SERVER_PUBLIC_URL", []string{"SIGNET_SERVER_PUBLIC_URL=" + e.url}, []string{"verify", token}},
	}
	for _, tc := range valid {
		t.Run("valid via "+tc.name, func(t *testing.T) {
			out, errOut, code := run(tc.env, tc.args...)
			if code != 0 {
				t.Fatalf("exit %d, want 0; stderr %q", code, errOut)
			}
			if errOut != "" {
				t.Errorf("stderr %q, want nothing", errOut)
			}
			dec := json.NewDecoder(strings.NewReader(out))
			var claims map[string]any
			if err := dec.Decode(&claims); err != nil {
				t.Fatalf("stdout is not JSON: %v: %q", err, out)
			}
			if dec.More() {
				t.Errorf("stdout holds more than one JSON value: %q", out)
			}
			if claims["jti"] != tokenID || claims["iss"] != e.url || claims["valid"] != true {
				t.Errorf("claims: got %v, want jti %s and iss %s", claims, tokenID, e.url)
			}
		})
	}

	mustStatus(t, e.do("DELETE", "/tokens/"+tokenID, "alice", "verify-password-1", ""), 204)
	invalid := []struct {
		name, token, want string
		env               []string
	}{
		{"revoked", token, "revoked", []string{"SIGNET_URL=" + e.url}},
		{"garbage", "not-a-token", "malformed", []string{"SIGNET_URL=" + e.url}},
		{"unreachable issuer", token, "127.0.0.1:1", []string{"SIGNET_URL=" + unreachable}},
	}
	for _, tc := range invalid {
		t.Run("refused: "+tc.name, func(t *testing.T) {
			out, errOut, code := run(tc.env, "verify", tc.token)
			if code != 1 {
				t.Fatalf("exit %d, want 1; stdout %q stderr %q", code, out, errOut)
			}
			if out != "" {
				t.Errorf("stdout %q, want nothing (the reason goes to stderr)", out)
			}
			lines := strings.Split(strings.TrimRight(errOut, "\n"), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "signet: ") || !strings.Contains(lines[0], tc.want) {
				t.Errorf("stderr %q, want one line starting with \"signet: \" and saying %q", errOut, tc.want)
			}
			if strings.Count(errOut, "signet:") != 1 {
				t.Errorf("stderr %q carries the signet: prefix more than once", errOut)
			}
		})
	}
	if out, errOut, code := run([]string{"SIGNET_URL=ftp://example.com"}, "verify", token); code != 2 || out != "" || !strings.Contains(errOut, "SIGNET_URL") {
		t.Errorf("SIGNET_URL=ftp://…: exit %d stdout %q stderr %q, want exit 2 naming SIGNET_URL", code, out, errOut)
	}
}

// TestTokenListTableOrJSON: signet token list prints an aligned table to a
// terminal (a real pseudo-terminal here) and the issuer's JSON when piped
// or with --json.
func TestTokenListTableOrJSON(t *testing.T) {
	const pass = "table-password-1"
	e := newEnv(t, "")
	if _, errOut, code := e.cli(pass+"\n", "user", "add", "alice", "--org", "acme", "--role", "admin", "--email", "alice@example.com", "--password-stdin"); code != 0 {
		t.Fatalf("user add: %s", errOut)
	}
	e.start()
	named := createToken(t, e, "alice", pass, `{"name":"ci deploy","scopes":["reports:read","bucket:in.c-main:write"],"expires_in":"720h"}`)
	admin := createToken(t, e, "alice", pass, `{"name":"backup","type":"administrative","scopes":[],"expires_in":"48h"}`)
	session := issueUserToken(t, e, "alice", pass, "")
	revoked := createToken(t, e, "alice", pass, `{"name":"old","scopes":["reports:read"]}`)
	mustStatus(t, e.do("DELETE", "/tokens/"+revoked["token_id"].(string), "alice", pass, ""), 204)
	env := append(cleanEnv(), "SIGNET_URL="+e.url, "SIGNET_USER=alice", "SIGNET_PASSWORD="+pass)

	// Piped (a pipe is not a terminal) and --json: the issuer's JSON.
	for _, args := range [][]string{{"token", "list", "--include-revoked"}, {"token", "list", "--include-revoked", "--json"}} {
		cmd := exec.Command(signetBinary(t), args...)
		cmd.Env = env
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("signet %v: %v", args, err)
		}
		var list struct {
			Tokens []map[string]any `json:"tokens"`
		}
		if err := json.Unmarshal(out, &list); err != nil || len(list.Tokens) != 4 {
			t.Fatalf("signet %v piped: got %q (%v), want JSON with 4 tokens", args, out, err)
		}
	}

	onTerminal := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(signetBinary(t), args...)
		cmd.Env = env
		ptmx, tty, err := pty.Open()
		if err != nil {
			if inCI() {
				t.Fatalf("open a pseudo-terminal: %v", err)
			}
			t.Skipf("no pseudo-terminal: %v", err)
		}
		defer ptmx.Close()
		if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 50, Cols: 250}); err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = tty, tty
		if err := cmd.Start(); err != nil {
			tty.Close()
			t.Fatal(err)
		}
		tty.Close()
		var out bytes.Buffer
		done := make(chan struct{})
		go func() {
			defer close(done)
			// Reading a pty whose other end is closed ends with EIO.
			_, _ = io.Copy(&out, ptmx)
		}()
		werr := cmd.Wait()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("the terminal output did not end")
		}
		if werr != nil {
			t.Fatalf("signet %v on a terminal: %v\n%s", args, werr, out.String())
		}
		return strings.ReplaceAll(out.String(), "\r\n", "\n")
	}

	out := onTerminal("token", "list", "--include-revoked")
	if json.Valid([]byte(out)) {
		t.Fatalf("on a terminal: got JSON, want a table:\n%s", out)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 5 {
		t.Fatalf("on a terminal: got %d lines, want a header and 4 rows:\n%s", len(lines), out)
	}
	header := lines[0]
	cols := []string{"ID", "NAME", "TYPE", "OWNER", "SCOPES", "EXPIRES", "STATUS"}
	for _, c := range cols {
		if !regexp.MustCompile(`(^|\s)` + c + `(\s|$)`).MatchString(header) {
			t.Errorf("header %q lacks %s", header, c)
		}
	}
	// Aligned: every row's STATUS starts in the header's STATUS column.
	statusCol := strings.Index(header, "STATUS")
	rows := map[string]string{}
	for _, l := range lines[1:] {
		if len(l) <= statusCol {
			t.Fatalf("row %q ends before the STATUS column %d", l, statusCol)
		}
		id, _, _ := strings.Cut(l, " ")
		rows[id] = l
		if st := strings.TrimSpace(l[statusCol:]); st != "active" && st != "revoked" {
			t.Errorf("row %q: STATUS column holds %q, want it aligned under the header", l, st)
		}
	}
	for _, tc := range []struct {
		id   any
		want []string
	}{
		{named["token_id"], []string{"ci deploy", "personal", "alice", "bucket:in.c-main:write reports:read", "active"}},
		{admin["token_id"], []string{"backup", "administrative", "(organization)", "(none)", "active"}},
		{session["token_id"], []string{"(unnamed)", "personal", "alice", "*", "active"}},
		{revoked["token_id"], []string{"old", "revoked"}},
	} {
		row, ok := rows[tc.id.(string)]
		if !ok {
			t.Errorf("no row for %s in:\n%s", tc.id, out)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(row, w) {
				t.Errorf("row %q lacks %q", row, w)
			}
		}
		if !regexp.MustCompile(`\d{4}-\d\d-\d\d \d\d:\d\d UTC`).MatchString(row) {
			t.Errorf("row %q has no expiry date", row)
		}
	}
	if out := onTerminal("token", "list", "--json"); !json.Valid([]byte(out)) {
		t.Errorf("--json on a terminal: got %q, want JSON", out)
	}
}

// TestOfflineCommandsQuiet: user and keys commands say what they did on
// stdout and nothing else on stderr than which store and keys directory
// they used (no INFO log lines), even when they generate the first key.
func TestOfflineCommandsQuiet(t *testing.T) {
	e := newEnv(t, "") // log.level: debug in the file, still quiet
	for _, args := range [][]string{
		{"keys", "list"},
		{"keys", "rotate"},
		{"keys", "rotate", "--now"},
		{"user", "add", "alice", "--org", "acme", "--role", "admin", "--email", "alice@example.com", "--password-stdin"},
		{"user", "list"},
		{"user", "passwd", "alice", "--password-stdin", "--revoke-tokens"},
		{"user", "remove", "alice"},
	} {
		out, errOut, code := e.cli("quiet-password-1\n", args...)
		if code != 0 {
			t.Fatalf("signet %v: exit %d: %s", args, code, errOut)
		}
		if withoutUsedLines(errOut) != "" {
			t.Errorf("signet %v: stderr %q, want only the store and keys dir used", args, errOut)
		}
		if strings.TrimSpace(out) == "" {
			t.Errorf("signet %v: printed nothing, want what it did", args)
		}
	}
}

// TestServeLogsSigningAlgorithm: serve logs the algorithm of the key that
// actually signs, and warns when keys.algorithm asks for another one
// (which only applies to keys generated later).
func TestServeLogsSigningAlgorithm(t *testing.T) {
	e := newEnv(t, "")
	e.patchConfig("keys:\n", "keys:\n  algorithm: EdDSA\n")
	if _, errOut, code := e.cli("", "keys", "list"); code != 0 {
		t.Fatalf("keys list: %s", errOut)
	}
	e.patchConfig("algorithm: EdDSA", "algorithm: RS256")
	e.start()
	logs := e.logs.String()
	var listening string
	sc := bufio.NewScanner(strings.NewReader(logs))
	for sc.Scan() {
		if strings.Contains(sc.Text(), "signet issuer listening") {
			listening = sc.Text()
		}
	}
	if !strings.Contains(listening, "algorithm=EdDSA") {
		t.Errorf("listening line %q, want algorithm=EdDSA (the signing key's)", listening)
	}
	if !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, "keys.algorithm=RS256") {
		t.Errorf("no warning that keys.algorithm RS256 differs from the signing key's EdDSA:\n%s", logs)
	}
	r := e.do("GET", "/.well-known/jwks.json", "", "", "")
	mustStatus(t, r, 200)
	if !strings.Contains(string(r.body), `"EdDSA"`) {
		t.Errorf("JWKS %s, want the EdDSA key the log names", r.body)
	}
}

// TestErrorPrefixOnce: every failure is one line on stderr with one
// "signet:" prefix, including issuer rules checked by offline commands.
func TestErrorPrefixOnce(t *testing.T) {
	e := newEnv(t, "")
	for _, tc := range []struct {
		name, stdin, want string
		args              []string
	}{
		{"bad username", "long-enough-password\n", "The username must", []string{"user", "add", "bad name", "--org", "acme", "--email", "x@example.com", "--password-stdin"}},
		{"bad role", "long-enough-password\n", "The role must", []string{"user", "add", "x", "--org", "acme", "--role", "owner", "--email", "x@example.com", "--password-stdin"}},
		{"short password", "short\n", "too short", []string{"user", "add", "x", "--org", "acme", "--email", "x@example.com", "--password-stdin"}},
		{"unknown user", "", "no such user", []string{"user", "remove", "ghost"}},
		{"unknown key", "", "no key", []string{"keys", "revoke", "nope"}},
		{"unknown command", "", "unknown command", []string{"frobnicate"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, code := e.cli(tc.stdin, tc.args...)
			if code == 0 {
				t.Fatal("exit 0, want a failure")
			}
			errOut = withoutUsedLines(errOut)
			if strings.Count(errOut, "signet:") != 1 || strings.Contains(errOut, "signet invalid") || !strings.HasPrefix(errOut, "signet: ") || strings.Count(errOut, "\n") != 1 {
				t.Errorf("stderr %q, want one line with one \"signet: \" prefix", errOut)
			}
			if !strings.Contains(errOut, tc.want) {
				t.Errorf("stderr %q, want it to say %q", errOut, tc.want)
			}
		})
	}
}

// TestTokenTableGrace: the table says until when the old value of a token
// regenerated with a grace period works.
func TestTokenTableGrace(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	var out bytes.Buffer
	err := printTokenTable(&out, []listedToken{
		{TokenID: "old", Name: "ci", Type: "personal", User: "alice", ExpiresAt: "2026-11-24T10:00:00Z", ValidUntil: "2026-11-23T11:00:00Z"},
		{TokenID: "gone", Name: "ci", Type: "personal", User: "alice", ExpiresAt: "2026-11-24T10:00:00Z", ValidUntil: "2026-11-23T09:00:00Z", Revoked: true},
	}, now)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	if len(lines) != 3 || !strings.HasSuffix(lines[1], "active until 2026-11-23 11:00:00 UTC") || !strings.HasSuffix(lines[2], "revoked") {
		t.Errorf("table: got\n%s\nwant the first row active until 11:00:00 UTC and the second revoked", out.String())
	}
}

// withoutUsedLines drops from an offline command's stderr the lines that
// say which store and keys directory it used (TestOfflineCommandsNameStoreAndKeys).
func withoutUsedLines(stderr string) string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(stderr, "\n") {
		if !strings.HasPrefix(line, "signet: store ") && !strings.HasPrefix(line, "signet: keys dir ") {
			b.WriteString(line)
		}
	}
	return b.String()
}
