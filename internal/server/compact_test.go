package server

import (
	"testing"
	"time"

	"github.com/cadrekv/cadre/internal/config"
)

func TestAutoCompactionRevisionMode(t *testing.T) {
	s := &Server{cfg: &config.Config{AutoCompactionMode: "revision", AutoCompactionRetention: "100"}}
	period, next := s.autoCompaction()
	if next == nil || period != time.Second {
		t.Fatalf("revision mode not enabled: %v", period)
	}
	now := time.Now()
	for _, tc := range []struct{ rev, compacted, want int64 }{
		{50, 0, 0},     // nothing older than the retention yet
		{105, 0, 0},    // 5 compactable revisions: below the 10-revision step
		{110, 0, 10},   // exactly one step
		{500, 10, 400}, // keep the last 100
		{505, 400, 0},  // not a full step since the last compaction
	} {
		if got := next(now, tc.rev, tc.compacted); got != tc.want {
			t.Errorf("rev %d compacted %d: target %d, want %d", tc.rev, tc.compacted, got, tc.want)
		}
	}
}

func TestAutoCompactionPeriodicMode(t *testing.T) {
	s := &Server{cfg: &config.Config{AutoCompactionMode: "periodic", AutoCompactionRetention: "10s"}}
	period, next := s.autoCompaction()
	if next == nil || period != time.Second {
		t.Fatalf("periodic mode: period %v", period)
	}
	t0 := time.Unix(1000, 0)
	// Revisions observed once a second; the target is what was seen 10s ago.
	var got int64
	for i := int64(0); i <= 12; i++ {
		got = next(t0.Add(time.Duration(i)*time.Second), 100+i*10, 0)
		if i < 10 && got != 0 {
			t.Fatalf("compacted at %ds, before the retention had passed: %d", i, got)
		}
	}
	if want := int64(100 + 2*10); got != want {
		t.Fatalf("after 12s: target %d, want %d (the revision seen 10s before)", got, want)
	}
	if h := (&Server{cfg: &config.Config{AutoCompactionMode: "periodic", AutoCompactionRetention: "1"}}); true {
		if p, n := h.autoCompaction(); n == nil || p != 6*time.Minute {
			t.Fatalf("retention 1 (hour): period %v", p)
		}
	}
	if _, n := (&Server{cfg: &config.Config{AutoCompactionRetention: "0"}}).autoCompaction(); n != nil {
		t.Fatal("retention 0 must disable automatic compaction")
	}
}
