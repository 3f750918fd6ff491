package mvcc

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

func TestRevisionSemantics(t *testing.T) {
	s := openTest(t)
	if cur, comp := s.Rev(); cur != 1 || comp != 0 {
		t.Fatalf("empty store Rev() = %d, %d; want 1, 0", cur, comp)
	}
	steps := []struct {
		name    string
		do      func() int64 // returns the response revision
		wantRev int64
		want    *kvState // state of "a" afterwards; nil = absent
	}{
		{"first put", func() int64 { return put(t, s, "a", "1") }, 2, &kvState{2, 2, 1, 0, "1"}},
		{"second put", func() int64 { return put(t, s, "a", "2") }, 3, &kvState{2, 3, 2, 0, "2"}},
		{"delete", func() int64 { return del(t, s, "a", "").Header.Revision }, 4, nil},
		{"delete missing keeps revision", func() int64 { return del(t, s, "a", "").Header.Revision }, 4, nil},
		{"put after delete starts new life", func() int64 { return put(t, s, "a", "3") }, 5, &kvState{5, 5, 1, 0, "3"}},
		{"put other key", func() int64 { return put(t, s, "b", "x") }, 6, &kvState{5, 5, 1, 0, "3"}},
	}
	for _, st := range steps {
		if rev := st.do(); rev != st.wantRev {
			t.Fatalf("%s: response revision %d, want %d", st.name, rev, st.wantRev)
		}
		if cur, _ := s.Rev(); cur != st.wantRev {
			t.Fatalf("%s: Rev() %d, want %d", st.name, cur, st.wantRev)
		}
		kv := get(t, s, "a", 0)
		switch {
		case st.want == nil && kv != nil:
			t.Fatalf("%s: a = %v, want absent", st.name, kv)
		case st.want != nil && (kv == nil || stateOf(kv) != *st.want):
			t.Fatalf("%s: a = %v, want %+v", st.name, kv, *st.want)
		}
	}
}

func TestBatchOpsEachTakeARevision(t *testing.T) {
	s := openTest(t)
	apply(t, s, func(b *Batch) {
		for i, k := range []string{"a", "b", "a"} {
			if r := mustPut(t, b, k, "v", 7).Header.Revision; r != int64(i+2) {
				t.Fatalf("put %d: revision %d, want %d", i, r, i+2)
			}
		}
		d, err := b.DeleteRange(&pb.DeleteRangeRequest{Key: []byte("zz")})
		if err != nil || d.Deleted != 0 || d.Header.Revision != 4 {
			t.Fatalf("no-op delete: %v, %v; want 0 deleted at revision 4", d, err)
		}
		if b.Rev() != 4 {
			t.Fatalf("batch Rev() %d, want 4", b.Rev())
		}
	})
	if kv := get(t, s, "a", 0); stateOf(kv) != (kvState{2, 4, 2, 7, "v"}) {
		t.Fatalf("a = %v", kv)
	}
}

func TestPutOptions(t *testing.T) {
	s := openTest(t)
	apply(t, s, func(b *Batch) { mustPut(t, b, "k", "v1", 5) })
	apply(t, s, func(b *Batch) {
		r, err := b.Put(&pb.PutRequest{Key: []byte("k"), Value: []byte("v2"), PrevKv: true})
		if err != nil || r.PrevKv == nil || string(r.PrevKv.Value) != "v1" || r.PrevKv.Lease != 5 {
			t.Fatalf("prev_kv put: %v, %v", r, err)
		}
		// ignore_value keeps the value, sets the new lease.
		if _, err := b.Put(&pb.PutRequest{Key: []byte("k"), IgnoreValue: true, Lease: 9}); err != nil {
			t.Fatal(err)
		}
		// ignore_lease keeps the lease, sets the new value.
		if _, err := b.Put(&pb.PutRequest{Key: []byte("k"), Value: []byte("v3"), IgnoreLease: true}); err != nil {
			t.Fatal(err)
		}
		r, err = b.Put(&pb.PutRequest{Key: []byte("new"), Value: []byte("x"), PrevKv: true})
		if err != nil || r.PrevKv != nil {
			t.Fatalf("prev_kv of new key: %v, %v", r.PrevKv, err)
		}
		for _, req := range []*pb.PutRequest{
			{Key: []byte("missing"), IgnoreValue: true},
			{Key: []byte("missing"), Value: []byte("x"), IgnoreLease: true},
		} {
			if _, err := b.Put(req); !errors.Is(err, ErrKeyNotFound) {
				t.Fatalf("Put(%v) = %v, want ErrKeyNotFound", req, err)
			}
		}
		if b.Rev() != 6 {
			t.Fatalf("failed puts took a revision: %d, want 6", b.Rev())
		}
	})
	if kv := get(t, s, "k", 0); stateOf(kv) != (kvState{2, 5, 4, 9, "v3"}) {
		t.Fatalf("k = %+v", stateOf(kv))
	}
	if get(t, s, "missing", 0) != nil {
		t.Fatal("failed put created the key")
	}
}

