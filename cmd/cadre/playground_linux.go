package main

import (
	"os/exec"
	"syscall"
)

// stopWithParent makes the kernel stop a playground member if the
// playground itself dies without cleaning up (kill -9, a crashed terminal).
func stopWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
