package e2etest

import "syscall"

// sysProcAttr kills the child if the test binary dies without cleanup.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
