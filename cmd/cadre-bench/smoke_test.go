package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestSmoke runs `cadre-bench -smoke` in-process (Cadre only, tiny loads)
// so the harness cannot rot. It checks that every row of the table carries
// a Cadre figure; it never asserts a timing.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-member cluster and runs every workload for ~2 s; skipped with -short")
	}
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	code := run([]string{"-smoke", "-out", out}, &stdout, &stderr)
	t.Logf("stdout:\n%s", stdout.String())
	if code != 0 {
		t.Fatalf("cadre-bench -smoke exited %d; stderr:\n%s", code, stderr.String())
	}

	// The machine's floor is measured and reported with every run.
	if !strings.Contains(stdout.String(), "floor of put, 1 client, 3 members") || !strings.Contains(stdout.String(), "gRPC unary round trip") {
		t.Errorf("the report lacks the machine's floor")
	}
	lines := strings.Split(stdout.String(), "\n")
	for _, row := range rows() {
		var line string
		for _, l := range lines {
			if strings.HasPrefix(l, row.Name+" ") {
				line = l
			}
		}
		if line == "" {
			t.Errorf("table has no row %q", row.Name)
			continue
		}
		// Columns after the name: unit, etcd, Cadre, ratio, better, target.
		f := strings.Fields(line[len(row.Name):])
		if len(f) < 5 {
			t.Errorf("row %q has %d columns after its name, want >= 5: %q", row.Name, len(f), line)
			continue
		}
		if f[1] != "-" {
			t.Errorf("row %q: etcd column %q, want \"-\" in a Cadre-only run", row.Name, f[1])
		}
		if _, err := strconv.ParseFloat(f[2], 64); err != nil {
			t.Errorf("row %q: Cadre column %q is not a number (workload failed?): %q", row.Name, f[2], line)
		}
	}

	b, err := os.ReadFile(filepath.Join(out, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var sum struct {
		Machine machine  `json:"machine"`
		Results *results `json:"results"`
	}
	if err := json.Unmarshal(b, &sum); err != nil {
		t.Fatalf("summary.json: %v", err)
	}
	if sum.Machine.Cores < 1 || sum.Machine.FsyncIters != 200 || sum.Machine.FsyncP99ms <= 0 {
		t.Errorf("machine summary incomplete: %+v", sum.Machine)
	}
	for _, row := range rows() {
		if _, ok := sum.Results.Values["cadre"][row.Key]; !ok {
			t.Errorf("summary.json has no Cadre value for %s", row.Key)
		}
	}
	if t.Failed() {
		t.Logf("stderr:\n%s", stderr.String())
	}
}
