package apply

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/cadrekv/cadre/internal/lease"
	"github.com/cadrekv/cadre/internal/storage/mvcc"
)

// entries builds consecutive normal entries from index first.
func entries(first uint64, reqs ...*pb.InternalRaftRequest) []*raftpb.Entry {
	out := make([]*raftpb.Entry, len(reqs))
	for i, r := range reqs {
		r.Header = &pb.RequestHeader{ID: first + uint64(i)}
		data, err := proto.Marshal(r)
		if err != nil {
			panic(err)
		}
		out[i] = &raftpb.Entry{Type: new(raftpb.EntryNormal), Term: new(uint64(1)), Index: new(first + uint64(i)), Data: data}
	}
	return out
}

func grant(id int64) *pb.InternalRaftRequest {
	return &pb.InternalRaftRequest{LeaseGrant: &pb.LeaseGrantRequest{ID: id, TTL: 60}}
}

func putL(k string, id int64) *pb.InternalRaftRequest {
	return &pb.InternalRaftRequest{Put: &pb.PutRequest{Key: []byte(k), Value: []byte("v"), Lease: id}}
}

func revoke(id int64) *pb.InternalRaftRequest {
	return &pb.InternalRaftRequest{LeaseRevoke: &pb.LeaseRevokeRequest{ID: id}}
}

// The first defect: a revoke in the same batch as the puts that attached
// its keys (a new member replaying the log, or any member whose batch was
// cut there) must delete them, as a member applying them one by one does.
func TestRevokeSeesKeysOfItsOwnBatch(t *testing.T) {
	ents := entries(1, grant(7), putL("lk/1", 7), putL("lk/2", 7), putL("other", 0), revoke(7))
	for _, oneBatch := range []bool{true, false} {
		t.Run(fmt.Sprintf("one-batch=%v", oneBatch), func(t *testing.T) {
			r := openReplica(t, filepath.Join(t.TempDir(), "db"), true)
			if oneBatch {
				r.apply(ents)
			} else {
				r.applyInBatches(ents, []int{1, 1, 1, 1, 1})
			}
			resp, err := r.store.Range(&pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}})
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.Kvs) != 1 || string(resp.Kvs[0].Key) != "other" {
				t.Fatalf("live keys after the revoke = %v, want only \"other\"", resp.Kvs)
			}
			if r.lessor.Exists(7) {
				t.Fatal("lease 7 survived its revoke")
			}
		})
	}
}

// The second defect: a revoke of a lease with N keys is one revision whose
// N deletions are its sub-revisions, in key order (etcd's history).
func TestRevokeIsOneRevision(t *testing.T) {
	r := openReplica(t, filepath.Join(t.TempDir(), "db"), false)
	r.apply(entries(1, grant(7), putL("lk/b", 7), putL("lk/c", 7), putL("lk/a", 7), putL("keep", 0)))
	before, _ := r.store.Rev()
	out := r.apply(entries(6, revoke(7)))
	if len(out.Results) != 1 || out.Results[0].Err != nil {
		t.Fatalf("revoke result = %+v", out.Results)
	}
	after, _ := r.store.Rev()
	if after != before+1 {
		t.Fatalf("revoke of a lease with 3 keys moved the revision %d -> %d, want one revision", before, after)
	}
	resp, err := r.store.Range(&pb.RangeRequest{Key: []byte("lk/"), RangeEnd: []byte("lk0"), Revision: before})
	if err != nil || len(resp.Kvs) != 3 {
		t.Fatalf("history before the revoke = %v, %v; want the 3 keys", resp, err)
	}
	evs := watchFrom(t, r, before+1, 3)
	var got []string
	for _, ev := range evs {
		if ev.Type != mvccpb.DELETE || ev.Kv.ModRevision != after {
			t.Fatalf("revoke event %v, want DELETE at revision %d", ev, after)
		}
		got = append(got, string(ev.Kv.Key))
	}
	if fmt.Sprint(got) != "[lk/a lk/b lk/c]" {
		t.Fatalf("revoke deleted %v, want [lk/a lk/b lk/c] in key order", got)
	}
	// A revoke of a lease with no keys takes no revision; of a missing
	// lease, none either, and its proposer hears "lease not found".
	r.apply(entries(7, grant(8)))
	out = r.apply(entries(8, revoke(8), revoke(99)))
	if now, _ := r.store.Rev(); now != after {
		t.Fatalf("revoking a lease without keys moved the revision %d -> %d", after, now)
	}
	if out.Results[1].Err != lease.ErrLeaseNotFound {
		t.Fatalf("revoke of a missing lease: %v, want ErrLeaseNotFound", out.Results[1].Err)
	}
}

// watchFrom reads n events from revision rev on, as a watcher does.
func watchFrom(t *testing.T, r *replica, rev int64, n int) []*mvccpb.Event {
	t.Helper()
	ws := r.store.NewWatchStream()
	defer ws.Close()
	if _, err := ws.Watch(0, []byte{0}, []byte{0}, rev, mvcc.WatchOptions{}); err != nil {
		t.Fatal(err)
	}
	var evs []*mvccpb.Event
	timeout := time.After(5 * time.Second)
	for len(evs) < n {
		select {
		case resp := <-ws.Chan():
			if len(resp.Events) > 0 && len(evs) == 0 && len(resp.Events) != n {
				t.Fatalf("first response holds %d events, want all %d of the revision at once", len(resp.Events), n)
			}
			evs = append(evs, resp.Events...)
		case <-timeout:
			t.Fatalf("got %d of %d events in 5 s", len(evs), n)
		}
	}
	return evs
}

// A key moved to another lease, or out of any, no longer belongs to the
// old one: its revoke must not delete it.
func TestKeyMovesBetweenLeases(t *testing.T) {
	r := openReplica(t, filepath.Join(t.TempDir(), "db"), false)
	r.apply(entries(1, grant(1), grant(2), putL("a", 1), putL("b", 1), putL("a", 2), putL("b", 0),
		&pb.InternalRaftRequest{Put: &pb.PutRequest{Key: []byte("c"), Value: []byte("x"), Lease: 1}},
		&pb.InternalRaftRequest{Put: &pb.PutRequest{Key: []byte("c"), Value: []byte("y"), IgnoreLease: true}},
		revoke(1)))
	resp, _ := r.store.Range(&pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}})
	var keys []string
	for _, kv := range resp.Kvs {
		keys = append(keys, string(kv.Key))
	}
	if fmt.Sprint(keys) != "[a b]" {
		t.Fatalf("after revoking lease 1: keys %v, want [a b] (c kept lease 1 through ignore_lease)", keys)
	}
	if got := r.lessor.Keys(2); len(got) != 1 || string(got[0]) != "a" {
		t.Fatalf("lease 2 keys = %q, want [a]", got)
	}
	r.leaseKeysMatchStore()
}