func TestDeleteRangePrevKV(t *testing.T) {
	s := openTest(t)
	for _, k := range []string{"a", "b", "c", "d"} {
		put(t, s, k, "v"+k)
	}
	r := del(t, s, "b", "d")
	if r.Deleted != 2 || !slices.Equal(keysOf(r.PrevKvs), []string{"b", "c"}) || string(r.PrevKvs[1].Value) != "vc" || r.Header.Revision != 6 {
		t.Fatalf("DeleteRange = %v", r)
	}
	got, _ := s.Range(&pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}})
	if !slices.Equal(keysOf(got.Kvs), []string{"a", "d"}) {
		t.Fatalf("after delete: %v", keysOf(got.Kvs))
	}
	// Both deletions share revision 6 with sub revisions 0 and 1.
	if k, _ := s.Range(&pb.RangeRequest{Key: []byte("b"), Revision: 5}); len(k.Kvs) != 1 {
		t.Fatal("b should exist at revision 5")
	}
	if r := del(t, s, "\x00", "\x00"); r.Deleted != 2 {
		t.Fatalf("delete all = %d, want 2", r.Deleted)
	}
}

func TestReopenRestoresEverything(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	apply(t, s, func(b *Batch) {
		mustPut(t, b, "a", "1", 0)
		mustPut(t, b, "b", "2", 3)
		b.SetMeta("cluster", []byte("c1"))
		b.SetApplied(10, 2)
	})
	del(t, s, "a", "")
	apply(t, s, func(b *Batch) {
		b.SetMeta("gone", []byte("x"))
		b.SetMeta("gone", nil)
		b.SetApplied(12, 3)
	})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(path); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("db file mode: %v, %v; want 0600", info.Mode(), err)
	}
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if cur, _ := s.Rev(); cur != 4 {
		t.Fatalf("Rev after reopen = %d, want 4", cur)
	}
	if i, tm := s.Applied(); i != 12 || tm != 3 {
		t.Fatalf("Applied = %d, %d; want 12, 3", i, tm)
	}
	if v, err := s.Meta("cluster"); err != nil || string(v) != "c1" {
		t.Fatalf("Meta(cluster) = %q, %v", v, err)
	}
	if v, err := s.Meta("gone"); err != nil || v != nil {
		t.Fatalf("Meta(gone) = %q, %v; want nil", v, err)
	}
	if get(t, s, "a", 0) != nil || stateOf(get(t, s, "a", 2)) != (kvState{2, 2, 1, 0, "1"}) {
		t.Fatal("history of a not restored")
	}
	if kv := get(t, s, "b", 0); stateOf(kv) != (kvState{3, 3, 1, 3, "2"}) {
		t.Fatalf("b = %+v", stateOf(kv))
	}
	// Writes continue from the restored state.
	if r := put(t, s, "a", "x"); r != 5 || get(t, s, "a", 0).CreateRevision != 5 {
		t.Fatalf("put after reopen at %d", r)
	}
	if r := put(t, s, "b", "y"); r != 6 || get(t, s, "b", 0).Version != 2 {
		t.Fatalf("put b after reopen: version %d", get(t, s, "b", 0).Version)
	}
	if s.Size() <= 0 || s.SizeInUse() <= 0 || s.SizeInUse() > s.Size() {
		t.Fatalf("Size %d, SizeInUse %d", s.Size(), s.SizeInUse())
	}
}

