//go:build unix && !linux

package e2e

import "syscall"

// sysProcAttr puts a process in its own group, so that killing the group
// also kills anything it started. Without Linux's parent-death signal, a
// test binary killed before its cleanups leaves its processes running.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
