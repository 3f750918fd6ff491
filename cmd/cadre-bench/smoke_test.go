package main

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestSmoke runs `cadre-bench -smoke -scale 2000` in-process (Cadre only,
// tiny loads; the scale rows add ~15 s) so the harness cannot rot. It
// checks that every row of the table carries a Cadre figure, and every
// latency row its ratio to the floor; it never asserts a timing.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-member cluster and runs every workload for ~2 s; skipped with -short")
	}
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	code := run([]string{"-smoke", "-scale", "2000", "-out", out}, &stdout, &stderr)
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
		// Columns after the name: unit, etcd, Cadre, ratio, then for a
		// latency row etcd/floor and Cadre/floor, then better, target.
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
		if floorOf(row.Key) != "" {
			if len(f) < 6 || !strings.HasSuffix(f[5], "x") {
				t.Errorf("latency row %q has no Cadre/floor column: %q", row.Name, line)
			} else if _, err := strconv.ParseFloat(strings.TrimSuffix(f[5], "x"), 64); err != nil {
				t.Errorf("latency row %q: Cadre/floor %q is not a number: %q", row.Name, f[5], line)
			}
		}
	}

	b, err := os.ReadFile(filepath.Join(out, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var sum struct {
		Machine machine               `json:"machine"`
		Results *results              `json:"results"`
		Floors  map[string]floorRatio `json:"floor_ratios"`
	}
	if err := json.Unmarshal(b, &sum); err != nil {
		t.Fatalf("summary.json: %v", err)
	}
	if sum.Machine.Cores < 1 || sum.Machine.FsyncIters != 200 || sum.Machine.FsyncP99ms <= 0 {
		t.Errorf("machine summary incomplete: %+v", sum.Machine)
	}
	for _, row := range rows() {
		v, ok := sum.Results.Values["cadre"][row.Key]
		if !ok {
			t.Errorf("summary.json has no Cadre value for %s", row.Key)
		}
		kind := floorOf(row.Key)
		if kind == "" || !ok {
			continue
		}
		fr, ok := sum.Floors[row.Key]
		want := sum.Machine.floorMS(kind)
		if !ok || fr.Floor != kind || fr.FloorMS != want || want <= 0 || math.Abs(fr.Ratio["cadre"]-v/want) > 1e-9*v/want {
			t.Errorf("summary.json floor ratio of %s = %+v; want %s floor %v ms, ratio %v", row.Key, fr, kind, want, v/want)
		}
	}
	if t.Failed() {
		t.Logf("stderr:\n%s", stderr.String())
	}
}
