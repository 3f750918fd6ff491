package mvcc

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestWatcherSetMatch: the range watchers a key matches are found by the
// index exactly as a scan of every watcher finds them, for prefixes,
// nested and overlapping ranges, from-key ranges and single keys, across
// adds and deletes.
func TestWatcherSetMatch(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	ws := newWatcherSet()
	var all []*watcher
	key := func() []byte { return fmt.Appendf(nil, "k%03d", rng.IntN(200)) }
	for round := range 400 {
		switch {
		case len(all) > 0 && rng.IntN(4) == 0:
			i := rng.IntN(len(all))
			ws.delete(all[i])
			all = slices.Delete(all, i, i+1)
		default:
			w := &watcher{key: key()}
			switch rng.IntN(4) {
			case 0: // single key
			case 1:
				w.end = []byte{0} // from key on
			default:
				end := key()
				if string(end) <= string(w.key) {
					end = append(slices.Clone(w.key), 0)
				}
				w.end = end
			}
			ws.add(w)
			all = append(all, w)
		}
		for range 20 {
			k := key()
			var got, want []*watcher
			ws.match(k, func(w *watcher) { got = append(got, w) })
			for _, w := range all {
				if w.matches(k) {
					want = append(want, w)
				}
			}
			byPtr := func(a, b *watcher) int { return cmpPtr(a, b) }
			slices.SortFunc(got, byPtr)
			slices.SortFunc(want, byPtr)
			if !slices.Equal(got, want) {
				t.Fatalf("round %d, key %s: matched %d watchers, want %d", round, k, len(got), len(want))
			}
		}
	}
}

func cmpPtr(a, b *watcher) int {
	pa, pb := fmt.Sprintf("%p", a), fmt.Sprintf("%p", b)
	switch {
	case pa < pb:
		return -1
	case pa > pb:
		return 1
	}
	return 0
}

// BenchmarkWatcherMatchRanges matches one event against 1,000 prefix
// watchers on distinct prefixes (Kubernetes-style: one per resource).
func BenchmarkWatcherMatchRanges(b *testing.B) {
	ws := newWatcherSet()
	for i := range 1000 {
		ws.add(&watcher{key: fmt.Appendf(nil, "/registry/r%04d/", i), end: fmt.Appendf(nil, "/registry/r%04d0", i)})
	}
	key := []byte("/registry/r0500/ns/pod-1")
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		ws.match(key, func(*watcher) { n++ })
	}
	if n == 0 {
		b.Fatal("no match")
	}
}
