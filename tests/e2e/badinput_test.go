package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cadrekv/cadre/tests/framework"
)

// TestBadInputChangesNothing is the client-side part of the bad-input
// table (../shared/reference/anchors-reliability.md §7) in one place: each
// request is refused with etcd's error, the revision and the member list
// are what they were, and the member keeps serving. Also passes on etcd.
func TestBadInputChangesNothing(t *testing.T) {
	c := framework.NewCluster(t, 3, framework.Options{})
	cli := c.Client(t)
	ctx := ctxFor(t, 2*time.Minute)
	if _, err := cli.Put(ctx, "seed", "v"); err != nil {
		t.Fatal(err)
	}
	kv := pb.NewKVClient(cli.ActiveConnection())

	puts := func(prefix string, n int) []clientv3.Op {
		ops := make([]clientv3.Op, n)
		for i := range ops {
			ops[i] = clientv3.OpPut(fmt.Sprintf("%s%d", prefix, i), "v")
		}
		return ops
	}
	// A txn nested 200 deep, built on the wire type (client/v3 would too).
	deep := &pb.TxnRequest{Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("deep"), Value: []byte("v")}}}}}
	for range 200 {
		deep = &pb.TxnRequest{Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestTxn{RequestTxn: deep}}}}
	}
	// 128 nested txns of 128 puts each: every level within 128, 16,384 puts in all.
	wide := &pb.TxnRequest{}
	for i := range 128 {
		inner := &pb.TxnRequest{}
		for j := range 128 {
			inner.Success = append(inner.Success, &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: fmt.Appendf(nil, "wide/%d/%d", i, j), Value: []byte("v")}}})
		}
		wide.Success = append(wide.Success, &pb.RequestOp{Request: &pb.RequestOp_RequestTxn{RequestTxn: inner}})
	}

	ml, err := cli.MemberList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	usedPeer := ml.Members[0].PeerURLs[0]
	voter := ml.Members[0].ID

	cases := []struct {
		name string
		do   func() error
		want string
	}{
		{"request over --max-request-bytes", func() error {
			// Over 1.5 MiB, under the client's own 2 MiB send limit.
			_, err := cli.Put(ctx, "big", strings.Repeat("x", 1700<<10))
			return err
		}, "request is too large"},
		{"txn of 129 puts", func() error {
			_, err := cli.Txn(ctx).Then(puts("many/", 129)...).Commit()
			return err
		}, "too many operations in txn request"},
		{"txn nested 200 deep", func() error {
			_, err := kv.Txn(ctx, deep)
			return err
		}, "too many operations in txn request"},
		{"128 nested txns of 128 puts", func() error {
			_, err := kv.Txn(ctx, wide)
			return err
		}, "too many operations in txn request"},
		{"duplicate key in txn", func() error {
			_, err := cli.Txn(ctx).Then(clientv3.OpPut("d", "1"), clientv3.OpPut("d", "2")).Commit()
			return err
		}, "duplicate key given in txn request"},
		{"empty key", func() error {
			_, err := cli.Put(ctx, "", "v")
			return err
		}, "key is not provided"},
		{"range with an undefined sort order", func() error {
			_, err := pb.NewKVClient(cli.ActiveConnection()).Range(ctx, &pb.RangeRequest{Key: []byte("k"), SortOrder: 7})
			return err
		}, "invalid sort option"},
		{"member add with a peer URL in use", func() error {
			// etcd judges health before URLs: wait out its start-up
			// "unhealthy cluster" (members active for less than 5 s).
			var err error
			for end := time.Now().Add(15 * time.Second); time.Now().Before(end); time.Sleep(250 * time.Millisecond) {
				if _, err = cli.MemberAdd(ctx, []string{usedPeer}); err == nil || !strings.Contains(err.Error(), "unhealthy cluster") {
					break
				}
			}
			return err
		}, "Peer URLs already exists"},
		{"member add with a bad URL", func() error {
			// Raw gRPC: client/v3 would refuse this URL itself.
			_, err := pb.NewClusterClient(cli.ActiveConnection()).MemberAdd(ctx, &pb.MemberAddRequest{PeerURLs: []string{"htp://127.0.0.1:1"}})
			return err
		}, "given member URLs are invalid"},
		{"promote a voter", func() error {
			_, err := cli.MemberPromote(ctx, voter)
			return err
		}, "can only promote a learner member"},
		{"remove an unknown ID", func() error {
			_, err := cli.MemberRemove(ctx, 0x1234)
			return err
		}, "member not found"},
	}
	for _, tc := range cases {
		before, err := cli.Get(ctx, "seed")
		if err != nil {
			t.Fatalf("%s: serving before: %v", tc.name, err)
		}
		mlBefore, _ := cli.MemberList(ctx)
		start := time.Now()
		refusal := tc.do()
		took := time.Since(start)
		if refusal == nil || !strings.Contains(refusal.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error containing %q", tc.name, refusal, tc.want)
			continue
		}
		after, err := cli.Get(ctx, "seed")
		if err != nil {
			t.Fatalf("%s: the member stopped serving: %v", tc.name, err)
		}
		if after.Header.Revision != before.Header.Revision {
			t.Errorf("%s: revision moved %d -> %d on a refused request", tc.name, before.Header.Revision, after.Header.Revision)
		}
		mlAfter, _ := cli.MemberList(ctx)
		if len(mlAfter.Members) != len(mlBefore.Members) {
			t.Errorf("%s: member list changed (%d -> %d members)", tc.name, len(mlBefore.Members), len(mlAfter.Members))
		}
		t.Logf("%s: refused in %v: %v", tc.name, took.Round(time.Millisecond), refusal)
	}
}
