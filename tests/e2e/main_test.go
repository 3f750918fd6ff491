// Package e2e runs Cadre's acceptance scenarios against real server
// processes with the real etcdctl and client/v3. Every scenario that is not
// Cadre-only must also pass against the real etcd, which validates the test:
//
//	CADRE_E2E_SERVER=/path/to/etcd ETCDCTL_BIN=/path/to/etcdctl go test ./tests/... -count=1
package e2e

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/cadrekv/cadre/tests/framework"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func TestMain(m *testing.M) { os.Exit(framework.Main(m)) }

// opTimeout bounds one client request in these tests.
const opTimeout = 5 * time.Second

// ctxFor returns a context bounded by d and cancelled when the test ends.
func ctxFor(t testing.TB, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// eventually retries f every 100ms until it returns nil or d passes, and
// fails the test with f's last error then.
func eventually(t testing.TB, d time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true within %v: %v", what, d, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// writer puts unique keys one at a time and records the acknowledged ones.
// A failed or timed-out put is not recorded (it may or may not be applied),
// and the writer moves on to the next key.
type writer struct {
	cli    *clientv3.Client
	prefix string

	mu     sync.Mutex
	acked  []string // keys, in acknowledgement order
	failed int
	stop   chan struct{}
	done   chan struct{}
}

// maxWrites bounds a writer whatever happens to its stop signal.
const maxWrites = 20000

func startWriter(cli *clientv3.Client, prefix string) *writer {
	w := &writer{cli: cli, prefix: prefix, stop: make(chan struct{}), done: make(chan struct{})}
	go w.run()
	return w
}

func writerKey(prefix string, i int) string { return fmt.Sprintf("%s%06d", prefix, i) }
func writerValue(key string) string         { return "v:" + key }

func (w *writer) run() {
	defer close(w.done)
	for i := range maxWrites {
		select {
		case <-w.stop:
			return
		default:
		}
		key := writerKey(w.prefix, i)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		_, err := w.cli.Put(ctx, key, writerValue(key))
		cancel()
		w.mu.Lock()
		if err == nil {
			w.acked = append(w.acked, key)
		} else {
			w.failed++
			// Do not spin on a dead endpoint or a leaderless cluster.
			time.Sleep(20 * time.Millisecond)
		}
		w.mu.Unlock()
	}
}

// Stop stops the writer and returns the acknowledged keys.
func (w *writer) Stop(t testing.TB) []string {
	t.Helper()
	first := false
	select {
	case <-w.stop:
	default:
		close(w.stop)
		first = true
	}
	select {
	case <-w.done:
	case <-time.After(10 * time.Second):
		t.Fatal("writer did not stop within 10s")
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if first {
		t.Logf("writer %s: %d acknowledged, %d failed", w.prefix, len(w.acked), w.failed)
	}
	return append([]string(nil), w.acked...)
}

func (w *writer) Acked() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

// WaitAcked waits until at least n writes are acknowledged.
func (w *writer) WaitAcked(t testing.TB, n int, d time.Duration) {
	t.Helper()
	eventually(t, d, fmt.Sprintf("writer %s reaching %d acknowledged writes", w.prefix, n), func() error {
		if got := w.Acked(); got < n {
			return fmt.Errorf("%d acknowledged", got)
		}
		return nil
	})
}

// checkKeys reads prefix from cli (linearizable unless opts say otherwise)
// and fails the test unless every key in want is there with its writer
// value. It returns the number of keys under prefix.
func checkKeys(t testing.TB, cli *clientv3.Client, prefix string, want []string, opts ...clientv3.OpOption) int64 {
	t.Helper()
	resp, err := cli.Get(ctxFor(t, 10*time.Second), prefix, append([]clientv3.OpOption{clientv3.WithPrefix()}, opts...)...)
	if err != nil {
		t.Fatalf("range %s: %v", prefix, err)
	}
	got := make(map[string]string, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		got[string(kv.Key)] = string(kv.Value)
	}
	missing := 0
	for _, k := range want {
		if v, ok := got[k]; !ok || v != writerValue(k) {
			if missing < 5 {
				t.Errorf("acknowledged write %s: got %q (present %v), want %q", k, v, ok, writerValue(k))
			}
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged writes lost under %s (%d keys present)", missing, len(want), prefix, len(resp.Kvs))
	}
	return resp.Count
}
