package apply

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/cadrekv/cadre/internal/storage/wal"
)

// go test ./internal/apply -run TestDeterminism -apply.seeds=200 -apply.entries=600
// runs the long mode; CI runs the fixed seeds below.
var (
	flagSeeds   = flag.Int("apply.seeds", 0, "determinism harness: number of random seeds to run (0: the fixed CI seeds)")
	flagEntries = flag.Int("apply.entries", 300, "determinism harness: entries per history")
)

func seeds() []uint64 {
	if *flagSeeds > 0 {
		out := make([]uint64, *flagSeeds)
		for i := range out {
			out[i] = uint64(1000 + i)
		}
		return out
	}
	return []uint64{1, 2, 3, 4, 5, 6, 7, 8}
}

// TestDeterminism applies one random history of every request kind along
// every path a member's state can take, and requires the full state to be
// identical on all of them:
//
//	(a) one entry per batch (the reference)
//	(b) random batch boundaries
//	(c) the whole history in one batch
//	(d) from a snapshot taken at a random point (entries the snapshot
//	    already holds are delivered again and must be skipped)
//	(e) after a crash at a random point and a replay of the real WAL
//	(f) each of the above with and without the deferred backend commit
func TestDeterminism(t *testing.T) {
	for _, seed := range seeds() {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Parallel()
			runDeterminism(t, seed, *flagEntries)
		})
	}
}

func runDeterminism(t *testing.T, seed uint64, n int) {
	dir := t.TempDir()
	ref := openReplica(t, filepath.Join(dir, "ref.db"), false)
	h := newHistory(seed, ref)
	for len(h.ents) < n {
		h.step()
	}
	ents := h.ents
	want := ref.dump()
	ref.leaseKeysMatchStore()
	rng := rand.New(rand.NewPCG(seed, 7))
	cuts := func() []int {
		var c []int
		for range len(ents) {
			c = append(c, 1+rng.IntN(40))
		}
		return c
	}
	check := func(name string, r *replica) {
		t.Helper()
		if got := r.dump(); got != want {
			t.Fatalf("seed %d, path %s: state differs from the one-entry-per-batch reference: %s\n(replay: go test ./internal/apply -run 'TestDeterminism/seed=%d$')",
				seed, name, diffDumps(want, got), seed)
		}
		r.leaseKeysMatchStore()
	}

	for _, deferred := range []bool{false, true} {
		sfx := fmt.Sprintf(" deferred=%v", deferred)

		b := openReplica(t, filepath.Join(dir, fmt.Sprintf("b-%v.db", deferred)), deferred)
		b.applyInBatches(ents, cuts())
		check("(b) random batches"+sfx, b)

		c := openReplica(t, filepath.Join(dir, fmt.Sprintf("c-%v.db", deferred)), deferred)
		c.apply(ents)
		check("(c) one batch"+sfx, c)

		// (d): a leader's copy at a random point, then the rest of the log,
		// starting somewhat before the copy's index (raft may resend).
		k := 1 + rng.IntN(len(ents)-1)
		src := openReplica(t, filepath.Join(dir, fmt.Sprintf("d-src-%v.db", deferred)), deferred)
		src.applyInBatches(ents[:k], cuts())
		snap := filepath.Join(dir, fmt.Sprintf("d-%v.db", deferred))
		src.copyTo(snap)
		d := openReplica(t, snap, deferred)
		d.applyInBatches(ents[max(k-rng.IntN(10), 0):], cuts())
		check(fmt.Sprintf("(d) snapshot at %d", k)+sfx, d)

		e := crashAndReplay(t, dir, ents, rng, deferred, cuts)
		check("(e) crash and WAL replay"+sfx, e)
	}
}

// crashAndReplay logs entries in a real WAL and applies them, is killed at
// a random point (the backend file keeps only what was committed to it,
// the WAL everything saved), restarts from both and goes on with the rest.
func crashAndReplay(t *testing.T, dir string, ents []*raftpb.Entry, rng *rand.Rand, deferred bool, cuts func() []int) *replica {
	t.Helper()
	wdir := filepath.Join(dir, fmt.Sprintf("wal-%v", deferred))
	meta, _ := json.Marshal(map[string]uint64{"member": 1})
	w, err := wal.Create(wdir, meta, wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	k := 1 + rng.IntN(len(ents)-1)
	db := filepath.Join(dir, fmt.Sprintf("e-%v.db", deferred))
	live := openReplica(t, db, deferred)
	// Entries are saved to the WAL (and fsynced) before they are applied,
	// in batches like the ready loop's.
	rest := ents[:k]
	for _, n := range cuts() {
		if len(rest) == 0 {
			break
		}
		n = min(n, len(rest))
		last := rest[n-1]
		if err := w.Save(&raftpb.HardState{Term: new(last.GetTerm()), Commit: new(last.GetIndex())}, rest[:n]); err != nil {
			t.Fatal(err)
		}
		live.apply(rest[:n])
		rest = rest[n:]
	}
	// The crash: what is on disk now is what a kill -9 leaves. A deferred
	// backend holds its last commit only; the WAL holds every entry.
	raw, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	crashed := db + ".crashed"
	if err := os.WriteFile(crashed, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	w2, rep, err := wal.Open(wdir, wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	if got := len(rep.Entries); got != k {
		t.Fatalf("WAL replay returned %d entries, %d were saved", got, k)
	}
	r := openReplica(t, crashed, deferred)
	applied, _ := r.store.Applied()
	if applied > uint64(k) {
		t.Fatalf("backend applied index %d is past the crash point %d", applied, k)
	}
	r.applyInBatches(rep.Entries, cuts())
	r.applyInBatches(ents[k:], cuts())
	return r
}
