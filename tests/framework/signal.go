package framework

import "syscall"

// Signal sends sig to the member's process (nothing if it is not running).
func (m *Member) Signal(sig syscall.Signal) error { return m.signal(sig) }
