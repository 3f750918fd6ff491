package e2e

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cadrekv/cadre/tests/framework"
)

// lsPut puts key with a lease.
func lsPut(t *testing.T, cli *clientv3.Client, key string, id clientv3.LeaseID) {
	t.Helper()
	if _, err := cli.Put(bg(t), key, "v", clientv3.WithLease(id)); err != nil {
		t.Fatalf("put %s with lease %x: %v", key, id, err)
	}
}

// lsWaitGone polls key until it is gone. It fails the test if the key goes
// before notBefore (the lease expired early) or is still there at deadline.
func lsWaitGone(t *testing.T, cli *clientv3.Client, key string, notBefore, deadline time.Time) time.Time {
	t.Helper()
	for range 1000 {
		r, err := cli.Get(bg(t), key)
		now := time.Now()
		if err != nil {
			t.Fatalf("get %s: %v", key, err)
		}
		if len(r.Kvs) == 0 {
			if now.Before(notBefore) {
				t.Fatalf("%s deleted %v too early: its lease expired before its TTL", key, notBefore.Sub(now))
			}
			return now
		}
		if now.After(deadline) {
			t.Fatalf("%s still present %v after its lease should have expired", key, now.Sub(deadline))
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: polling bound reached", key)
	return time.Time{}
}

// lsExpired fails the test unless the lease is gone: TimeToLive answers
// TTL -1 and granted TTL 0 without error, as etcd does for an unknown lease
// (etcdctl prints "already expired" only for that pair).
func lsExpired(t *testing.T, cli *clientv3.Client, id clientv3.LeaseID) {
	t.Helper()
	r, err := cli.TimeToLive(bg(t), id)
	if err != nil || r.TTL != -1 || r.GrantedTTL != 0 || r.ID != id {
		t.Fatalf("time-to-live of lease %x that should be gone: %v %+v, want TTL -1, granted TTL 0", id, err, r)
	}
}

// TestLeaseBasics: grant (server-assigned and client-chosen IDs, minimum
// TTL), put with a lease, time-to-live with keys, list, keep-alive once and
// as a stream through a follower, revoke and expiry deleting the keys.
func TestLeaseBasics(t *testing.T) {
	c := framework.NewCluster(t, 3, framework.Options{})
	cli := c.Client(t)
	wlNeedLease(t, cli)
	leader := c.Leader(t)
	fol := framework.NewClient(t, c.Members[(leader+1)%3].Endpoint())

	// Short leases first, so their clocks run while the rest is checked.
	ka, err := cli.Grant(bg(t), 3)
	if err != nil || ka.TTL != 3 {
		t.Fatalf("grant TTL 3: %v %+v", err, ka)
	}
	ex, err := fol.Grant(bg(t), 3)
	exGranted := time.Now()
	if err != nil || ex.TTL != 3 {
		t.Fatalf("grant TTL 3 through a follower: %v %+v", err, ex)
	}
	lsPut(t, cli, "/lease/ka", ka.ID)
	lsPut(t, cli, "/lease/ex", ex.ID)
	kaCtx, stopKA := lsContext(t, 30*time.Second)
	kaCh, err := fol.KeepAlive(kaCtx, ka.ID)
	if err != nil {
		t.Fatalf("keep-alive stream through a follower: %v", err)
	}
	kaResps := make(chan int, 1)
	go func() {
		n := 0
		for r := range kaCh {
			if r.ID == ka.ID && r.TTL == 3 {
				n++
			}
		}
		kaResps <- n
	}()

	g, err := cli.Grant(bg(t), 60)
	if err != nil || g.ID == 0 || g.TTL != 60 {
		t.Fatalf("grant TTL 60: %v %+v", err, g)
	}
	// A client-chosen ID, through the raw Lease service.
	const chosen = 0x0c0ffee
	lc := pb.NewLeaseClient(cli.ActiveConnection())
	cr, err := lc.LeaseGrant(bg(t), &pb.LeaseGrantRequest{ID: chosen, TTL: 60})
	if err != nil || cr.ID != chosen || cr.TTL != 60 {
		t.Fatalf("grant ID %x: %v %v", chosen, err, cr)
	}
	if _, err := lc.LeaseGrant(bg(t), &pb.LeaseGrantRequest{ID: chosen, TTL: 60}); !errors.Is(rpctypes.Error(err), rpctypes.ErrLeaseExist) {
		t.Fatalf("grant ID %x twice: %v, want %v", chosen, err, rpctypes.ErrLeaseExist)
	}
	// TTLs under the minimum (1.5 election timeouts, rounded up: 2 s with
	// the default 1 s election timeout) are raised to it.
	if m, err := cli.Grant(bg(t), 1); err != nil || m.TTL != 2 {
		t.Fatalf("grant TTL 1: %v %+v, want TTL raised to 2", err, m)
	}

	lsPut(t, cli, "/lease/a", g.ID)
	lsPut(t, cli, "/lease/b", g.ID)
	lsPut(t, cli, "/lease/c", chosen)
	if r, err := fol.Get(bg(t), "/lease/a"); err != nil || len(r.Kvs) != 1 || r.Kvs[0].Lease != int64(g.ID) {
		t.Fatalf("get /lease/a: %v %v, want lease %x", err, r, g.ID)
	}
	if _, err := cli.Put(bg(t), "/lease/x", "v", clientv3.WithLease(0x7777)); !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		t.Fatalf("put with an unknown lease: %v, want %v", err, rpctypes.ErrLeaseNotFound)
	}

	ttl, err := fol.TimeToLive(bg(t), g.ID, clientv3.WithAttachedKeys())
	if err != nil || ttl.ID != g.ID || ttl.GrantedTTL != 60 || ttl.TTL < 55 || ttl.TTL > 60 {
		t.Fatalf("time-to-live through a follower: %v %+v", err, ttl)
	}
	var keys []string
	for _, k := range ttl.Keys {
		keys = append(keys, string(k))
	}
	slices.Sort(keys)
	if !slices.Equal(keys, []string{"/lease/a", "/lease/b"}) {
		t.Fatalf("attached keys %q, want [/lease/a /lease/b]", keys)
	}
	if ttl, err := cli.TimeToLive(bg(t), g.ID); err != nil || len(ttl.Keys) != 0 {
		t.Fatalf("time-to-live without WithAttachedKeys: %v, keys %q", err, ttl.Keys)
	}

	ls, err := fol.Leases(bg(t))
	if err != nil {
		t.Fatalf("leases: %v", err)
	}
	var ids []clientv3.LeaseID
	for _, l := range ls.Leases {
		ids = append(ids, l.ID)
	}
	for _, id := range []clientv3.LeaseID{g.ID, chosen, ka.ID, ex.ID} {
		if !slices.Contains(ids, id) {
			t.Fatalf("leases %x: %x missing", ids, id)
		}
	}

	if r, err := fol.KeepAliveOnce(bg(t), g.ID); err != nil || r.ID != g.ID || r.TTL != 60 {
		t.Fatalf("keep-alive once through a follower: %v %+v", err, r)
	}

	// Revoke deletes the attached keys, on every member.
	if _, err := cli.Revoke(bg(t), g.ID); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	for _, k := range []string{"/lease/a", "/lease/b"} {
		if r, err := fol.Get(bg(t), k); err != nil || len(r.Kvs) != 0 {
			t.Fatalf("%s after revoke: %v %v", k, err, r)
		}
	}
	lsExpired(t, fol, g.ID)
	if _, err := cli.Revoke(bg(t), g.ID); !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		t.Fatalf("revoke twice: %v, want %v", err, rpctypes.ErrLeaseNotFound)
	}
	if _, err := cli.KeepAliveOnce(bg(t), g.ID); !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		t.Fatalf("keep-alive of a revoked lease: %v, want %v", err, rpctypes.ErrLeaseNotFound)
	}
	if _, err := fol.Revoke(bg(t), chosen); err != nil {
		t.Fatalf("revoke %x through a follower: %v", chosen, err)
	}
	if v, ok := mustGet(t, cli, "/lease/c"); ok {
		t.Fatalf("/lease/c after revoke: %q", v)
	}

	// Expiry: the lease nobody keeps alive goes after its 3 s, not before
	// 2 s (etcd checks expiry every 500 ms), and takes its key with it.
	lsWaitGone(t, cli, "/lease/ex", exGranted.Add(2*time.Second), exGranted.Add(10*time.Second))
	lsExpired(t, cli, ex.ID)

	// The lease kept alive through the follower outlives its TTL twice over.
	time.Sleep(time.Until(exGranted.Add(6 * time.Second)))
	if r, err := cli.TimeToLive(bg(t), ka.ID); err != nil || r.TTL <= 0 {
		t.Fatalf("lease kept alive for 6 s with TTL 3: %v %+v", err, r)
	}
	if _, ok := mustGet(t, cli, "/lease/ka"); !ok {
		t.Fatal("/lease/ka gone while its lease was kept alive")
	}
	stopKA()
	stopped := time.Now()
	n := <-kaResps
	if n < 3 {
		t.Fatalf("%d keep-alive responses with TTL 3 in 6 s, want >= 3 (one per TTL/3)", n)
	}
	// The last keep-alive was at most TTL/3 = 1 s before the stop.
	lsWaitGone(t, cli, "/lease/ka", stopped.Add(time.Second), stopped.Add(10*time.Second))
	lsExpired(t, cli, ka.ID)
}

