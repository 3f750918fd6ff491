//go:build !faultinject

package join

// CrashPoint is a no-op outside faultinject builds (see crash_on.go).
func CrashPoint(string) {}
