package server

import "testing"

// TestMemTrimOncePerBurstWhenQuiet: the heap is trimmed only after a burst
// (memTrimAfter entries since the last trim) and only once writes stop,
// and not again until the next burst.
func TestMemTrimOncePerBurstWhenQuiet(t *testing.T) {
	trims := 0
	m := &memTrimmer{last: 100, trimmed: 100, trim: func() { trims++ }}
	steps := []struct {
		applied uint64
		want    int // trims so far
	}{
		{100, 0},                     // quiet, no burst
		{100 + memTrimAfter/2, 0},    // writing
		{100 + memTrimAfter/2, 0},    // quiet, burst too small
		{100 + memTrimAfter + 5, 0},  // writing: a burst, not yet quiet
		{100 + memTrimAfter + 5, 1},  // quiet: trim
		{100 + memTrimAfter + 5, 1},  // still quiet: once per burst
		{100 + memTrimAfter + 50, 1}, // a trickle of writes
		{100 + memTrimAfter + 50, 1}, // quiet, trickle is no burst
		{100 + 2*memTrimAfter + 5, 1},
		{100 + 2*memTrimAfter + 5, 2}, // next burst, quiet again
	}
	for i, st := range steps {
		m.tick(st.applied)
		if trims != st.want {
			t.Fatalf("step %d (applied %d): %d trims, want %d", i, st.applied, trims, st.want)
		}
	}
}
