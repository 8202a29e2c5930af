package ldaptest

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes slapd end when the test binary does, even on a
// kill -9 that skips every cleanup.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
