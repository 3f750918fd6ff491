package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// The lease workload measures what a lease costs at scale: a revoke must
// cost the same whatever the keyspace size, and many leases expiring at
// once must not stall the writes around them.
const (
	leaseCount     = 100 // leases expiring together
	leaseKeysEach  = 10  // keys attached to each
	leaseTTL       = 5   // seconds; above both servers' minimum (1.5 election timeouts)
	revokeSamples  = 20
	expiryClients  = 8
	expiryMaxWait  = 30 * time.Second
	loadTxnOps     = 100 // puts per loading txn (etcd's --max-txn-ops is 128)
	loadGoroutines = 16
)

func (w *workloads) leases(ctx context.Context) error {
	cli, err := newClient(endpoints(w.c.running()))
	if err != nil {
		return err
	}
	defer cli.Close()
	small, err := revokeCost(ctx, cli, "lease-small")
	if err != nil {
		return err
	}
	w.logf("revoke (%d keys) at a small keyspace: median %.2f ms", leaseKeysEach, small)
	w.set("lease.revoke.small", small)

	k := w.b.p.LeaseKeyspace
	start := time.Now()
	if err := loadKeys(ctx, cli, k); err != nil {
		return err
	}
	w.logf("loaded %d keys in %v", k, time.Since(start).Round(time.Millisecond))
	large, err := revokeCost(ctx, cli, "lease-large")
	if err != nil {
		return err
	}
	w.logf("revoke (%d keys) at %d keys: median %.2f ms", leaseKeysEach, k, large)
	w.set("lease.revoke.large", large)

	p99, gone, errs, err := expiryUnderLoad(ctx, cli, endpoints(w.c.running()))
	if err != nil {
		return err
	}
	w.logf("%d leases expiring over %d keys: put p99 %.2f ms, all leased keys gone after %.1f s, %d put errors", leaseCount, k, p99, gone, errs)
	w.set("lease.expiry.p99", p99)
	w.set("lease.expiry.gone", gone)
	w.set("lease.expiry.errors", float64(errs))
	return nil
}

// revokeCost is the median latency of revoking a lease with ten keys.
func revokeCost(ctx context.Context, cli *clientv3.Client, prefix string) (float64, error) {
	var ms []float64
	for i := range revokeSamples {
		l, err := cli.Grant(ctx, 600)
		if err != nil {
			return 0, fmt.Errorf("%w: grant: %v", ErrLoad, err)
		}
		for j := range leaseKeysEach {
			if _, err := cli.Put(ctx, fmt.Sprintf("%s/%d/%d", prefix, i, j), "v", clientv3.WithLease(l.ID)); err != nil {
				return 0, fmt.Errorf("%w: put with lease: %v", ErrLoad, err)
			}
		}
		t := time.Now()
		if _, err := cli.Revoke(ctx, l.ID); err != nil {
			return 0, fmt.Errorf("%w: revoke: %v", ErrLoad, err)
		}
		ms = append(ms, float64(time.Since(t).Microseconds())/1000)
	}
	slices.Sort(ms)
	return ms[len(ms)/2], nil
}

// loadKeys writes n keys without a lease, in txns of many puts.
func loadKeys(ctx context.Context, cli *clientv3.Client, n int) error {
	return putBatched(ctx, cli, n, func(i int) string { return fmt.Sprintf("lease-bulk/%08d", i) }, strings.Repeat("v", 100))
}

// putBatched writes key(i) = val for i in [0, n), in txns of loadTxnOps
// puts from loadGoroutines goroutines.
func putBatched(ctx context.Context, cli *clientv3.Client, n int, key func(int) string, val string) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, loadGoroutines)
	for range loadGoroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				from := int(next.Add(loadTxnOps)) - loadTxnOps
				if from >= n || ctx.Err() != nil {
					return
				}
				ops := make([]clientv3.Op, 0, loadTxnOps)
				for i := from; i < min(from+loadTxnOps, n); i++ {
					ops = append(ops, clientv3.OpPut(key(i), val))
				}
				tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				_, err := cli.Txn(tctx).Then(ops...).Commit()
				cancel()
				if err != nil {
					errc <- fmt.Errorf("%w: loading keys: %v", ErrLoad, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

// expiryUnderLoad grants leaseCount leases with leaseKeysEach keys each,
// lets them expire together, and measures puts of other clients from the
// grants until every leased key is gone (bounded).
func expiryUnderLoad(ctx context.Context, cli *clientv3.Client, eps []string) (p99, goneS float64, errs int, err error) {
	var ids []clientv3.LeaseID
	for i := range leaseCount {
		l, err := cli.Grant(ctx, leaseTTL)
		if err != nil {
			return 0, 0, 0, fmt.Errorf("%w: grant: %v", ErrLoad, err)
		}
		ids = append(ids, l.ID)
		ops := make([]clientv3.Op, 0, leaseKeysEach)
		for j := range leaseKeysEach {
			ops = append(ops, clientv3.OpPut(fmt.Sprintf("lease-exp/%03d/%d", i, j), "v", clientv3.WithLease(l.ID)))
		}
		if _, err := cli.Txn(ctx).Then(ops...).Commit(); err != nil {
			return 0, 0, 0, fmt.Errorf("%w: attach: %v", ErrLoad, err)
		}
	}
	granted := time.Now()

	lctx, stop := context.WithCancel(ctx)
	defer stop()
	var mu sync.Mutex
	var lat []time.Duration
	var nerr atomic.Int64
	var wg sync.WaitGroup
	for c := range expiryClients {
		pc, err := newClient(eps)
		if err != nil {
			return 0, 0, 0, err
		}
		defer pc.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; lctx.Err() == nil && i < 1_000_000; i++ {
				rctx, cancel := context.WithTimeout(lctx, 2*time.Second)
				t := time.Now()
				_, err := pc.Put(rctx, fmt.Sprintf("lease-load/%d/%d", c, i%100), "v")
				d := time.Since(t)
				cancel()
				if lctx.Err() != nil {
					return
				}
				if err != nil {
					// A failed put counts at the time it failed too: a
					// stall must not vanish from the p99 as errors.
					nerr.Add(1)
				}
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			}
		}()
	}
	// Poll until the leased keys are gone, then keep the load one more
	// second so the tail of the revokes is measured too.
	deadline := time.Now().Add(leaseTTL*time.Second + expiryMaxWait)
	goneAt := time.Time{}
	for time.Now().Before(deadline) && ctx.Err() == nil {
		r, err := cli.Get(ctx, "lease-exp/", clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err == nil && r.Count == 0 {
			goneAt = time.Now()
			break
		}
		_ = sleepCtx(ctx, 100*time.Millisecond)
	}
	_ = sleepCtx(ctx, time.Second)
	stop()
	wg.Wait()
	if goneAt.IsZero() {
		return 0, 0, 0, fmt.Errorf("%w: leased keys still present %v after the grants", ErrLoad, time.Since(granted).Round(time.Second))
	}
	if len(lat) == 0 {
		return 0, 0, 0, fmt.Errorf("%w: no put succeeded during the expiry", ErrLoad)
	}
	return pctMS(lat, 99), goneAt.Sub(granted).Seconds(), int(nerr.Load()), nil
}
