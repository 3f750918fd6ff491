// Package robustness runs traffic against real Cadre clusters while it
// injects faults, then checks what etcd's robustness suite checks: the KV
// history is linearizable, no acknowledged write is lost, watches are
// ordered, complete and the same from every member, replicas hash equal,
// every member serves again within 10 s, and the keys of a revoked lease
// never come back. See docs/ROBUSTNESS.md.
package robustness

import (
	"flag"
	"os"
	"testing"

	"github.com/cadrekv/cadre/tests/framework"
)

var (
	flagRuns = flag.Int("robustness.runs", 12, "number of seeded runs (the CI tier runs 12; the long tier e.g. 200)")
	flagSeed = flag.Int64("robustness.seed", 0, "run this one seed only (replays a failure)")
)

// The fault-injection build: a member started with CADRE_WAL_FAULTS=1 fails
// its WAL writes on demand (wal.FaultControlFile).
func TestMain(m *testing.M) { os.Exit(framework.Main(m, "faultinject")) }
