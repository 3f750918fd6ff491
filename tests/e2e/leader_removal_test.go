package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cadrekv/cadre/tests/framework"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// membTimedWriter puts unique keys one at a time, like writer, and also
// records when each put was acknowledged, to measure write gaps.
type membTimedWriter struct {
	cli    *clientv3.Client
	prefix string

	mu    sync.Mutex
	acked []string
	at    []time.Time
	fails int
	stop  chan struct{}
	done  chan struct{}
}

func startTimedWriter(cli *clientv3.Client, prefix string) *membTimedWriter {
	w := &membTimedWriter{cli: cli, prefix: prefix, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for i := range maxWrites {
			select {
			case <-w.stop:
				return
			default:
			}
			key := writerKey(prefix, i)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			_, err := cli.Put(ctx, key, writerValue(key))
			cancel()
			w.mu.Lock()
			if err == nil {
				w.acked, w.at = append(w.acked, key), append(w.at, time.Now())
			} else {
				w.fails++
			}
			w.mu.Unlock()
			if err != nil {
				time.Sleep(20 * time.Millisecond)
			}
		}
	}()
	return w
}

func (w *membTimedWriter) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

func (w *membTimedWriter) waitFor(t *testing.T, n int, d time.Duration) {
	t.Helper()
	eventually(t, d, fmt.Sprintf("%d acknowledged writes", n), func() error {
		if got := w.count(); got < n {
			return fmt.Errorf("%d acknowledged", got)
		}
		return nil
	})
}

// finish stops the writer and returns the acknowledged keys and the
// longest time between two acknowledgements after since.
func (w *membTimedWriter) finish(t *testing.T, since time.Time) ([]string, time.Duration) {
	t.Helper()
	close(w.stop)
	select {
	case <-w.done:
	case <-time.After(10 * time.Second):
		t.Fatal("writer did not stop within 10s")
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	gap, _ := longestGap(w.at, since)
	t.Logf("writer %s: %d acknowledged, %d failed", w.prefix, len(w.acked), w.fails)
	return append([]string(nil), w.acked...), gap
}

// longestGap is the longest time between since and the acknowledgements
// at or after it, one after the other; n counts those acknowledgements.
func longestGap(acks []time.Time, since time.Time) (gap time.Duration, n int) {
	prev := since
	for _, at := range acks {
		if at.Before(since) {
			continue
		}
		gap = max(gap, at.Sub(prev))
		prev = at
		n++
	}
	return gap, n
}

// TestLeaderRemovalWhileWriting removes the leader while a client writes:
// no acknowledged write is lost, the others elect a leader and keep
// serving, and the old leader exits (Cadre: with the removed exit code).
func TestLeaderRemovalWhileWriting(t *testing.T) {
	c := framework.NewCluster(t, 3, framework.Options{})
	prefix := "/remove-leader/"
	w := startTimedWriter(c.Client(t), prefix)
	w.waitFor(t, 100, 15*time.Second)

	lead := c.Leader(t)
	old := c.Members[lead]
	id := c.MemberIDs(t)[old.Name]
	var others []string
	for _, m := range c.Members {
		if m != old {
			others = append(others, m.Endpoint())
		}
	}
	ocli := framework.NewClient(t, others...)
	var removedAt time.Time
	eventually(t, 20*time.Second, "removing leader "+old.Name, func() error {
		removedAt = time.Now()
		_, err := ocli.MemberRemove(ctxFor(t, 10*time.Second), id)
		if err != nil && !strings.Contains(err.Error(), "unhealthy cluster") {
			t.Fatalf("member remove of the leader: %v", err)
		}
		return err
	})
	atRemove := w.count()
	code := membWaitExit(t, old, 20*time.Second)
	t.Logf("old leader %s exited %d, %v after the removal", old.Name, code, time.Since(removedAt).Round(time.Millisecond))
	if framework.IsCadre() {
		if code != removedExitCode || !old.LogContains(removedLogLine) {
			t.Fatalf("removed leader %s: exit %d, want %d with log line %q", old.Name, code, removedExitCode, removedLogLine)
		}
	}
	c.Drop(old.Name)
	if nl := c.Members[c.Leader(t)]; nl == old {
		t.Fatal("the removed member still leads")
	}
	w.waitFor(t, atRemove+100, 30*time.Second)
	acked, gap := w.finish(t, removedAt)
	t.Logf("longest gap between acknowledged writes after the removal: %v", gap)

	cli := framework.NewClient(t, c.RunningEndpoints()...)
	checkKeys(t, cli, prefix, acked)
	if l := membList(t, cli); len(l) != 2 || strings.Contains(strings.Join(l, "\n"), fmt.Sprintf("%016x", id)) {
		t.Fatalf("members after removing the leader: %q", l)
	}
}
