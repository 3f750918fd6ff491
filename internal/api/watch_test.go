package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/cadrekv/cadre/internal/storage/mvcc"
)

const watchWait = 5 * time.Second

// watchBackend serves Watch from a real store with a fixed member header.
type watchBackend struct{ *mvcc.Store }

func (b watchBackend) Header(rev int64) *pb.ResponseHeader {
	if rev == 0 {
		rev, _ = b.Rev()
	}
	return &pb.ResponseHeader{ClusterId: 1, MemberId: 2, Revision: rev, RaftTerm: 3}
}

// startWatchServer runs the Watch service on 127.0.0.1:0 over a store in a
// temp dir and returns the store and the address.
func startWatchServer(t *testing.T, o mvcc.Options, maxBytes uint) (*mvcc.Store, string) {
	t.Helper()
	s, err := mvcc.Open(filepath.Join(t.TempDir(), "db"), o)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	RegisterWatch(g, watchBackend{s}, maxBytes)
	go g.Serve(ln)
	t.Cleanup(func() {
		g.Stop()
		s.Close()
	})
	return s, ln.Addr().String()
}

func newWatchClient(t *testing.T, addr string, maxRecv int) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{addr}, DialTimeout: watchWait,
		MaxCallRecvMsgSize: maxRecv, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// write applies fn in one committed batch.
