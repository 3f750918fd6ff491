//go:build faultinject

package join

import (
	"os"
	"syscall"
)

// CrashPoint kills this process with SIGKILL at step when CADRE_JOIN_CRASH
// names it: the robustness tests' kill -9 at an exact point of a join.
func CrashPoint(step string) {
	if os.Getenv("CADRE_JOIN_CRASH") == step {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}
}