func TestReadersSeeOnlyCommittedState(t *testing.T) {
	s := openTest(t)
	apply(t, s, func(b *Batch) {
		mustPut(t, b, "a", "old", 0)
		b.SetApplied(1, 1)
	})
	b, err := s.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Begin(); !errors.Is(err, ErrBatchOpen) {
		t.Fatalf("second Begin = %v, want ErrBatchOpen", err)
	}
	mustPut(t, b, "a", "new", 0)
	mustPut(t, b, "b", "new", 0)
	b.SetMeta("m", []byte("v"))
	b.SetApplied(2, 1)
	if got := b.Meta("m"); string(got) != "v" {
		t.Fatalf("batch Meta = %q", got)
	}
	if r, err := b.Range(&pb.RangeRequest{Key: []byte("b")}); err != nil || len(r.Kvs) != 1 {
		t.Fatalf("batch Range should see its own write: %v %v", r, err)
	}
	check := func(wantVal string, wantRev int64, wantIdx uint64) {
		t.Helper()
		kv := get(t, s, "a", 0)
		if string(kv.Value) != wantVal {
			t.Fatalf("a = %q, want %q", kv.Value, wantVal)
		}
		if cur, _ := s.Rev(); cur != wantRev {
			t.Fatalf("Rev = %d, want %d", cur, wantRev)
		}
		if i, _ := s.Applied(); i != wantIdx {
			t.Fatalf("Applied = %d, want %d", i, wantIdx)
		}
	}
	done := make(chan struct{})
	go func() { // readers on another goroutine during the open batch
		defer close(done)
		r, err := s.Range(&pb.RangeRequest{Key: []byte("b")})
		if err != nil || len(r.Kvs) != 0 || r.Header.Revision != 2 {
			t.Errorf("concurrent reader saw %v, %v", r, err)
		}
	}()
	<-done
	check("old", 2, 1)
	if m, _ := s.Meta("m"); m != nil {
		t.Fatal("uncommitted meta visible")
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	check("new", 4, 2)
	if _, err := b.Put(&pb.PutRequest{Key: []byte("x")}); !errors.Is(err, ErrBatchDone) {
		t.Fatalf("Put after Commit = %v, want ErrBatchDone", err)
	}

	// Abort discards everything.
	b, err = s.Begin()
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, b, "a", "aborted", 0)
	b.Abort()
	check("new", 4, 2)
	put(t, s, "c", "1") // the next batch starts from committed state
	if kv := get(t, s, "a", 0); kv.ModRevision != 3 {
		t.Fatalf("aborted write leaked: %v", kv)
	}
}

// TestConcurrentReadersNeverSeePartialBatch checks atomic publication under
// load: every batch writes the same value to two keys and sometimes
// compacts; readers must always see both keys equal.
func TestConcurrentReadersNeverSeePartialBatch(t *testing.T) {
	s := openTest(t)
	put(t, s, "x", "0")
	put(t, s, "y", "0")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			deadline := time.Now().Add(5 * time.Second)
			for i := 0; i < 100000 && time.Now().Before(deadline); i++ {
				select {
				case <-stop:
					return
				default:
				}
				r, err := s.Range(&pb.RangeRequest{Key: []byte("x"), RangeEnd: []byte("z")})
				if err != nil {
					t.Errorf("Range: %v", err)
					return
				}
				if len(r.Kvs) != 2 || !bytes.Equal(r.Kvs[0].Value, r.Kvs[1].Value) || r.Kvs[0].ModRevision > r.Header.Revision {
					t.Errorf("partial batch visible: %v", r)
					return
				}
			}
		}()
	}
	for i := range 200 {
		v := []byte{byte(i)}
		apply(t, s, func(b *Batch) {
			_, err := b.Txn(&pb.TxnRequest{Success: []*pb.RequestOp{
				{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("x"), Value: v}}},
				{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("y"), Value: v}}},
			}})
			if err != nil {
				t.Fatal(err)
			}
			if i%20 == 19 {
				if _, err := b.Compact(b.Rev() - 1); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
	close(stop)
	wg.Wait()
}

