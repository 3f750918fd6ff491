package robustness

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// kube is Kubernetes-style traffic, as the apiserver's etcd3 store sends
// it: objects created by a txn guarded on CreateRevision == 0, updated by a
// txn guarded on the ModRevision the client last read (retrying on a
// conflict with a fresh read), and listed in pages at one revision. At the end every object holds its last
// acknowledged value (or that of a later write of unknown outcome).
type kube struct {
	mu sync.Mutex
	// final holds, per object, the values it may end with: the last
	// acknowledged one and those of any later write of unknown outcome.
	final map[string]map[string]bool
	// lists counts paginated lists that saw a consistent revision on every
	// page; listErrs counts those that did not (a violation).
	lists, listErrs int
	stop            chan struct{}
	done            chan struct{}
}

const kubeObjects = 20

func startKube(cli *clientv3.Client, seed int64) *kube {
	k := &kube{final: map[string]map[string]bool{}, stop: make(chan struct{}), done: make(chan struct{})}
	rng := rand.New(rand.NewPCG(uint64(seed), 0x6b75))
	go func() {
		defer close(k.done)
		for i := 0; i < 20_000; i++ {
			select {
			case <-k.stop:
				return
			default:
			}
			if i%10 == 9 {
				k.list(cli)
			} else {
				k.write(cli, fmt.Sprintf("/registry/pods/ns/pod-%02d", rng.IntN(kubeObjects)), fmt.Sprintf("v%d", i))
			}
			time.Sleep(15 * time.Millisecond)
		}
	}()
	return k
}

// write creates key if it does not exist, else updates it on the mod
// revision just read. A failed guard is a conflict: the next write retries.
func (k *kube) write(cli *clientv3.Client, key, val string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	get, err := cli.Get(ctx, key)
	if err != nil {
		return
	}
	guard := clientv3.Compare(clientv3.CreateRevision(key), "=", 0)
	if len(get.Kvs) == 1 {
		guard = clientv3.Compare(clientv3.ModRevision(key), "=", get.Kvs[0].ModRevision)
	}
	resp, err := cli.Txn(ctx).If(guard).Then(clientv3.OpPut(key, val)).Else(clientv3.OpGet(key)).Commit()
	k.mu.Lock()
	defer k.mu.Unlock()
	switch {
	case err != nil: // may still commit
		if k.final[key] == nil {
			k.final[key] = map[string]bool{}
		}
		k.final[key][val] = true
	case resp.Succeeded:
		k.final[key] = map[string]bool{val: true}
	}
}

// list reads every object in pages of 5 at one revision, as the apiserver
// does (the first page's revision pins the rest).
func (k *kube) list(cli *clientv3.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var rev int64
	from := "/registry/pods/"
	for page := 0; page < kubeObjects; page++ {
		opts := []clientv3.OpOption{clientv3.WithRange("/registry/pods0"), clientv3.WithLimit(5)}
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		resp, err := cli.Get(ctx, from, opts...)
		if err != nil {
			return // an unavailable member: not a violation
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		for _, kv := range resp.Kvs {
			if kv.ModRevision > rev {
				k.mu.Lock()
				k.listErrs++
				k.mu.Unlock()
				return
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	k.mu.Lock()
	k.lists++
	k.mu.Unlock()
}

func (k *kube) finish() (map[string]map[string]bool, int, int) {
	close(k.stop)
	<-k.done
	return k.final, k.lists, k.listErrs
}
