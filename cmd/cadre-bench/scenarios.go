package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Per-request timeout of the sequential writer in the write-gap
// scenarios: short, so a stalled request does not hide a recovery.
const gapRequestTimeout = 100 * time.Millisecond

// watchResult is event latency from the put being issued to a watcher
// receiving its event (like the benchmark tool's watch-latency).
type watchResult struct {
	P50, P99         float64 // ms
	Events, Expected int
}

// runWatch opens watchers spread over keys and over every endpoint (one
// connection per endpoint), then puts at rate per second for d; each value
// carries its send time.
func runWatch(ctx context.Context, eps []string, watchers, keys, rate int, d time.Duration) (watchResult, error) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var clis []*clientv3.Client
	for _, ep := range eps {
		c, err := newClient([]string{ep})
		if err != nil {
			return watchResult{}, err
		}
		defer c.Close()
		clis = append(clis, c)
	}
	var mu sync.Mutex
	var lat []time.Duration
	created := make(chan error, watchers)
	var wg sync.WaitGroup
	for i := range watchers {
		cli := clis[i%len(clis)]
		key := fmt.Sprintf("watch/%04d", i%keys)
		wch := cli.Watch(clientv3.WithRequireLeader(wctx), key, clientv3.WithCreatedNotify())
		wg.Add(1)
		go func() {
			defer wg.Done()
			first := true
			for wr := range wch {
				if first {
					first = false
					created <- wr.Err()
					continue
				}
				now := time.Now()
				for _, ev := range wr.Events {
					ts, _, _ := strings.Cut(string(ev.Kv.Value), "|")
					ns, err := strconv.ParseInt(ts, 10, 64)
					if err != nil {
						continue
					}
					mu.Lock()
					lat = append(lat, now.Sub(time.Unix(0, ns)))
					mu.Unlock()
				}
			}
			if first {
				created <- errors.New("watch channel closed before creation")
			}
		}()
	}
	createDeadline := time.After(60 * time.Second)
	for range watchers {
		select {
		case err := <-created:
			if err != nil {
				return watchResult{}, fmt.Errorf("%w: creating watchers: %v", ErrLoad, err)
			}
		case <-createDeadline:
			return watchResult{}, fmt.Errorf("%w: %d watchers not created within 60 s", ErrLoad, watchers)
		case <-ctx.Done():
			return watchResult{}, ctx.Err()
		}
	}

	writer, err := newClient(eps)
	if err != nil {
		return watchResult{}, err
	}
	defer writer.Close()
	pad := value(240)
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	puts := 0
	end := time.Now().Add(d)
	for time.Now().Before(end) && puts < rate*int(d.Seconds()+1) {
		select {
		case <-ctx.Done():
			return watchResult{}, ctx.Err()
		case <-tick.C:
		}
		pctx, pcancel := context.WithTimeout(ctx, opTimeout)
		_, err := writer.Put(pctx, fmt.Sprintf("watch/%04d", puts%keys), strconv.FormatInt(time.Now().UnixNano(), 10)+"|"+pad)
		pcancel()
		if err == nil {
			puts++
		}
	}
	// Give late events a moment, then stop the watchers.
	_ = sleepCtx(ctx, 2*time.Second)
	cancel()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(lat) == 0 {
		return watchResult{}, fmt.Errorf("%w: no watch event received for %d puts", ErrLoad, puts)
	}
	return watchResult{P50: pctMS(lat, 50), P99: pctMS(lat, 99), Events: len(lat), Expected: puts * watchers / keys}, nil
}

// writeGap runs one sequential writer against eps, performs action after
// `before`, keeps writing for `after`, and returns the longest time
// between two successful writes (counting a gap still open at the end).
func writeGap(ctx context.Context, eps []string, before, after time.Duration, action func() error) (time.Duration, int, error) {
	cli, err := newClient(eps)
	if err != nil {
		return 0, 0, err
	}
	defer cli.Close()
	stop := make(chan struct{})
	type out struct {
		longest time.Duration
		ok      int
	}
	res := make(chan out, 1)
	go func() {
		var o out
		last := time.Now()
		// Bounded by stop (closed below) and by a hard cap on iterations.
		for i := 0; i < 10_000_000; i++ {
			select {
			case <-stop:
				o.longest = max(o.longest, time.Since(last))
				res <- o
				return
			default:
			}
			pctx, cancel := context.WithTimeout(ctx, gapRequestTimeout)
			_, err := cli.Put(pctx, "gap/"+strconv.Itoa(i%1000), "v")
			cancel()
			if err == nil {
				o.longest = max(o.longest, time.Since(last))
				last = time.Now()
				o.ok++
			} else if ctx.Err() != nil {
				res <- o
				return
			} else {
				// A failed request returns fast when no leader is known;
				// don't spin the CPU the servers need to recover.
				time.Sleep(5 * time.Millisecond)
			}
		}
		res <- o
	}()
	if err := sleepCtx(ctx, before); err != nil {
		close(stop)
		<-res
		return 0, 0, err
	}
	actErr := action()
	_ = sleepCtx(ctx, after)
	close(stop)
	o := <-res
	if actErr != nil {
		return 0, 0, actErr
	}
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	return o.longest, o.ok, nil
}

