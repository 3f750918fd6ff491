package e2e

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cadrekv/cadre/tests/framework"
)

const (
	wlPut = mvccpb.PUT
	wlDel = mvccpb.DELETE
)

// TestWatchOptions checks every watch option against one fixed sequence of
// writes (r1..r8 below), live and replayed from history, plus the options
// client/v3 hides (client-chosen watch IDs, cancel, progress and fragment
// on a raw stream).
func TestWatchOptions(t *testing.T) {
	c := framework.NewCluster(t, 3, framework.Options{})
	cli := c.Client(t)
	wlNeedWatch(t, cli)
	leader := c.Leader(t)
	f1 := framework.NewClient(t, c.Members[(leader+1)%3].Endpoint())
	f2 := framework.NewClient(t, c.Members[(leader+2)%3].Endpoint())

	// Live watches, on followers, created before the writes.
	key := wlWatch(t, "key", f1, "w/a")
	prefix := wlWatch(t, "prefix", f1, "w/", clientv3.WithPrefix())
	fromKey := wlWatch(t, "from-key", f2, "w/c", clientv3.WithFromKey())
	rng := wlWatch(t, "range", f2, "w/a", clientv3.WithRange("w/b"))
	prevKV := wlWatch(t, "prev-kv", f1, "w/", clientv3.WithPrefix(), clientv3.WithPrevKV())
	noPut := wlWatch(t, "filter-put", f2, "w/", clientv3.WithPrefix(), clientv3.WithFilterPut())
	noDel := wlWatch(t, "filter-delete", f2, "w/", clientv3.WithPrefix(), clientv3.WithFilterDelete())

	r0 := currentRev(t, cli)
	r := func(i int64) int64 { return r0 + i }
	put := func(k, v string) {
		if _, err := cli.Put(bg(t), k, v); err != nil {
			t.Fatalf("put %s: %v", k, err)
		}
	}
	put("w/a", "a1") // r1
	put("w/b", "b1") // r2
	put("w/ab", "ab1")
	put("w/a", "a2")                                    // r4
	if _, err := cli.Delete(bg(t), "w/a"); err != nil { // r5
		t.Fatal(err)
	}
	txn, err := cli.Txn(bg(t)).Then( // r6: one revision, three events
		clientv3.OpPut("w/c", "c1"), clientv3.OpPut("w/d", "d1"), clientv3.OpDelete("w/b")).Commit()
	if err != nil || !txn.Succeeded || txn.Header.Revision != r(6) {
		t.Fatalf("txn: %v %v, want revision %d", err, txn, r(6))
	}
	put("x/out", "o1") // r7
	put("w/z", "z1")   // r8
	if got := currentRev(t, cli); got != r(8) {
		t.Fatalf("revision %d after the writes, want %d", got, r(8))
	}

	pa1 := wlEv{typ: wlPut, key: "w/a", value: "a1", rev: r(1), create: r(1), version: 1}
	pb1 := wlEv{typ: wlPut, key: "w/b", value: "b1", rev: r(2), create: r(2), version: 1}
	pab := wlEv{typ: wlPut, key: "w/ab", value: "ab1", rev: r(3), create: r(3), version: 1}
	pa2 := wlEv{typ: wlPut, key: "w/a", value: "a2", rev: r(4), create: r(1), version: 2}
	da := wlEv{typ: wlDel, key: "w/a", rev: r(5)}
	pc := wlEv{typ: wlPut, key: "w/c", value: "c1", rev: r(6), create: r(6), version: 1}
	pd := wlEv{typ: wlPut, key: "w/d", value: "d1", rev: r(6), create: r(6), version: 1}
	db := wlEv{typ: wlDel, key: "w/b", rev: r(6)}
	po := wlEv{typ: wlPut, key: "x/out", value: "o1", rev: r(7), create: r(7), version: 1}
	pz := wlEv{typ: wlPut, key: "w/z", value: "z1", rev: r(8), create: r(8), version: 1}
	withPrev := func(e wlEv, prev string) wlEv { e.hasPrev, e.prev = true, prev; return e }
	all := []wlEv{pa1, pb1, pab, pa2, da, pc, pd, db, pz}

	check := func(w *wlWatcher, want []wlEv) {
		t.Helper()
		evs := w.waitN(len(want), 10*time.Second)
		time.Sleep(50 * time.Millisecond) // let a wrong extra event arrive
		evs, respOf, _, _, _ := w.snapshot()
		wlCheckAtomic(t, w.name, evs, respOf)
		wlCompare(t, w.name, evs, want)
	}
	check(key, []wlEv{pa1, pa2, da})
	check(prefix, all)
	check(fromKey, []wlEv{pc, pd, po, pz})
	check(rng, []wlEv{pa1, pab, pa2, da})
	check(prevKV, []wlEv{pa1, pb1, pab, withPrev(pa2, "a1"), withPrev(da, "a2"), pc, pd, withPrev(db, "b1"), pz})
	check(noPut, []wlEv{da, db})
	check(noDel, []wlEv{pa1, pb1, pab, pa2, pc, pd, pz})

	// History replay, from the first and from a middle revision.
	check(wlWatch(t, "history", cli, "w/", clientv3.WithPrefix(), clientv3.WithRev(r(1))), all)
	check(wlWatch(t, "history-prev-kv", f2, "w/", clientv3.WithPrefix(), clientv3.WithRev(r(4)), clientv3.WithPrevKV()),
		[]wlEv{withPrev(pa2, "a1"), withPrev(da, "a2"), pc, pd, withPrev(db, "b1"), pz})

	// Progress: the answer on the stream carries the current revision.
	if err := f1.RequestProgress(ctxFor(t, opTimeout)); err != nil {
		t.Fatalf("request progress: %v", err)
	}
	eventually(t, 5*time.Second, "progress notification at revision "+wlItoa(r(8)), func() error {
		_, _, progress, _, _ := prefix.snapshot()
		for _, p := range progress {
			if p == r(8) {
				return nil
			}
		}
		return errors.New("progress notifications so far: " + wlRevs(progress))
	})

	// Cancel: closing the context closes the channel (stop fails otherwise).
	key.stop()
	if _, _, _, closed, err := key.snapshot(); !closed || err != nil {
		t.Fatalf("cancelled watch: closed %v, err %v", closed, err)
	}

	t.Run("raw-stream", func(t *testing.T) { testWatchRawStream(t, cli, r(1), r(8)) })
}

