package keys

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Environment of a child process started by TestAutomaticRotationAcrossProcesses.
const (
	childDirEnv   = "SIGNET_KEYS_TEST_CHILD_DIR"
	childClockEnv = "SIGNET_KEYS_TEST_CHILD_CLOCK"
)

// TestAutomaticRotationAcrossProcesses races automatic rotation in separate
// processes on one key directory, the way issuer replicas sharing a volume
// do: the flock on the directory must let exactly one of them add a key.
// Every process opens the directory before any rotates, so each sees the
// rotation as due and each generates a key before taking the lock.
func TestAutomaticRotationAcrossProcesses(t *testing.T) {
	if os.Getenv(childDirEnv) != "" {
		t.Skip("running as a child process")
	}
	dir := t.TempDir()
	clock := newTestClock()
	openTest(t, dir, clock)
	at := clock.Now().Add(2 * time.Hour).Format(time.RFC3339Nano)

	const n = 4
	type child struct {
		cmd   *exec.Cmd
		stdin io.WriteCloser
		out   *bufio.Scanner
	}
	children := make([]child, n)
	for i := range children {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperRotateProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), childDirEnv+"="+dir, childClockEnv+"="+at)
		cmd.Stderr = os.Stderr
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatalf("start child %d: %v", i, err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		children[i] = child{cmd: cmd, stdin: stdin, out: bufio.NewScanner(stdout)}
	}
	// A hung child is killed, which ends its output and fails the test
	// instead of hanging it; this bounds the run, it times nothing.
	watchdog := time.AfterFunc(time.Minute, func() {
		for _, c := range children {
			_ = c.cmd.Process.Kill()
		}
	})
	defer watchdog.Stop()
	// Wait until every child has opened the directory, then release all.
	for i, c := range children {
		if line := readLine(t, c.out); line != "ready" {
			t.Fatalf("child %d: got %q, want ready", i, line)
		}
	}
	for _, c := range children {
		if _, err := io.WriteString(c.stdin, "go\n"); err != nil {
			t.Fatal(err)
		}
	}
	rotated := 0
	for i, c := range children {
		switch line := readLine(t, c.out); line {
		case "rotated":
			rotated++
		case "not due":
		default:
			t.Errorf("child %d: got %q, want rotated or not due", i, line)
		}
		if err := c.cmd.Wait(); err != nil {
			t.Errorf("child %d exited: %v", i, err)
		}
	}
	if files := keyFiles(t, dir); rotated != 1 || len(files) != 2 {
		t.Errorf("rotations = %d, key files = %v; want 1 rotation and 2 files", rotated, files)
	}
}

// readLine reads one line of a child's output, skipping what the test
// framework prints.
func readLine(tb testing.TB, sc *bufio.Scanner) string {
	tb.Helper()
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch line {
		case "ready", "rotated", "not due":
			return line
		}
		if strings.HasPrefix(line, "error:") {
			return line
		}
	}
	tb.Fatalf("child output ended: %v", sc.Err())
	return ""
}

// TestHelperRotateProcess is the child of
// TestAutomaticRotationAcrossProcesses; it does nothing in a normal run.
func TestHelperRotateProcess(t *testing.T) {
	dir := os.Getenv(childDirEnv)
	if dir == "" {
		t.Skip("only runs as a child process")
	}
	at, err := time.Parse(time.RFC3339Nano, os.Getenv(childClockEnv))
	if err != nil {
		fmt.Println("error: clock:", err)
		return
	}
	k, err := Open(Config{
		Dir: dir, MaxTTL: time.Hour, PublishDelay: 10 * time.Minute, RotationPeriod: time.Hour,
		Now: func() time.Time { return at },
	})
	if err != nil {
		fmt.Println("error: open:", err)
		return
	}
	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		fmt.Println("error: wait:", err)
		return
	}
	ok, err := k.rotateIfDue()
	switch {
	case err != nil:
		fmt.Println("error: rotate:", err)
	case ok:
		fmt.Println("rotated")
	default:
		fmt.Println("not due")
	}
}