func others(c *cluster, not *member) []*member {
	var out []*member
	for _, m := range c.running() {
		if m != not {
			out = append(out, m)
		}
	}
	return out
}

// gapKill: kill -9 the leader while writing through the other members;
// the killed member is restarted afterwards so the cluster is whole.
func gapKill(ctx context.Context, c *cluster, before, after time.Duration) (time.Duration, error) {
	lead, _, err := c.leader(ctx, 20*time.Second)
	if err != nil {
		return 0, err
	}
	gap, _, err := writeGap(ctx, endpoints(others(c, lead)), before, after, lead.kill)
	if err != nil {
		return 0, err
	}
	if err := lead.start(); err != nil {
		return 0, err
	}
	return gap, lead.waitHealthy(ctx, healthTimeout)
}

// gapRemove: `member remove` of the current leader while writing through
// the others. Both servers refuse a removal until the leader has been in
// contact with a quorum for 5 s (strict reconfig check), so the removal is
// retried for a bounded time; the writer is running meanwhile either way.
func gapRemove(ctx context.Context, c *cluster, before, after time.Duration) (time.Duration, error) {
	lead, leadID, err := c.leader(ctx, 20*time.Second)
	if err != nil {
		return 0, err
	}
	rest := endpoints(others(c, lead))
	admin, err := newClient(rest)
	if err != nil {
		return 0, err
	}
	defer admin.Close()
	remove := func() error {
		var last error
		for range 30 {
			rctx, cancel := context.WithTimeout(ctx, opTimeout)
			_, err := admin.MemberRemove(rctx, leadID)
			cancel()
			if err == nil {
				return nil
			}
			last = err
			if err := sleepCtx(ctx, 500*time.Millisecond); err != nil {
				return err
			}
		}
		return fmt.Errorf("%w: removing the leader %s: %v", ErrCluster, lead.name, last)
	}
	gap, _, err := writeGap(ctx, rest, before, after, remove)
	if err != nil {
		return 0, err
	}
	// The removed member may exit by itself or linger; it is not a
	// member any more either way.
	_ = lead.stop()
	return gap, nil
}

// learnerResult is the catch-up time of a learner joining a loaded cluster.
type learnerResult struct {
	CatchUp time.Duration // member add -> member promote accepted
	Tries   int
}

// addLearner adds a learner, starts it and retries `member promote`
// (every 25 ms, for at most timeout) until the leader accepts it.
func addLearner(ctx context.Context, c *cluster, timeout time.Duration) (learnerResult, error) {
	m, err := c.newMember(fmt.Sprintf("m%d", len(c.members)+1))
	if err != nil {
		return learnerResult{}, err
	}
	m.args = c.flags(m, c.initialCluster(m), "existing")
	admin, err := newClient(endpoints(c.running()))
	if err != nil {
		return learnerResult{}, err
	}
	defer admin.Close()
	t0 := time.Now()
	actx, cancel := context.WithTimeout(ctx, opTimeout)
	added, err := admin.MemberAddAsLearner(actx, []string{m.peer})
	cancel()
	if err != nil {
		return learnerResult{}, fmt.Errorf("%w: member add --learner: %v", ErrCluster, err)
	}
	if err := m.start(); err != nil {
		return learnerResult{}, err
	}
	c.members = append(c.members, m)
	var res learnerResult
	deadline := t0.Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		res.Tries++
		pctx, cancel := context.WithTimeout(ctx, opTimeout)
		_, err := admin.MemberPromote(pctx, added.Member.ID)
		cancel()
		if err == nil {
			res.CatchUp = time.Since(t0)
			return res, nil
		}
		last = err
		if err := sleepCtx(ctx, 25*time.Millisecond); err != nil {
			return res, err
		}
	}
	return res, fmt.Errorf("%w: learner %s not promoted within %v (last: %v); see %s", ErrCluster, m.name, timeout, last, m.logPath)
}