func TestSnapshotRoundTrip(t *testing.T) {
	src := openTest(t)
	put(t, src, "a", "1")
	put(t, src, "b", "2")
	del(t, src, "a", "")
	apply(t, src, func(b *Batch) {
		mustPut(t, b, "c", "3", 0)
		b.SetMeta("members", []byte("m1"))
		b.SetApplied(42, 7)
	})
	apply(t, src, func(b *Batch) {
		if _, err := b.Compact(3); err != nil {
			t.Fatal(err)
		}
	})

	dst := openTest(t)
	put(t, dst, "stale", "x") // replaced entirely
	snapPath := filepath.Join(t.TempDir(), "snap.db")
	f, err := os.Create(snapPath)
	if err != nil {
		t.Fatal(err)
	}
	sn, err := src.OpenSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	if sn.Index != 42 || sn.Term != 7 {
		t.Fatalf("snapshot applied = %d/%d, want 42/7", sn.Index, sn.Term)
	}
	sn.Close()
	n, err := src.WriteSnapshot(f)
	if err != nil || n != src.Size() {
		t.Fatalf("WriteSnapshot = %d, %v; want %d bytes", n, err, src.Size())
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := dst.ReplaceWith(snapPath); err != nil {
		t.Fatal(err)
	}
	all := &pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}}
	want, _ := src.Range(all)
	got, _ := dst.Range(all)
	if !slices.Equal(keysOf(got.Kvs), []string{"b", "c"}) || got.Header.Revision != want.Header.Revision {
		t.Fatalf("replaced store: %v, want %v", got, want)
	}
	for i := range want.Kvs {
		if stateOf(got.Kvs[i]) != stateOf(want.Kvs[i]) {
			t.Fatalf("kv %d: %+v, want %+v", i, stateOf(got.Kvs[i]), stateOf(want.Kvs[i]))
		}
	}
	if i, tm := dst.Applied(); i != 42 || tm != 7 {
		t.Fatalf("Applied = %d/%d", i, tm)
	}
	if m, _ := dst.Meta("members"); string(m) != "m1" {
		t.Fatalf("Meta = %q", m)
	}
	if _, c := dst.Rev(); c != 3 {
		t.Fatalf("compacted = %d, want 3", c)
	}
	if r := put(t, dst, "d", "4"); r != 6 {
		t.Fatalf("write after install at %d, want 6", r)
	}

	// A file that is not a store is rejected and the store keeps working.
	bad := filepath.Join(t.TempDir(), "bad.db")
	if err := os.WriteFile(bad, []byte("not a database"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := dst.ReplaceWith(bad); err == nil {
		t.Fatal("ReplaceWith(garbage) succeeded")
	}
	if get(t, dst, "d", 0) == nil {
		t.Fatal("store unusable after rejected snapshot")
	}
}

func TestClosedStore(t *testing.T) {
	s := openTest(t)
	b, err := s.Begin()
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, b, "a", "1", 0)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(); !errors.Is(err, ErrBatchDone) {
		t.Fatalf("Commit after Close = %v, want ErrBatchDone", err)
	}
	if _, err := s.Range(&pb.RangeRequest{Key: []byte("a")}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Range after Close = %v", err)
	}
	if _, err := s.Begin(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Begin after Close = %v", err)
	}
}

// TestPutKeepsHistoryWhicheverEntryItClaims covers the three ways a put
// takes its key's index entry (claim): a new key, a key an earlier batch
// wrote, and a key this batch wrote already. Every version must stay
// readable at its revision with the right create revision and version,
// prev_kv must be the version before, and the published index must not
// change before Commit.
func TestPutKeepsHistoryWhicheverEntryItClaims(t *testing.T) {
	s := openTest(t)
	put(t, s, "old", "v1") // rev 2
	b, err := s.Begin()
	if err != nil {
		t.Fatal(err)
	}
	// "new" is put from a buffer the caller then reuses: the index must
	// keep its own copy of the key.
	putNew := func(val string) {
		buf := []byte("new")
		if _, err := b.Put(&pb.PutRequest{Key: buf, Value: []byte(val)}); err != nil {
			t.Fatal(err)
		}
		copy(buf, "zzz")
	}
	putNew("n1")                                                                              // rev 3: a new key
	mustPut(t, b, "old", "v2", 0)                                                             // rev 4: an earlier batch's key
	putNew("n2")                                                                              // rev 5: this batch's key
	resp, err := b.Put(&pb.PutRequest{Key: []byte("old"), Value: []byte("v3"), PrevKv: true}) // rev 6
	if err != nil {
		t.Fatal(err)
	}
	if pv := resp.PrevKv; pv == nil || string(pv.Value) != "v2" || pv.ModRevision != 4 {
		t.Fatalf("prev_kv = %v, want v2 at 4", pv)
	}
	if kv := get(t, s, "old", 0); string(kv.Value) != "v1" || get(t, s, "new", 0) != nil {
		t.Fatal("the open batch's writes are visible before Commit")
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	for _, w := range []struct {
		key, val         string
		rev, create, mod int64
		version          int64
	}{
		{"old", "v1", 2, 2, 2, 1},
		{"old", "v1", 3, 2, 2, 1},
		{"new", "n1", 3, 3, 3, 1},
		{"old", "v2", 4, 2, 4, 2},
		{"new", "n1", 4, 3, 3, 1},
		{"new", "n2", 5, 3, 5, 2},
		{"old", "v3", 6, 2, 6, 3},
		{"new", "n2", 0, 3, 5, 2},
	} {
		kv := get(t, s, w.key, w.rev)
		if kv == nil || string(kv.Value) != w.val || kv.CreateRevision != w.create || kv.ModRevision != w.mod || kv.Version != w.version {
			t.Fatalf("%s@%d = %v, want %s created %d modified %d version %d", w.key, w.rev, kv, w.val, w.create, w.mod, w.version)
		}
	}
	if kv := get(t, s, "new", 2); kv != nil {
		t.Fatalf("new@2 = %v, want none", kv)
	}
}
