package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// Server CPU per request: utime+stime of every member from
// /proc/<pid>/stat, sampled just before and just after a workload. On a
// shared 2-core machine throughput follows whoever gets the CPU; the CPU a
// request costs the servers does not, so this is the noise-robust figure.

// cpuPer is how many requests a CPU row is counted per.
const cpuPer = 10_000

var clockTicks = sync.OnceValue(func() float64 {
	// USER_HZ is 100 on every Linux ABI we run on; getconf says so for
	// certain, and 100 is the fallback when it is missing.
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err != nil {
		return 100
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if err != nil || v <= 0 {
		return 100
	}
	return v
})

// parseStatCPU returns utime+stime in clock ticks from the text of
// /proc/<pid>/stat. The command name (field 2) may hold spaces and ')',
// so the fields are counted after the last ')'.
func parseStatCPU(stat string) (int64, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("no ')' in /proc stat line %q", stat)
	}
	// After ")" come field 3 (state) onwards; utime and stime are fields
	// 14 and 15, i.e. indexes 11 and 12 here.
	f := strings.Fields(stat[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc stat line has %d fields after the name, want >= 13", len(f))
	}
	u, err := strconv.ParseInt(f[11], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("utime %q: %w", f[11], err)
	}
	s, err := strconv.ParseInt(f[12], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stime %q: %w", f[12], err)
	}
	return u + s, nil
}

// procCPUSeconds is the CPU time (user + system) process pid has used.
func procCPUSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, err
	}
	t, err := parseStatCPU(string(b))
	if err != nil {
		return 0, err
	}
	return float64(t) / clockTicks(), nil
}

// cpuSample is the CPU seconds of each running member, by pid.
type cpuSample map[int]float64

func sampleCPU(ms []*member) (cpuSample, error) {
	s := cpuSample{}
	for _, m := range ms {
		pid := m.pid()
		if pid == 0 {
			continue
		}
		v, err := procCPUSeconds(pid)
		if err != nil {
			return nil, fmt.Errorf("CPU of member %s: %w", m.name, err)
		}
		s[pid] = v
	}
	return s, nil
}

// cpuSince is the CPU the same processes used between before and after;
// a member that exited or started in between makes the figure
// meaningless, so it is an error.
func cpuSince(before, after cpuSample) (float64, error) {
	if len(before) != len(after) || len(before) == 0 {
		return 0, fmt.Errorf("members changed during the workload (%d processes before, %d after)", len(before), len(after))
	}
	var sum float64
	for pid, b := range before {
		a, ok := after[pid]
		if !ok {
			return 0, fmt.Errorf("member process %d exited during the workload", pid)
		}
		sum += a - b
	}
	return sum, nil
}
