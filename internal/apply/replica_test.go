package apply

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/cadrekv/cadre/internal/auth"
	"github.com/cadrekv/cadre/internal/lease"
	"github.com/cadrekv/cadre/internal/membership"
	"github.com/cadrekv/cadre/internal/storage/mvcc"
)

const testClusterID = 0xc1

// replica is one member's state machine over a real backend file, wired
// exactly as the server wires it.
type replica struct {
	t       testing.TB
	path    string
	store   *mvcc.Store
	lessor  *lease.Lessor
	auth    *auth.Store
	alarms  *Alarms
	members *membership.Cluster
	ap      *Applier
	tokens  int // tokens issued through OnAuthenticate
}

// openReplica opens (or creates) the backend at path and recovers the
// in-memory state from it, as a member does at start. deferred turns on
// the deferred backend commit the server uses.
func openReplica(t testing.TB, path string, deferred bool) *replica {
	t.Helper()
	opts := mvcc.Options{}
	if deferred {
		// Long enough that only batch size or Sync commits.
		opts.CommitInterval, opts.CommitOps = 1<<40, 50
	}
	st, err := mvcc.Open(path, opts)
	if err != nil {
		t.Fatalf("open backend %s: %v", path, err)
	}
	r := &replica{t: t, path: path, store: st, lessor: lease.New(lease.Options{}), auth: auth.New(),
		alarms: NewAlarms(), members: membership.New(testClusterID)}
	r.ap = New(Config{Backend: storeBackend{st}, Lessor: r.lessor, Auth: r.auth, Alarms: r.alarms, Members: r.members,
		OnAuthenticate: func(string, string, uint64) { r.tokens++ }})
	if err := r.ap.Recover(testClusterID); err != nil {
		t.Fatalf("recover from %s: %v", path, err)
	}
	t.Cleanup(func() { _ = r.store.Close() })
	return r
}

type storeBackend struct{ *mvcc.Store }

func (b storeBackend) Begin() (Batch, error) {
	bt, err := b.Store.Begin()
	if err != nil {
		return nil, err
	}
	return bt, nil
}

// apply applies ents as one batch and fails the test on a state machine
// error (request errors are results, not failures).
func (r *replica) apply(ents []*raftpb.Entry) Outcome {
	r.t.Helper()
	out, err := r.ap.Apply(ents, false)
	if err != nil {
		r.t.Fatalf("apply entries %d..%d: %v", ents[0].GetIndex(), ents[len(ents)-1].GetIndex(), err)
	}
	return out
}

// applyInBatches applies ents cut at the given sizes (the rest in one).
func (r *replica) applyInBatches(ents []*raftpb.Entry, cuts []int) {
	r.t.Helper()
	for len(ents) > 0 {
		n := len(ents)
		if len(cuts) > 0 {
			n, cuts = min(max(cuts[0], 1), len(ents)), cuts[1:]
		}
		r.apply(ents[:n])
		ents = ents[n:]
	}
}

// copyTo writes a consistent copy of the backend (what a leader sends as
// a snapshot) to path.
func (r *replica) copyTo(path string) {
	r.t.Helper()
	sn, err := r.store.OpenSnapshot()
	if err != nil {
		r.t.Fatal(err)
	}
	defer sn.Close()
	f, err := os.Create(path)
	if err != nil {
		r.t.Fatal(err)
	}
	if _, err := sn.WriteTo(f); err != nil {
		r.t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		r.t.Fatal(err)
	}
}

// dump is the replica's full state as text: every bucket of the backend
// (every key revision, the meta records of leases, alarms, auth and
// membership, the applied index and compacted revision) and the in-memory
// state the applier keeps beside it (leases with their keys, alarms,
// members, auth, the mvcc index's current view).
func (r *replica) dump() string {
	r.t.Helper()
	// The file holds what compaction dropped until the background
	// deletion is done; every replica's finished file is the same.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.store.WaitCompaction(ctx); err != nil {
		r.t.Fatal(err)
	}
	var sb strings.Builder
	p := filepath.Join(r.t.TempDir(), "dump.db")
	r.copyTo(p)
	db, err := bolt.Open(p, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		r.t.Fatal(err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			return b.ForEach(func(k, v []byte) error {
				fmt.Fprintf(&sb, "bucket %s %x = %x\n", name, k, v)
				return nil
			})
		})
	})
	if err != nil {
		r.t.Fatal(err)
	}
	idx, term := r.store.Applied()
	rev, comp := r.store.Rev()
	fmt.Fprintf(&sb, "applied %d/%d rev %d compacted %d\n", idx, term, rev, comp)
	resp, err := r.store.Range(&pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}})
	if err != nil {
		r.t.Fatal(err)
	}
	for _, kv := range resp.Kvs {
		fmt.Fprintf(&sb, "live %q=%q c%d m%d v%d l%x\n", kv.Key, kv.Value, kv.CreateRevision, kv.ModRevision, kv.Version, kv.Lease)
	}
	for _, id := range r.lessor.IDs() {
		g, _ := r.lessor.Granted(id)
		fmt.Fprintf(&sb, "lease %x granted %d keys %q\n", id, g, r.lessor.Keys(id))
	}
	for _, a := range r.alarms.List() {
		fmt.Fprintf(&sb, "alarm %x %s\n", a.MemberID, a.Alarm)
	}
	fmt.Fprintf(&sb, "members %s\n", r.members.Marshal())
	fmt.Fprintf(&sb, "auth enabled %v rev %d users %v roles %v\n", r.auth.Enabled(), r.auth.Revision(),
		r.auth.UserList().Users, r.auth.RoleList().Roles)
	return sb.String()
}

// leaseKeysMatchStore checks the lessor's key sets against the keys the
// store holds with a lease: what the lessor knows must be exactly what a
// recovery from the file would find.
func (r *replica) leaseKeysMatchStore() {
	r.t.Helper()
	want, err := r.store.KeysWithLease()
	if err != nil {
		r.t.Fatal(err)
	}
	for id, ks := range want {
		got := r.lessor.Keys(id)
		sort.Slice(ks, func(i, j int) bool { return bytes.Compare(ks[i], ks[j]) < 0 })
		if !slices.EqualFunc(got, ks, bytes.Equal) {
			r.t.Fatalf("lease %x: lessor knows keys %q, the store holds %q", id, got, ks)
		}
	}
	for _, id := range r.lessor.IDs() {
		if got := r.lessor.Keys(id); len(got) > 0 && len(want[id]) == 0 {
			r.t.Fatalf("lease %x: lessor knows keys %q the store does not attach to it", id, got)
		}
	}
}

// diffDumps names the first differing line of two dumps.
func diffDumps(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < max(len(al), len(bl)); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			return fmt.Sprintf("line %d:\n  want %s\n  got  %s", i+1, x, y)
		}
	}
	return "identical"
}
