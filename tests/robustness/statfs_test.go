package robustness

import (
	"syscall"
	"testing"
)

// freeBytes is the space left on the file system holding path.
func freeBytes(t *testing.T, path string) int {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		t.Fatal(err)
	}
	return int(st.Bavail) * int(st.Bsize)
}
