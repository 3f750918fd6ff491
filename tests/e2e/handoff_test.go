package e2e

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cadrekv/cadre/tests/framework"
)

// handoffTries leadership moves per test: the 20 of 20.
const handoffTries = 20

// TestLeaderHandoffDropsNoWrite moves leadership 20 times while a client
// writes through a member other than the leader, one put at a time with a
// 1 s timeout. A proposal that reaches the leader while it hands over is
// dropped by raft; without a word back the put waited out its timeout.
// Every put must now commit (or fail at once, retryably): none may time out.
// The longest gap between acknowledged puts per move is logged (the
// distribution is in docs/PERFORMANCE.md), not asserted: timing is not a
// test's business on a shared machine.
func TestLeaderHandoffDropsNoWrite(t *testing.T) {
	framework.SkipUnlessCadre(t)
	c := framework.NewCluster(t, 3, framework.Options{})
	ctx := ctxFor(t, 3*time.Minute)
	ids := c.MemberIDs(t)
	admin := c.Client(t)

	var gaps []time.Duration
	timeouts, stalled := 0, 0
	for try := range handoffTries {
		lead := c.Leader(t)
		// Write through a member that is not the leader (nor the target).
		via := c.Members[(lead+1)%3]
		target := c.Members[(lead+2)%3]
		cli := framework.NewClient(t, via.Endpoint())
		w := startHandoffWriter(cli, fmt.Sprintf("handoff/%02d/", try))
		time.Sleep(150 * time.Millisecond) // a steady stream before the move
		moved := time.Now()
		mctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := admin.MoveLeader(clientv3.WithRequireLeader(mctx), ids[target.Name])
		if err != nil {
			// MoveLeader must reach the leader: retry through its endpoint.
			_, err = framework.NewClient(t, c.Members[lead].Endpoint()).MoveLeader(mctx, ids[target.Name])
		}
		cancel()
		if err != nil {
			t.Fatalf("try %d: move-leader to %s: %v", try, target.Name, err)
		}
		time.Sleep(400 * time.Millisecond) // writes after the new leader took over
		gap, to, n := w.stop(moved)
		gaps = append(gaps, gap)
		timeouts += to
		if n == 0 {
			stalled++ // nothing acknowledged in the 400 ms after the move
		}
	}
	slices.Sort(gaps)
	t.Logf("longest write gap per leadership move (%d moves): min %v, median %v, max %v",
		len(gaps), gaps[0].Round(time.Millisecond), gaps[len(gaps)/2].Round(time.Millisecond), gaps[len(gaps)-1].Round(time.Millisecond))
	if timeouts > 0 || stalled > 0 {
		t.Fatalf("%d puts timed out and %d moves saw no acknowledged put for 400 ms, across %d leadership moves: a proposal was dropped in the hand-off without its proposer being told",
			timeouts, stalled, handoffTries)
	}
}

// handoffWriter puts unique keys one after the other and records when each
// was acknowledged and how many timed out.
type handoffWriter struct {
	mu       sync.Mutex
	at       []time.Time
	timeouts int
	quit     chan struct{}
	done     chan struct{}
}

func startHandoffWriter(cli *clientv3.Client, prefix string) *handoffWriter {
	w := &handoffWriter{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for i := 0; i < 10_000; i++ {
			select {
			case <-w.quit:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, err := cli.Put(ctx, fmt.Sprintf("%s%05d", prefix, i), "v")
			cancel()
			w.mu.Lock()
			switch {
			case err == nil:
				w.at = append(w.at, time.Now())
			case errors.Is(err, context.DeadlineExceeded):
				w.timeouts++
			}
			w.mu.Unlock()
			if err != nil {
				time.Sleep(5 * time.Millisecond) // a retryable error: try the next put
			}
		}
	}()
	return w
}

// stop ends the writer; it returns the longest gap between acknowledgements
// from since on, the puts that timed out, and the acknowledgements after since.
func (w *handoffWriter) stop(since time.Time) (gap time.Duration, timeouts, n int) {
	close(w.quit)
	select {
	case <-w.done:
	case <-time.After(5 * time.Second):
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	gap, n = longestGap(w.at, since)
	return gap, w.timeouts, n
}
