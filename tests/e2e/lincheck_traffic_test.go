package e2e

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Traffic shape for the linearizability tests, after etcd's robustness
// suite (6 member-pinned + 2 balanced clients, unique values, a read after
// every failed write) but paced so that a run yields a few thousand
// operations, a size porcupine checks in well under a second per key.
const (
	linKeyCount   = 5
	linReqTimeout = 2 * time.Second
	linPace       = 25 * time.Millisecond // pause between two requests of a client
	linMaxOps     = 4000                  // per client, whatever happens to stop
)

// linRecorder collects the operations of all clients against one base time.
type linRecorder struct {
	base time.Time

	mu  sync.Mutex
	ops []porcupine.Operation
}

func newLinRecorder() *linRecorder { return &linRecorder{base: time.Now()} }

// now is the monotonic time since base (time.Since uses the monotonic clock).
func (r *linRecorder) now() int64 { return time.Since(r.base).Nanoseconds() }

func (r *linRecorder) add(client int, in linInput, call int64, out linOutput, ret int64) {
	if out.Unknown {
		ret = linInfinity
	}
	r.mu.Lock()
	r.ops = append(r.ops, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
	r.mu.Unlock()
}

// history returns a copy of the recorded operations.
func (r *linRecorder) history() []porcupine.Operation {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]porcupine.Operation(nil), r.ops...)
}

func linKey(i int) string { return fmt.Sprintf("lin/key%d", i) }

// linDo runs one operation on cli and records it. A failed read is dropped
// (it changed nothing); a failed write is recorded with an unknown outcome.
// It returns the output and whether the request succeeded.
func (r *linRecorder) linDo(cli *clientv3.Client, client int, in linInput) (linOutput, error) {
	ctx, cancel := context.WithTimeout(context.Background(), linReqTimeout)
	defer cancel()
	call := r.now()
	out, err := linExec(ctx, cli, in)
	ret := r.now()
	if err != nil {
		if in.Kind == linGet {
			return out, err
		}
		out = linOutput{Unknown: true}
	}
	r.add(client, in, call, out, ret)
	return out, err
}

// linExec sends one request and translates the response to a linOutput.
func linExec(ctx context.Context, cli *clientv3.Client, in linInput) (linOutput, error) {
	switch in.Kind {
	case linGet:
		resp, err := cli.Get(ctx, in.Key)
		if err != nil {
			return linOutput{}, err
		}
		if len(resp.Kvs) == 0 {
			return linOutput{}, nil
		}
		return linOutput{Value: string(resp.Kvs[0].Value), Rev: resp.Kvs[0].ModRevision}, nil
	case linPut:
		resp, err := cli.Put(ctx, in.Key, in.Value)
		if err != nil {
			return linOutput{}, err
		}
		return linOutput{Rev: resp.Header.Revision}, nil
	case linCAS:
		guard := clientv3.Compare(clientv3.Value(in.Key), "=", in.Expect)
		if in.Expect == "" {
			guard = clientv3.Compare(clientv3.CreateRevision(in.Key), "=", 0)
		}
		resp, err := cli.Txn(ctx).If(guard).
			Then(clientv3.OpPut(in.Key, in.Value)).
			Else(clientv3.OpGet(in.Key)).Commit()
		if err != nil {
			return linOutput{}, err
		}
		if resp.Succeeded {
			return linOutput{Succeeded: true, Rev: resp.Header.Revision}, nil
		}
		if len(resp.Responses) != 1 || resp.Responses[0].GetResponseRange() == nil {
			return linOutput{}, errors.New("txn else branch: want one range response")
		}
		kvs := resp.Responses[0].GetResponseRange().Kvs
		if len(kvs) == 0 {
			return linOutput{}, nil
		}
		return linOutput{Value: string(kvs[0].Value), Rev: kvs[0].ModRevision}, nil
	}
	return linOutput{}, fmt.Errorf("unknown op kind %d", in.Kind)
}

// linClient is one traffic client: it runs requests one at a time, so it
// never has two operations in flight.
type linClient struct {
	id   int
	cli  *clientv3.Client
	rec  *linRecorder
	rand *rand.Rand

	lastRead map[string]string // key -> value this client last observed
	seq      int
	needRead bool // a write failed: read before writing again

	// counters, read after the client stopped
	ok, failedReads, unknownWrites int
}

// run sends requests until stop is closed or linMaxOps is reached.
func (c *linClient) run(stop <-chan struct{}) {
	for range linMaxOps {
		select {
		case <-stop:
			return
		default:
		}
		c.step()
		select {
		case <-stop:
			return
		case <-time.After(linPace):
		}
	}
}

// step picks and runs one operation: 40% Get, 40% Put, 20% CAS (a CAS
// needs a value read earlier; without one it is a Get).
func (c *linClient) step() {
	key := linKey(c.rand.IntN(linKeyCount))
	in := linInput{Kind: linGet, Key: key}
	expect, read := c.lastRead[key]
	switch p := c.rand.IntN(100); {
	case c.needRead || p < 40:
	case p < 80:
		in = linInput{Kind: linPut, Key: key, Value: c.nextValue()}
	case read:
		in = linInput{Kind: linCAS, Key: key, Value: c.nextValue(), Expect: expect}
	}
	out, err := c.rec.linDo(c.cli, c.id, in)
	switch {
	case err != nil && in.Kind == linGet:
		c.failedReads++
		return
	case err != nil:
		c.unknownWrites++
		c.needRead = true
		delete(c.lastRead, key)
		return
	}
	c.ok++
	switch {
	case in.Kind == linGet:
		c.needRead = false
		c.lastRead[key] = out.Value
	case in.Kind == linPut || out.Succeeded:
		c.lastRead[key] = in.Value
	default: // failed CAS read the current value
		c.lastRead[key] = out.Value
	}
}

// nextValue is unique over the whole test: client id + sequence number.
func (c *linClient) nextValue() string {
	c.seq++
	return fmt.Sprintf("c%d-%d", c.id, c.seq)
}

// linTraffic runs a set of clients until Stop.
type linTraffic struct {
	clients []*linClient
	stop    chan struct{}
	wg      sync.WaitGroup
	once    sync.Once
}

func startLinTraffic(rec *linRecorder, clis []*clientv3.Client) *linTraffic {
	tr := &linTraffic{stop: make(chan struct{})}
	for i, cli := range clis {
		c := &linClient{id: i, cli: cli, rec: rec, rand: rand.New(rand.NewPCG(uint64(i), uint64(time.Now().UnixNano()))), lastRead: map[string]string{}}
		tr.clients = append(tr.clients, c)
		tr.wg.Add(1)
		go func() {
			defer tr.wg.Done()
			c.run(tr.stop)
		}()
	}
	return tr
}

// Stop stops the clients and waits for them; every request is bounded by
// linReqTimeout, so this returns within about that. Safe to call twice.
func (tr *linTraffic) Stop() {
	tr.once.Do(func() { close(tr.stop) })
	tr.wg.Wait()
}

// summary counts successful ops, failed reads and unknown writes.
func (tr *linTraffic) summary() (ok, failedReads, unknownWrites int) {
	for _, c := range tr.clients {
		ok += c.ok
		failedReads += c.failedReads
		unknownWrites += c.unknownWrites
	}
	return ok, failedReads, unknownWrites
}
