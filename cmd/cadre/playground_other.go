//go:build !linux

package main

import "os/exec"

// stopWithParent has no portable equivalent outside Linux; there the
// playground relies on its own signal handling.
func stopWithParent(cmd *exec.Cmd) {}
