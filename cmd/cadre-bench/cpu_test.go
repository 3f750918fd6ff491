package main

import (
	"os"
	"testing"
	"time"
)

// TestParseStatCPU: utime and stime are found after the command name even
// when the name holds spaces and ')'.
func TestParseStatCPU(t *testing.T) {
	line := "4242 (cadre (m1) x) S 1 4242 4242 0 -1 4194560 900 0 0 0 1234 567 0 0 20 0 12 0 100 0 0\n"
	got, err := parseStatCPU(line)
	if err != nil || got != 1234+567 {
		t.Errorf("parseStatCPU = %d, %v; want %d", got, err, 1234+567)
	}
	for _, bad := range []string{"", "4242 cadre S 1", "4242 (cadre) S 1 2 3"} {
		if _, err := parseStatCPU(bad); err == nil {
			t.Errorf("parseStatCPU(%q) gave no error", bad)
		}
	}
}

// TestProcCPUSecondsCountsWork: this process's CPU time grows while it
// spins (bounded: at most 5 s of spinning), and cpuSince sums it.
func TestProcCPUSecondsCountsWork(t *testing.T) {
	pid := os.Getpid()
	before, err := procCPUSeconds(pid)
	if err != nil {
		t.Fatal(err)
	}
	end := time.Now().Add(5 * time.Second)
	after := before
	for x := 0; after <= before && time.Now().Before(end); x++ {
		for i := range 1_000_000 {
			x ^= i
		}
		if after, err = procCPUSeconds(pid); err != nil {
			t.Fatal(err)
		}
	}
	if after <= before {
		t.Fatalf("CPU time did not grow after spinning: %v -> %v s", before, after)
	}
	used, err := cpuSince(cpuSample{pid: before}, cpuSample{pid: after})
	if err != nil || used != after-before {
		t.Errorf("cpuSince = %v, %v; want %v", used, err, after-before)
	}
	if _, err := cpuSince(cpuSample{pid: before}, cpuSample{pid + 1: after}); err == nil {
		t.Errorf("cpuSince over a different process gave no error")
	}
}
