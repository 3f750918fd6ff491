package server

import (
	"runtime/debug"
	"time"
)

// Returning the heap of a burst of writes to the OS once the member is quiet.
//
// Why: under a burst the Go heap grows to about twice what stays live
// (GOGC=100), and afterwards the runtime hands the difference back only
// gradually (its background scavenger paces itself over minutes), so a
// member that took a burst sits near its peak RSS long after it. A
// control-plane member shares its machine; what it no longer uses should
// go back at once. One forced collection when the writes stop does that;
// it costs one GC cycle per burst, on a member with nothing else to do.
const (
	memTrimTick  = 500 * time.Millisecond // a tick without an applied entry is "quiet"
	memTrimAfter = 10000                  // entries applied since the last trim that make a burst
)

// memTrimmer decides when to trim; the loop feeds it the applied index
// every tick.
type memTrimmer struct {
	last, trimmed uint64
	trim          func()
}

// tick reports whether it trimmed: when at least memTrimAfter entries were
// applied since the last trim and none since the previous tick.
func (m *memTrimmer) tick(applied uint64) bool {
	quiet := applied == m.last
	m.last = applied
	if !quiet || applied < m.trimmed+memTrimAfter {
		return false
	}
	m.trim()
	m.trimmed = applied
	return true
}

func (s *Server) memTrimLoop() {
	applied, _ := s.store.Applied()
	m := &memTrimmer{last: applied, trimmed: applied, trim: debug.FreeOSMemory}
	t := time.NewTicker(memTrimTick)
	defer t.Stop()
	for {
		select {
		case <-s.stopping:
			return
		case <-t.C:
		}
		applied, _ := s.store.Applied()
		start := time.Now()
		if m.tick(applied) {
			s.lg.Debug("returned the free heap of a burst of writes to the OS", "applied-index", applied, "took", time.Since(start).String())
		}
	}
}