func write(t *testing.T, s *mvcc.Store, fn func(b *mvcc.Batch) error) {
	t.Helper()
	b, err := s.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if err := fn(b); err != nil {
		b.Abort()
		t.Fatal(err)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
}

func wput(t *testing.T, s *mvcc.Store, k, v string) {
	t.Helper()
	write(t, s, func(b *mvcc.Batch) error {
		_, err := b.Put(&pb.PutRequest{Key: []byte(k), Value: []byte(v)})
		return err
	})
}

func wdel(t *testing.T, s *mvcc.Store, k string) {
	t.Helper()
	write(t, s, func(b *mvcc.Batch) error {
		_, err := b.DeleteRange(&pb.DeleteRangeRequest{Key: []byte(k)})
		return err
	})
}

func evText(ev *clientv3.Event) string {
	s := fmt.Sprintf("DEL %s@%d", ev.Kv.Key, ev.Kv.ModRevision)
	if ev.Type == mvccpb.PUT {
		s = fmt.Sprintf("PUT %s=%s@%d", ev.Kv.Key, ev.Kv.Value, ev.Kv.ModRevision)
	}
	if ev.PrevKv != nil {
		s += " prev=" + string(ev.PrevKv.Value)
	}
	return s
}

// nextResp returns the next response on wch (failing after watchWait).
func nextResp(t *testing.T, wch clientv3.WatchChan) clientv3.WatchResponse {
	t.Helper()
	select {
	case r, ok := <-wch:
		if !ok {
			t.Fatal("watch channel closed")
		}
		return r
	case <-time.After(watchWait):
		t.Fatal("no watch response within", watchWait)
	}
	return clientv3.WatchResponse{}
}

func collect(t *testing.T, wch clientv3.WatchChan, n int) []string {
	t.Helper()
	var out []string
	for len(out) < n {
		r := nextResp(t, wch)
		if err := r.Err(); err != nil {
			t.Fatalf("watch error: %v", err)
		}
		for _, ev := range r.Events {
			out = append(out, evText(ev))
		}
	}
	return out
}

// TestWatchClient drives every create option through client/v3: history is
// replayed from revision 2, then live writes follow.
func TestWatchClient(t *testing.T) {
	tests := []struct {
		name string
		key  string
		opts []clientv3.OpOption
		want []string
	}{
		{"key", "a", nil, []string{"PUT a=1@2", "PUT a=2@4", "DEL a@5"}},
		{"prefix", "a", []clientv3.OpOption{clientv3.WithPrefix()}, []string{"PUT a=1@2", "PUT a=2@4", "DEL a@5", "PUT ab=3@6"}},
		{"range", "a", []clientv3.OpOption{clientv3.WithRange("b")}, []string{"PUT a=1@2", "PUT a=2@4", "DEL a@5", "PUT ab=3@6"}},
		{"from key", "ab", []clientv3.OpOption{clientv3.WithFromKey()}, []string{"PUT b=1@3", "PUT ab=3@6"}},
		{"prev kv", "a", []clientv3.OpOption{clientv3.WithPrevKV()}, []string{"PUT a=1@2", "PUT a=2@4 prev=1", "DEL a@5 prev=2"}},
		{"no put", "a", []clientv3.OpOption{clientv3.WithFilterPut()}, []string{"DEL a@5"}},
		{"no delete", "a", []clientv3.OpOption{clientv3.WithFilterDelete()}, []string{"PUT a=1@2", "PUT a=2@4"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, addr := startWatchServer(t, mvcc.Options{}, 0)
			cli := newWatchClient(t, addr, 0)
			wput(t, s, "a", "1") // 2
			wput(t, s, "b", "1") // 3
			wput(t, s, "a", "2") // 4
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			opts := append([]clientv3.OpOption{clientv3.WithRev(2), clientv3.WithCreatedNotify()}, tt.opts...)
			wch := cli.Watch(ctx, tt.key, opts...)
			if r := nextResp(t, wch); !r.Created || r.Header.ClusterId != 1 || r.Header.MemberId != 2 {
				t.Fatalf("first response %+v, want created with the member header", r)
			}
			wdel(t, s, "a")       // 5
			wput(t, s, "ab", "3") // 6
			if got := collect(t, wch, len(tt.want)); !slices.Equal(got, tt.want) {
				t.Fatalf("events %v, want %v", got, tt.want)
			}
		})
	}
}

func TestWatchClientCompacted(t *testing.T) {
	s, addr := startWatchServer(t, mvcc.Options{}, 0)
	cli := newWatchClient(t, addr, 0)
	for i := range 5 {
		wput(t, s, "k", fmt.Sprint(i)) // 2..6
	}
	write(t, s, func(b *mvcc.Batch) error { _, err := b.Compact(4); return err })
	wch := cli.Watch(context.Background(), "k", clientv3.WithRev(2))
	r := nextResp(t, wch)
	if r.CompactRevision != 4 || !errors.Is(r.Err(), rpctypes.ErrCompacted) {
		t.Fatalf("response %+v (err %v), want compact revision 4 and ErrCompacted", r, r.Err())
	}
	select {
	case _, ok := <-wch:
		if ok {
			t.Fatal("watch channel still open after the compaction error")
		}
	case <-time.After(watchWait):
		t.Fatal("watch channel not closed after the compaction error")
	}
	// A watch from the compacted revision itself works.
	if got := collect(t, cli.Watch(context.Background(), "k", clientv3.WithRev(4)), 3); !slices.Equal(got, []string{"PUT k=2@4", "PUT k=3@5", "PUT k=4@6"}) {
		t.Fatalf("watch from the compacted revision: %v", got)
	}
}

func TestWatchClientProgress(t *testing.T) {
	s, addr := startWatchServer(t, mvcc.Options{ProgressInterval: 50 * time.Millisecond}, 0)
	cli := newWatchClient(t, addr, 0)
	wput(t, s, "x", "1") // 2
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := nextResp(t, cli.Watch(ctx, "k", clientv3.WithProgressNotify()))
	if !r.IsProgressNotify() || r.Header.Revision != 2 {
		t.Fatalf("periodic progress %+v, want a progress notify at revision 2", r)
	}

	wch := cli.Watch(ctx, "k", clientv3.WithCreatedNotify())
	if r := nextResp(t, wch); !r.Created {
		t.Fatalf("want created, got %+v", r)
	}
	wput(t, s, "x", "2") // 3
	if err := cli.RequestProgress(ctx); err != nil {
		t.Fatal(err)
	}
	if r := nextResp(t, wch); !r.IsProgressNotify() || r.Header.Revision != 3 {
		t.Fatalf("requested progress %+v, want a progress notify at revision 3", r)
	}
}

// TestWatchClientFragment: three 1 MiB values written in one revision do
// not fit one message of a client that accepts 2 MiB; with fragment the
// server splits them and the client joins them into one response.
func TestWatchClientFragment(t *testing.T) {
	s, addr := startWatchServer(t, mvcc.Options{}, 1<<20+512<<10)
	big := bytes.Repeat([]byte("v"), 1<<20)
	write(t, s, func(b *mvcc.Batch) error {
		var ops []*pb.RequestOp
		for _, k := range []string{"f1", "f2", "f3"} {
			ops = append(ops, &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte(k), Value: big}}})
		}
		_, err := b.Txn(&pb.TxnRequest{Success: ops})
		return err
	})

	cli := newWatchClient(t, addr, 2<<20)
	r := nextResp(t, cli.Watch(context.Background(), "f", clientv3.WithPrefix(), clientv3.WithRev(1), clientv3.WithFragment()))
	if r.Err() != nil || len(r.Events) != 3 || r.Events[2].Kv.ModRevision != 2 || len(r.Events[2].Kv.Value) != 1<<20 {
		t.Fatalf("got %d events (err %v), want the 3 events of revision 2 in one response", len(r.Events), r.Err())
	}

	// On the wire: three messages, fragment set on all but the last.
	stream := rawWatch(t, addr)
	mustSend(t, stream, &pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: &pb.WatchCreateRequest{
		Key: []byte("f"), RangeEnd: []byte("g"), StartRevision: 1, Fragment: true}}})
	if c := mustRecv(t, stream); !c.Created {
		t.Fatalf("want created, got %v", c)
	}
	var frags []bool
	for range 3 {
		m := mustRecv(t, stream)
		if len(m.Events) != 1 {
			t.Fatalf("fragment with %d events", len(m.Events))
		}
		frags = append(frags, m.Fragment)
	}
	if !slices.Equal(frags, []bool{true, true, false}) {
		t.Fatalf("fragment flags %v", frags)
	}
}

