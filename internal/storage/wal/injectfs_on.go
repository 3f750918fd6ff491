//go:build faultinject

package wal

import "os"

// In a faultinject build, CADRE_WAL_FAULTS=1 puts every WAL behind a
// control file (FaultControlFile) the robustness suite writes to.
func init() {
	if os.Getenv("CADRE_WAL_FAULTS") == "" {
		return
	}
	defaultFS = func(dir string) fileSystem { return newControlledFS(FaultControlFile(dir)) }
}
