package robustness

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// writer puts unique keys one after the other and remembers which were
// acknowledged: each must be found at the end.
type writer struct {
	mu    sync.Mutex
	acked map[string]string
	stop  chan struct{}
	done  chan struct{}
}

func startWriter(cli *clientv3.Client) *writer {
	w := &writer{acked: map[string]string{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for i := 0; i < 100_000; i++ {
			select {
			case <-w.stop:
				return
			default:
			}
			k, v := fmt.Sprintf("w/%06d", i), fmt.Sprintf("v%06d", i)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, err := cli.Put(ctx, k, v)
			cancel()
			if err == nil {
				w.mu.Lock()
				w.acked[k] = v
				w.mu.Unlock()
			} else {
				time.Sleep(20 * time.Millisecond)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	return w
}

func (w *writer) finish() map[string]string {
	close(w.stop)
	<-w.done
	return w.acked
}

// leases grants leases, attaches two keys to each, and revokes them; a
// revoke that was acknowledged must leave its keys gone for ever.
type leases struct {
	mu      sync.Mutex
	revoked [][]string // keys of each acknowledged revoke
	n       int
	stop    chan struct{}
	done    chan struct{}
}

func startLeases(cli *clientv3.Client) *leases {
	l := &leases{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for i := 0; i < 10_000; i++ {
			select {
			case <-l.stop:
				return
			default:
			}
			l.once(cli, i)
			time.Sleep(30 * time.Millisecond)
		}
	}()
	return l
}

func (l *leases) once(cli *clientv3.Client, i int) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	g, err := cli.Grant(ctx, 30)
	if err != nil {
		return
	}
	keys := []string{fmt.Sprintf("l/%05d/a", i), fmt.Sprintf("l/%05d/b", i)}
	for _, k := range keys {
		if _, err := cli.Put(ctx, k, "leased", clientv3.WithLease(g.ID)); err != nil {
			return
		}
	}
	if _, err := cli.Revoke(ctx, g.ID); err != nil {
		return
	}
	l.mu.Lock()
	l.revoked = append(l.revoked, keys)
	l.n++
	l.mu.Unlock()
}

func (l *leases) finish() [][]string {
	close(l.stop)
	<-l.done
	return l.revoked
}

// watcher watches everything from revision 1 through a client that may
// lose its member (it then resumes elsewhere) and keeps every response.
type watcher struct {
	mu     sync.Mutex
	resps  [][]*mvccpb.Event
	cancel context.CancelFunc
	done   chan struct{}
}

func startWatcher(cli *clientv3.Client) *watcher { return startWatcherAt(cli, 1) }

// startWatcherAt watches everything from revision rev on.
func startWatcherAt(cli *clientv3.Client, rev int64) *watcher {
	ctx, cancel := context.WithCancel(context.Background())
	w := &watcher{cancel: cancel, done: make(chan struct{})}
	wch := cli.Watch(ctx, "", clientv3.WithFromKey(), clientv3.WithRev(rev))
	go func() {
		defer close(w.done)
		for resp := range wch {
			if len(resp.Events) == 0 {
				continue
			}
			w.mu.Lock()
			w.resps = append(w.resps, resp.Events)
			w.mu.Unlock()
		}
	}()
	return w
}

// until waits (bounded) for the watcher to have seen revision rev.
func (w *watcher) until(rev int64, d time.Duration) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		w.mu.Lock()
		n := len(w.resps)
		var last int64
		if n > 0 {
			evs := w.resps[n-1]
			last = evs[len(evs)-1].Kv.ModRevision
		}
		w.mu.Unlock()
		if last >= rev {
			return true
		}
	}
	return false
}

func (w *watcher) finish() [][]*mvccpb.Event {
	w.cancel()
	<-w.done
	return w.resps
}
