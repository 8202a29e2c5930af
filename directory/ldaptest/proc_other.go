//go:build !linux

package ldaptest

import "os/exec"

// dieWithParent is a no-op where the kernel offers no parent-death
// signal; the test's cleanup stops slapd.
func dieWithParent(*exec.Cmd) {}
