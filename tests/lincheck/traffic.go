package lincheck

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
	KeyCount   = 5
	ReqTimeout = 2 * time.Second
	Pace       = 25 * time.Millisecond // pause between two requests of a client
	MaxOps     = 4000                  // per client, whatever happens to stop
)

// Recorder collects the operations of all clients against one base time.
type Recorder struct {
	base time.Time

	mu  sync.Mutex
	ops []porcupine.Operation
}

func NewRecorder() *Recorder { return &Recorder{base: time.Now()} }

// Now is the monotonic time since base (time.Since uses the monotonic clock).
func (r *Recorder) Now() int64 { return time.Since(r.base).Nanoseconds() }

func (r *Recorder) add(client int, in Input, call int64, out Output, ret int64) {
	if out.Unknown {
		ret = Infinity
	}
	r.mu.Lock()
	r.ops = append(r.ops, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
	r.mu.Unlock()
}

// History returns a copy of the recorded operations.
func (r *Recorder) History() []porcupine.Operation {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]porcupine.Operation(nil), r.ops...)
}

func Key(i int) string { return fmt.Sprintf("lin/key%d", i) }

// Do runs one operation on cli and records it. A failed read is dropped
// (it changed nothing); a failed write is recorded with an unknown outcome.
// It returns the output and whether the request succeeded.
func (r *Recorder) Do(cli *clientv3.Client, client int, in Input) (Output, error) {
	ctx, cancel := context.WithTimeout(context.Background(), ReqTimeout)
	defer cancel()
	call := r.Now()
	out, err := exec(ctx, cli, in)
	ret := r.Now()
	if err != nil {
		if in.Kind == Get {
			return out, err
		}
		out = Output{Unknown: true}
	}
	r.add(client, in, call, out, ret)
	return out, err
}

// exec sends one request and translates the response to a Output.
func exec(ctx context.Context, cli *clientv3.Client, in Input) (Output, error) {
	switch in.Kind {
	case Get:
		resp, err := cli.Get(ctx, in.Key)
		if err != nil {
			return Output{}, err
		}
		if len(resp.Kvs) == 0 {
			return Output{}, nil
		}
		return Output{Value: string(resp.Kvs[0].Value), Rev: resp.Kvs[0].ModRevision}, nil
	case Put:
		resp, err := cli.Put(ctx, in.Key, in.Value)
		if err != nil {
			return Output{}, err
		}
		return Output{Rev: resp.Header.Revision}, nil
	case CAS:
		guard := clientv3.Compare(clientv3.Value(in.Key), "=", in.Expect)
		if in.Expect == "" {
			guard = clientv3.Compare(clientv3.CreateRevision(in.Key), "=", 0)
		}
		resp, err := cli.Txn(ctx).If(guard).
			Then(clientv3.OpPut(in.Key, in.Value)).
			Else(clientv3.OpGet(in.Key)).Commit()
		if err != nil {
			return Output{}, err
		}
		if resp.Succeeded {
			return Output{Succeeded: true, Rev: resp.Header.Revision}, nil
		}
		if len(resp.Responses) != 1 || resp.Responses[0].GetResponseRange() == nil {
			return Output{}, errors.New("txn else branch: want one range response")
		}
		kvs := resp.Responses[0].GetResponseRange().Kvs
		if len(kvs) == 0 {
			return Output{}, nil
		}
		return Output{Value: string(kvs[0].Value), Rev: kvs[0].ModRevision}, nil
	}
	return Output{}, fmt.Errorf("unknown op kind %d", in.Kind)
}

// client is one traffic client: it runs requests one at a time, so it
// never has two operations in flight.
type client struct {
	id   int
	cli  *clientv3.Client
	rec  *Recorder
	rand *rand.Rand

	lastRead map[string]string // key -> value this client last observed
	seq      int
	needRead bool // a write failed: read before writing again

	// counters, read after the client stopped
	ok, failedReads, unknownWrites int
}

// run sends requests until stop is closed or MaxOps is reached.
func (c *client) run(stop <-chan struct{}) {
	for range MaxOps {
		select {
		case <-stop:
			return
		default:
		}
		c.step()
		select {
		case <-stop:
			return
		case <-time.After(Pace):
		}
	}
}

// step picks and runs one operation: 40% Get, 40% Put, 20% CAS (a CAS
// needs a value read earlier; without one it is a Get).
func (c *client) step() {
	key := Key(c.rand.IntN(KeyCount))
	in := Input{Kind: Get, Key: key}
	expect, read := c.lastRead[key]
	switch p := c.rand.IntN(100); {
	case c.needRead || p < 40:
	case p < 80:
		in = Input{Kind: Put, Key: key, Value: c.nextValue()}
	case read:
		in = Input{Kind: CAS, Key: key, Value: c.nextValue(), Expect: expect}
	}
	out, err := c.rec.Do(c.cli, c.id, in)
	switch {
	case err != nil && in.Kind == Get:
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
	case in.Kind == Get:
		c.needRead = false
		c.lastRead[key] = out.Value
	case in.Kind == Put || out.Succeeded:
		c.lastRead[key] = in.Value
	default: // failed CAS read the current value
		c.lastRead[key] = out.Value
	}
}

// nextValue is unique over the whole test: client id + sequence number.
func (c *client) nextValue() string {
	c.seq++
	return fmt.Sprintf("c%d-%d", c.id, c.seq)
}

// Traffic runs a set of clients until Stop.
type Traffic struct {
	clients []*client
	stop    chan struct{}
	wg      sync.WaitGroup
	once    sync.Once
}

func StartTraffic(rec *Recorder, clis []*clientv3.Client) *Traffic {
	tr := &Traffic{stop: make(chan struct{})}
	for i, cli := range clis {
		c := &client{id: i, cli: cli, rec: rec, rand: rand.New(rand.NewPCG(uint64(i), uint64(time.Now().UnixNano()))), lastRead: map[string]string{}}
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
// ReqTimeout, so this returns within about that. Safe to call twice.
func (tr *Traffic) Stop() {
	tr.once.Do(func() { close(tr.stop) })
	tr.wg.Wait()
}

// Summary counts successful ops, failed reads and unknown writes.
func (tr *Traffic) Summary() (ok, failedReads, unknownWrites int) {
	for _, c := range tr.clients {
		ok += c.ok
		failedReads += c.failedReads
		unknownWrites += c.unknownWrites
	}
	return ok, failedReads, unknownWrites
}
