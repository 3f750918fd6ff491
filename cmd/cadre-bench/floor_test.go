package main

import "testing"

// TestFloorProbes: each probe times real round trips (positive, p99 ≥ p50).
func TestFloorProbes(t *testing.T) {
	for name, probe := range map[string]func(int) (float64, float64, error){"loopback": loopbackRTT, "grpc": grpcRTT} {
		p50, p99, err := probe(200)
		if err != nil || p50 <= 0 || p99 < p50 {
			t.Errorf("%s: p50 %v ms, p99 %v ms, err %v", name, p50, p99, err)
		}
	}
}