func rawWatch(t *testing.T, addr string) pb.Watch_WatchClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(16<<20)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	stream, err := pb.NewWatchClient(conn).Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return stream
}

func mustSend(t *testing.T, s pb.Watch_WatchClient, r *pb.WatchRequest) {
	t.Helper()
	if err := s.Send(r); err != nil {
		t.Fatal(err)
	}
}

func mustRecv(t *testing.T, s pb.Watch_WatchClient) *pb.WatchResponse {
	t.Helper()
	type res struct {
		r   *pb.WatchResponse
		err error
	}
	ch := make(chan res, 1)
	go func() { r, err := s.Recv(); ch <- res{r, err} }()
	select {
	case x := <-ch:
		if x.err != nil {
			t.Fatal(x.err)
		}
		return x.r
	case <-time.After(watchWait):
		t.Fatal("no response within", watchWait)
	}
	return nil
}

func create(id int64, key string, rev int64) *pb.WatchRequest {
	return &pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: &pb.WatchCreateRequest{
		WatchId: id, Key: []byte(key), StartRevision: rev}}}
}

// TestWatchProtocol checks the responses etcd clients rely on, on the wire.
func TestWatchProtocol(t *testing.T) {
	s, addr := startWatchServer(t, mvcc.Options{}, 0)
	st := rawWatch(t, addr)

	mustSend(t, st, create(7, "k", 0))
	if r := mustRecv(t, st); !r.Created || r.Canceled || r.WatchId != 7 || r.Header.GetMemberId() != 2 {
		t.Fatalf("create with chosen ID: %v", r)
	}
	mustSend(t, st, create(7, "k", 0))
	if r := mustRecv(t, st); !r.Created || !r.Canceled || r.WatchId != -1 || r.CancelReason != mvcc.ErrWatcherIDInUse.Error() {
		t.Fatalf("duplicate ID: %v", r)
	}
	mustSend(t, st, create(0, "k", -1))
	if r := mustRecv(t, st); !r.Canceled || r.WatchId != -1 || r.CancelReason != rpctypes.ErrCompacted.Error() {
		t.Fatalf("negative start revision: %v", r)
	}
	mustSend(t, st, create(0, "j", 0))
	if r := mustRecv(t, st); !r.Created || r.WatchId != 0 {
		t.Fatalf("first auto ID: %v, want 0", r)
	}

	wput(t, s, "k", "1") // 2
	if r := mustRecv(t, st); r.WatchId != 7 || len(r.Events) != 1 || r.Header.GetRevision() != 2 || r.Header.GetClusterId() != 1 {
		t.Fatalf("event: %v", r)
	}
	mustSend(t, st, &pb.WatchRequest{RequestUnion: &pb.WatchRequest_CancelRequest{CancelRequest: &pb.WatchCancelRequest{WatchId: 7}}})
	if r := mustRecv(t, st); !r.Canceled || r.WatchId != 7 {
		t.Fatalf("cancel: %v", r)
	}
	wput(t, s, "k", "2") // 3: nobody watches k now
	wput(t, s, "j", "1") // 4
	if r := mustRecv(t, st); r.WatchId != 0 || len(r.Events) != 1 || string(r.Events[0].Kv.Key) != "j" {
		t.Fatalf("after cancel got %v, want only watch 0's event on j", r)
	}
	mustSend(t, st, &pb.WatchRequest{RequestUnion: &pb.WatchRequest_ProgressRequest{ProgressRequest: &pb.WatchProgressRequest{}}})
	if r := mustRecv(t, st); r.WatchId != -1 || len(r.Events) != 0 || r.Header.GetRevision() != 4 {
		t.Fatalf("progress: %v", r)
	}
}
