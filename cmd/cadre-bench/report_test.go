package main

import (
	"math"
	"strings"
	"testing"
)

// TestFloorRatios: each latency row is divided by its own floor, every
// row with a floor is in milliseconds, and rows without one get none.
func TestFloorRatios(t *testing.T) {
	m := machine{PutFloorMS: 0.2, GRPCP50ms: 0.05}
	r := newResults()
	r.set("etcd", "put1.p50", 1.0)
	r.set("cadre", "put1.p50", 0.8)
	r.set("cadre", "watch.p99", 2.0)
	r.set("cadre", "put1.rps", 1000)
	fr := floorRatios(m, r)
	if got := fr["put1.p50"]; got.Floor != floorPut || math.Abs(got.Ratio["etcd"]-5) > 1e-9 || math.Abs(got.Ratio["cadre"]-4) > 1e-9 {
		t.Errorf("put1.p50 against the put floor: %+v", got)
	}
	if got := fr["watch.p99"]; got.Floor != floorGRPC || math.Abs(got.Ratio["cadre"]-40) > 1e-9 {
		t.Errorf("watch.p99 against the gRPC floor: %+v", got)
	}
	if _, ok := fr["put1.rps"]; ok {
		t.Errorf("a throughput row got a floor ratio")
	}
	for _, row := range rows() {
		if floorOf(row.Key) != "" && row.Unit != "ms" {
			t.Errorf("row %s has a floor but unit %q", row.Key, row.Unit)
		}
	}
	table := r.table(map[string]bool{"put1": true}, m, 0)
	var row string
	for _, l := range strings.Split(table, "\n") {
		if strings.HasPrefix(l, "put, 1 client: p50 ") {
			row = l
		}
	}
	if f := strings.Fields(strings.TrimPrefix(row, "put, 1 client: p50")); len(f) < 6 || f[4] != "5.0x" || f[5] != "4.0x" {
		t.Errorf("table row lacks etcd/floor 5.0x and Cadre/floor 4.0x: %q", row)
	}
	if !strings.Contains(table, "gRPC unary round trip p50") {
		t.Errorf("table legend does not say which floor the other latencies use:\n%s", table)
	}
}