func wlItoa(i int64) string { return strconv.FormatInt(i, 10) }

func wlRevs(revs []int64) string {
	parts := make([]string, len(revs))
	for i, r := range revs {
		parts[i] = wlItoa(r)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// wlRecv reads one response from a raw watch stream, bounded.
func wlRecv(t *testing.T, s pb.Watch_WatchClient) *pb.WatchResponse {
	t.Helper()
	type res struct {
		r   *pb.WatchResponse
		err error
	}
	ch := make(chan res, 1)
	go func() { r, err := s.Recv(); ch <- res{r, err} }()
	select {
	case x := <-ch:
		if x.err != nil {
			t.Fatalf("watch stream recv: %v", x.err)
		}
		return x.r
	case <-time.After(10 * time.Second):
		t.Fatal("watch stream: no response within 10s")
		return nil
	}
}

// testWatchRawStream uses the gRPC Watch stream directly for what client/v3
// does not expose. The keys w/ hold r1..r8 of TestWatchOptions.
func testWatchRawStream(t *testing.T, cli *clientv3.Client, r1, r8 int64) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := pb.NewWatchClient(cli.ActiveConnection()).Watch(ctx)
	if err != nil {
		t.Fatalf("open watch stream: %v", err)
	}
	send := func(req *pb.WatchRequest) {
		t.Helper()
		if err := s.Send(req); err != nil {
			t.Fatalf("send %v: %v", req, err)
		}
	}
	create := func(cr *pb.WatchCreateRequest) {
		t.Helper()
		send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: cr}})
	}

	// A client-chosen watch ID is used as is.
	create(&pb.WatchCreateRequest{Key: []byte("w/"), RangeEnd: []byte("w0"), StartRevision: r1, WatchId: 100})
	if resp := wlRecv(t, s); !resp.Created || resp.Canceled || resp.WatchId != 100 {
		t.Fatalf("create with watch_id 100: %v", resp)
	}
	var evs []*mvccpb.Event
	for range 20 {
		if len(evs) >= 9 {
			break
		}
		resp := wlRecv(t, s)
		if resp.WatchId != 100 || resp.Canceled {
			t.Fatalf("history of watch 100: unexpected response %v", resp)
		}
		evs = append(evs, resp.Events...)
	}
	if len(evs) != 9 || evs[0].Kv.ModRevision != r1 || evs[8].Kv.ModRevision != r8 || string(evs[8].Kv.Key) != "w/z" {
		t.Fatalf("history of watch 100: %d events %v, want 9 from revision %d to %d", len(evs), evs, r1, r8)
	}

	// Progress while watch 100 is synced: watch ID -1 and the current
	// revision (etcd answers only through a live watcher).
	send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_ProgressRequest{ProgressRequest: &pb.WatchProgressRequest{}}})
	if resp := wlRecv(t, s); resp.WatchId != clientv3.InvalidWatchID || resp.Header.Revision != r8 || len(resp.Events) != 0 || resp.Created || resp.Canceled {
		t.Fatalf("progress: %v, want watch_id -1 at revision %d", resp, r8)
	}

	// The same ID again is refused: created and cancelled, watch ID -1.
	create(&pb.WatchCreateRequest{Key: []byte("w/a"), WatchId: 100})
	if resp := wlRecv(t, s); !resp.Created || !resp.Canceled || resp.WatchId != clientv3.InvalidWatchID ||
		resp.CancelReason != "mvcc: duplicate watch ID provided on the WatchStream" {
		t.Fatalf("duplicate watch_id 100: %v, want created+canceled, watch_id -1, reason naming the duplicate ID", resp)
	}

	// Cancel is confirmed with the watch ID.
	send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CancelRequest{CancelRequest: &pb.WatchCancelRequest{WatchId: 100}}})
	if resp := wlRecv(t, s); !resp.Canceled || resp.WatchId != 100 || len(resp.Events) != 0 {
		t.Fatalf("cancel watch 100: %v", resp)
	}

	// Fragment: three 1 MiB values replayed together exceed the server's
	// response limit (max-request-bytes plus gRPC overhead, 2 MiB by
	// default) and must arrive split, every part but the last flagged.
	big := bytes.Repeat([]byte("x"), 1<<20)
	var first int64
	for i := range 3 {
		p, err := cli.Put(bg(t), "big/"+wlItoa(int64(i)), string(big))
		if err != nil {
			t.Fatalf("put 1 MiB value: %v", err)
		}
		if i == 0 {
			first = p.Header.Revision
		}
	}
	create(&pb.WatchCreateRequest{Key: []byte("big/"), RangeEnd: []byte("big0"), StartRevision: first, Fragment: true, WatchId: 200})
	if resp := wlRecv(t, s); !resp.Created || resp.WatchId != 200 {
		t.Fatalf("create fragmented watch 200: %v", resp)
	}
	evs = nil
	parts := 0
	for range 10 {
		resp := wlRecv(t, s)
		parts++
		if resp.WatchId != 200 {
			t.Fatalf("fragmented watch: response for watch %d", resp.WatchId)
		}
		evs = append(evs, resp.Events...)
		if !resp.Fragment {
			break
		}
	}
	if parts < 2 || len(evs) != 3 {
		t.Fatalf("fragmented watch: %d events in %d responses, want 3 events in >= 2 responses", len(evs), parts)
	}
	for i, ev := range evs {
		if ev.Kv.ModRevision != first+int64(i) || !bytes.Equal(ev.Kv.Value, big) {
			t.Fatalf("fragmented watch: event %d at revision %d (%d bytes), want revision %d", i, ev.Kv.ModRevision, len(ev.Kv.Value), first+int64(i))
		}
	}
	// client/v3 joins the fragments back into one response. The member that
	// serves the watch must hold all three revisions first (a linearizable
	// read on the same connection), or the last one would arrive live, in a
	// response of its own, which is correct but not what is checked here.
	pinned := framework.NewClient(t, cli.Endpoints()[0])
	if _, err := pinned.Get(bg(t), "big/", clientv3.WithPrefix(), clientv3.WithCountOnly()); err != nil {
		t.Fatalf("linearizable read before the fragmented watch: %v", err)
	}
	w := wlWatch(t, "fragment", pinned, "big/", clientv3.WithPrefix(), clientv3.WithRev(first), clientv3.WithFragment())
	w.waitN(3, 10*time.Second)
	if _, respOf, _, _, _ := w.snapshot(); len(respOf) != 3 || respOf[0] != respOf[2] {
		t.Fatalf("client/v3 WithFragment: events in responses %v, want one response", respOf)
	}
}

