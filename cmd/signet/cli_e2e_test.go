package main

import (
	"bytes"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
)

// TestOfflineCommandsNameStoreAndKeys: every offline command says on
// stderr which store and keys directory it used (absolute paths, so one
// run from the wrong folder shows), and never a password from a DSN.
func TestOfflineCommandsNameStoreAndKeys(t *testing.T) {
	e := newEnv(t, "")
	store := "signet: store sqlite " + filepath.Join(e.dir, "data", "signet.db")
	keysDir := "signet: keys dir " + filepath.Join(e.dir, "keys")
	cases := []struct {
		args  []string
		stdin string
		want  []string
	}{
		{[]string{"user", "add", "alice", "--org", "acme", "--role", "admin", "--email", "a@example.com", "--password-stdin"}, "long-enough-password\n", []string{store}},
		{[]string{"user", "list"}, "", []string{store}},
		{[]string{"user", "passwd", "alice", "--password-stdin"}, "another-long-password\n", []string{store}},
		{[]string{"keys", "list"}, "", []string{keysDir}},
		{[]string{"keys", "rotate"}, "", []string{keysDir}},
		{[]string{"user", "remove", "alice"}, "", []string{store}},
	}
	for _, tc := range cases {
		_, errOut, code := e.cli(tc.stdin, tc.args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", tc.args, code, errOut)
		}
		for _, w := range tc.want {
			if !strings.Contains(errOut, w) {
				t.Errorf("%v: stderr %q does not name %q", tc.args, errOut, w)
			}
		}
	}
	// A PostgreSQL DSN is named by host, port and database only.
	_, errOut, code := e.cli("", "user", "list", "--store-driver", "postgres", "--store-dsn", "postgres://signet:S3CRETPW@127.0.0.1:1/signetdb?sslmode=disable&password=OTHERPW")
	if code == 0 {
		t.Fatalf("user list against a closed port succeeded")
	}
	if !strings.Contains(errOut, "signet: store postgres 127.0.0.1:1/signetdb") {
		t.Errorf("stderr %q does not name the PostgreSQL store", errOut)
	}
	if strings.Contains(errOut, "S3CRETPW") || strings.Contains(errOut, "OTHERPW") {
		t.Errorf("stderr shows a password: %q", errOut)
	}
	_, errOut, _ = e.cli("", "user", "list", "--store-driver", "postgres", "--store-dsn", "host=127.0.0.1 port=1 dbname=signetdb user=signet password=S3CRETPW sslmode=disable")
	if !strings.Contains(errOut, "signet: store postgres 127.0.0.1:1/signetdb") || strings.Contains(errOut, "S3CRETPW") {
		t.Errorf("key=value DSN: stderr %q", errOut)
	}
}

// ttySession runs the binary with a pseudo-terminal as its stdin and
// collects what the terminal shows (an echo would appear there) and what
// the binary writes to stderr (the prompts).
type ttySession struct {
	cmd    *exec.Cmd
	master io.ReadWriteCloser
	mu     sync.Mutex
	screen bytes.Buffer
	stderr syncBuffer
}

func startTTY(t *testing.T, e *env, args ...string) *ttySession {
	t.Helper()
	master, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	s := &ttySession{master: master}
	s.cmd = exec.Command(signetBinary(t), append(args, "--config", e.config)...)
	s.cmd.Dir = e.dir
	s.cmd.Env = cleanEnv()
	s.cmd.Stdin, s.cmd.Stdout, s.cmd.Stderr = tty, &s.stderr, &s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tty.Close()
	go func() {
		buf := make([]byte, 1024)
		for {
			n, err := master.Read(buf)
			s.mu.Lock()
			s.screen.Write(buf[:n])
			s.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { master.Close(); _ = s.cmd.Process.Kill() })
	return s
}

// waitPrompt waits until stderr shows prompt, at most 20s, then a moment
// more: like a person, the test types after the prompt (keys typed ahead
// of any password prompt, sudo's or ssh's too, are echoed before the
// terminal is switched to no-echo).
func (s *ttySession) waitPrompt(t *testing.T, prompt string) {
	t.Helper()
	for range 400 {
		if strings.Contains(s.stderr.String(), prompt) {
			time.Sleep(300 * time.Millisecond)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no prompt %q; stderr %q", prompt, s.stderr.String())
}

func (s *ttySession) wait(t *testing.T) int {
	t.Helper()
	err := s.cmd.Wait()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0
}

// TestPasswordPromptOnTerminal: on a terminal, `signet user add` asks for
// the password (twice, saying for whom) without echoing it, and the
// password works; `signet token` asks for the caller's. A pipe still works
// as before (the other tests).
func TestPasswordPromptOnTerminal(t *testing.T) {
	e := newEnv(t, "")
	const pw = "typed-password-42"
	s := startTTY(t, e, "user", "add", "tina", "--org", "acme", "--role", "admin", "--email", "tina@example.com", "--password-stdin")
	s.waitPrompt(t, "New password for new user tina: ")
	io.WriteString(s.master, pw+"\r")
	s.waitPrompt(t, "Repeat the password: ")
	io.WriteString(s.master, pw+"\r")
	if code := s.wait(t); code != 0 {
		t.Fatalf("user add on a terminal: exit %d; stderr %q", code, s.stderr.String())
	}
	time.Sleep(100 * time.Millisecond)
	s.mu.Lock()
	screen := s.screen.String()
	s.mu.Unlock()
	if strings.Contains(screen, pw) {
		t.Errorf("the password was echoed on the terminal: %q", screen)
	}

	// Two different answers change nothing.
	s = startTTY(t, e, "user", "passwd", "tina")
	s.waitPrompt(t, "New password for tina: ")
	io.WriteString(s.master, "first-answer-123\r")
	s.waitPrompt(t, "Repeat the password: ")
	io.WriteString(s.master, "second-answer-123\r")
	if code := s.wait(t); code == 0 || !strings.Contains(s.stderr.String(), "differ") {
		t.Fatalf("mismatched passwords: exit %d; stderr %q", code, s.stderr.String())
	}

	e.start()
	s = startTTY(t, e, "token", "list", "--user", "tina", "--url", e.url)
	s.waitPrompt(t, "Password for tina at "+e.url+": ")
	io.WriteString(s.master, pw+"\r")
	if code := s.wait(t); code != 0 {
		t.Fatalf("token list with the typed password: exit %d; stderr %q", code, s.stderr.String())
	}
	r := e.do("POST", "/user-token", "tina", pw, "")
	mustStatus(t, r, 200)
}