// TestLeaseSurvivesLeaderChange: a lease keeps its remaining TTL across a
// leader kill: it does not expire early and (Cadre) does not get its full
// TTL back. etcd v3.7.3 checkpoints remaining TTLs only for leases longer
// than its fixed 5-minute checkpoint interval, so against etcd the lease is
// renewed to its full TTL + one election timeout; Cadre must do better, as
// issue 4 asks.
func TestLeaseSurvivesLeaderChange(t *testing.T) {
	c := framework.NewCluster(t, 3, framework.Options{})
	cli := c.Client(t)
	wlNeedLease(t, cli)
	leader := c.Leader(t)

	g, err := cli.Grant(bg(t), 15)
	if err != nil {
		t.Fatalf("grant: %v", err)
	}
	lsPut(t, cli, "/ls/k", g.ID)
	if r, err := cli.KeepAliveOnce(bg(t), g.ID); err != nil || r.TTL != 15 {
		t.Fatalf("keep-alive once: %v %+v", err, r)
	}
	time.Sleep(4 * time.Second)
	r1, err := cli.TimeToLive(bg(t), g.ID)
	if err != nil || r1.TTL < 9 || r1.TTL > 11 {
		t.Fatalf("time-to-live 4 s after a keep-alive of a 15 s lease: %v %+v, want 9..11", err, r1)
	}

	c.Members[leader].Kill(t)
	if nl := c.Leader(t); nl == leader {
		t.Fatal("killed leader still leads")
	}
	live := liveClient(t, c)
	r2, err := live.TimeToLive(bg(t), g.ID)
	measured := time.Now()
	if err != nil || r2.GrantedTTL != 15 || r2.TTL <= 0 {
		t.Fatalf("time-to-live after the leader change: %v %+v, want the lease alive", err, r2)
	}
	// The new leader may add one election timeout (1 s) to the remaining
	// TTL, as etcd does; one more second covers rounding.
	if framework.IsCadre() && r2.TTL > r1.TTL+2 {
		t.Fatalf("remaining TTL %d s after the leader change, %d s before it: the lease got its TTL back", r2.TTL, r1.TTL)
	}
	if r2.TTL > 15+2 {
		t.Fatalf("remaining TTL %d s after the leader change exceeds the granted 15 s + election timeout", r2.TTL)
	}
	t.Logf("remaining TTL %d s before the leader change, %d s after", r1.TTL, r2.TTL)
	// No more keep-alives: it expires about r2.TTL from now, not earlier.
	lsWaitGone(t, live, "/ls/k", measured.Add(time.Duration(r2.TTL-2)*time.Second), measured.Add(time.Duration(r2.TTL+4)*time.Second))
	lsExpired(t, live, g.ID)
}

// lsContext is a bounded context with its cancel, also cancelled
// at the end of the test.
func lsContext(t *testing.T, d time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx, cancel
}