// TestWatchCompacted: a watch from before the compacted revision is
// cancelled with compact_revision and ErrCompacted on every member; a watch
// from the compacted revision itself replays from there.
func TestWatchCompacted(t *testing.T) {
	c := framework.NewCluster(t, 3, framework.Options{})
	cli := c.Client(t)
	wlNeedWatch(t, cli)
	var revs []int64
	for i := range 5 {
		p, err := cli.Put(bg(t), "cw/k", "v"+wlItoa(int64(i)))
		if err != nil {
			t.Fatal(err)
		}
		revs = append(revs, p.Header.Revision)
	}
	R := revs[3]
	if _, err := cli.Compact(bg(t), R, clientv3.WithCompactPhysical()); err != nil {
		t.Fatalf("compact %d: %v", R, err)
	}
	for _, m := range c.Members {
		mc := framework.NewClient(t, m.Endpoint())
		// A linearizable read makes the member apply up to the compaction.
		if _, err := mc.Get(bg(t), "cw/k"); err != nil {
			t.Fatalf("get on %s: %v", m.Name, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var got []clientv3.WatchResponse
		for resp := range mc.Watch(ctx, "cw/k", clientv3.WithRev(R-1)) {
			got = append(got, resp)
			if len(got) > 5 {
				break
			}
		}
		timedOut := ctx.Err() != nil
		cancel()
		if len(got) != 1 || got[0].CompactRevision != R || !got[0].Canceled || len(got[0].Events) != 0 ||
			!errors.Is(got[0].Err(), rpctypes.ErrCompacted) {
			t.Fatalf("watch from %d on %s (compacted at %d): %d responses %+v, want one cancelled with compact_revision %d and ErrCompacted",
				R-1, m.Name, R, len(got), got, R)
		}
		if timedOut {
			t.Fatalf("watch from a compacted revision on %s: channel not closed within 10s", m.Name)
		}
	}
	w := wlWatch(t, "from-compacted-rev", cli, "cw/k", clientv3.WithRev(R))
	wlCompare(t, w.name, w.waitN(2, 10*time.Second), []wlEv{
		{typ: wlPut, key: "cw/k", value: "v3", rev: R, create: revs[0], version: 4},
		{typ: wlPut, key: "cw/k", value: "v4", rev: revs[4], create: revs[0], version: 5},
	})
	if _, err := cli.Get(bg(t), "cw/k", clientv3.WithRev(R-1)); !errors.Is(err, rpctypes.ErrCompacted) {
		t.Fatalf("get at compacted revision %d: %v, want ErrCompacted", R-1, err)
	}
}
