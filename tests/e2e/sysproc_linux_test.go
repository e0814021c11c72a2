package e2e

import "syscall"

// sysProcAttr puts a process in its own group, so that killing the group
// also kills anything it started, and has the kernel kill it if the test
// binary dies without running its cleanups (a test timeout, a signal).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
