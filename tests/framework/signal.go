package framework

import (
	"strings"
	"syscall"
)

// Signal sends sig to the member's process (nothing if it is not running).
func (m *Member) Signal(sig syscall.Signal) error { return m.signal(sig) }

// WithoutFlag returns a copy of args without --name (as "--name", "--name v"
// for a value flag is not supported: boolean flags only, or "--name=v").
func WithoutFlag(args []string, name string) []string {
	var out []string
	for _, a := range args {
		t := strings.TrimLeft(a, "-")
		if len(t) != len(a) && (t == name || strings.HasPrefix(t, name+"=")) {
			continue
		}
		out = append(out, a)
	}
	return out
}

// Pid returns the member's process ID, 0 if it is not running.
func (m *Member) Pid() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil || m.cmd.Process == nil || m.state != nil {
		return 0
	}
	return m.cmd.Process.Pid
}
