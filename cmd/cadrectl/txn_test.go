package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

func TestParseCompare(t *testing.T) {
	tests := []struct {
		line    string
		want    *pb.Compare // nil: an error is expected
		wantErr string
	}{
		{line: `value("k1") = "v 1"`, want: &pb.Compare{Key: []byte("k1"), Target: pb.Compare_VALUE, Result: pb.Compare_EQUAL, TargetUnion: &pb.Compare_Value{Value: []byte("v 1")}}},
		{line: `val("k") != "x"`, want: &pb.Compare{Key: []byte("k"), Target: pb.Compare_VALUE, Result: pb.Compare_NOT_EQUAL, TargetUnion: &pb.Compare_Value{Value: []byte("x")}}},
		{line: `mod("k") > "0"`, want: &pb.Compare{Key: []byte("k"), Target: pb.Compare_MOD, Result: pb.Compare_GREATER, TargetUnion: &pb.Compare_ModRevision{ModRevision: 0}}},
		{line: `m("k") < "9"`, want: &pb.Compare{Key: []byte("k"), Target: pb.Compare_MOD, Result: pb.Compare_LESS, TargetUnion: &pb.Compare_ModRevision{ModRevision: 9}}},
		{line: `create("k") = "3"`, want: &pb.Compare{Key: []byte("k"), Target: pb.Compare_CREATE, TargetUnion: &pb.Compare_CreateRevision{CreateRevision: 3}}},
		{line: `c("k") = "3"`, want: &pb.Compare{Key: []byte("k"), Target: pb.Compare_CREATE, TargetUnion: &pb.Compare_CreateRevision{CreateRevision: 3}}},
		{line: `version("k") = "2"`, want: &pb.Compare{Key: []byte("k"), Target: pb.Compare_VERSION, TargetUnion: &pb.Compare_Version{Version: 2}}},
		{line: `ver("k\n") = "2"`, want: &pb.Compare{Key: []byte("k\n"), Target: pb.Compare_VERSION, TargetUnion: &pb.Compare_Version{Version: 2}}},
		{line: `lease("k") = "42"`, want: &pb.Compare{Key: []byte("k"), Target: pb.Compare_LEASE, TargetUnion: &pb.Compare_Lease{Lease: 42}}},
		{line: `bad`, wantErr: "malformed comparison: bad"},
		{line: `value("k") =`, wantErr: `malformed comparison: value("k") =; got value("k") = ""`},
		{line: `size("k") = "1"`, wantErr: `malformed comparison: size("k") = "1" (unknown target size)`},
		{line: `mod("k") = "x"`, wantErr: `invalid txn compare request: mod("k") = "x"`},
		{line: `mod("k") <= "1"`, wantErr: `malformed comparison: mod("k") <= "1" (unknown operator <=, expected =, !=, < or >)`},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			cmp, err := parseCompare(tt.line)
			if tt.want == nil {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := wireCompare(t, cmp); !proto.Equal(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSplitArgs(t *testing.T) {
	tests := []struct {
		line string
		want []string
	}{
		{`put k v`, []string{"put", "k", "v"}},
		{`put  "a b"  'c d'`, []string{"put", "a b", "c d"}},
		{`put k "line\nbreak \"q\""`, []string{"put", "k", "line\nbreak \"q\""}},
		{`get --prefix a`, []string{"get", "--prefix", "a"}},
		{`put k a"b`, []string{"put", "k", `a"b`}},
	}
	for _, tt := range tests {
		got, err := splitArgs(tt.line)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("splitArgs(%q) = %q, %v; want %q", tt.line, got, err, tt.want)
		}
	}
}

func TestParseOp(t *testing.T) {
	tests := []struct {
		line string
		want *pb.RequestOp // nil: an error with wantCode is expected
		code int
	}{
		{line: `put k "v v"`, want: &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("k"), Value: []byte("v v")}}}},
		{line: `put k v --prev-kv --lease 1f`, want: &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("k"), Value: []byte("v"), PrevKv: true, Lease: 0x1f}}}},
		{line: `get k`, want: &pb.RequestOp{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte("k")}}}},
		{line: `g --prefix ab`, want: &pb.RequestOp{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte("ab"), RangeEnd: []byte("ac")}}}},
		{line: `del --prev-kv --from-key a`, want: &pb.RequestOp{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: &pb.DeleteRangeRequest{Key: []byte("a"), RangeEnd: []byte{0}, PrevKv: true}}}},
		{line: `del a c --range`, want: &pb.RequestOp{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: &pb.DeleteRangeRequest{Key: []byte("a"), RangeEnd: []byte("c")}}}},
		{line: `get`, code: exitInvalidInput},
		{line: `frob k`, code: exitInvalidInput},
		{line: `get k --bogus`, code: exitInvalidInput},
		{line: `get k --help`, code: exitInvalidInput},
		{line: `put k`, code: exitBadArgs},
		{line: `put k v --lease zz`, code: exitBadArgs},
		{line: `get a --prefix --from-key`, code: exitBadArgs},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			op, err := parseOp(tt.line, io.Discard)
			if tt.want == nil {
				var ee *exitError
				if !errors.As(err, &ee) || ee.code != tt.code {
					t.Fatalf("err = %v, want exit code %d", err, tt.code)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := requestOp(t, op); !proto.Equal(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// captureKV is a KV client that records the transaction it is sent.
type captureKV struct {
	pb.KVClient // nil: only Txn is called
	req         *pb.TxnRequest
}

func (c *captureKV) Txn(_ context.Context, in *pb.TxnRequest, _ ...grpc.CallOption) (*pb.TxnResponse, error) {
	c.req = in
	return &pb.TxnResponse{}, nil
}

// wireCompare returns the wire form of cmp, as clientv3 would send it.
func wireCompare(t *testing.T, cmp clientv3.Cmp) *pb.Compare {
	t.Helper()
	c := &captureKV{}
	if _, err := clientv3.NewKVFromKVClient(c, nil).Txn(t.Context()).If(cmp).Commit(); err != nil {
		t.Fatal(err)
	}
	if c.req == nil || len(c.req.Compare) != 1 {
		t.Fatalf("captured %v, want one compare", c.req)
	}
	return c.req.Compare[0]
}

// requestOp returns the wire form of op, as clientv3 would send it in a txn.
func requestOp(t *testing.T, op clientv3.Op) *pb.RequestOp {
	t.Helper()
	c := &captureKV{}
	if _, err := clientv3.NewKVFromKVClient(c, nil).Txn(t.Context()).Then(op).Commit(); err != nil {
		t.Fatal(err)
	}
	if c.req == nil || len(c.req.Success) != 1 {
		t.Fatalf("captured %v, want one request", c.req)
	}
	return c.req.Success[0]
}

func TestReadSections(t *testing.T) {
	in := "value(\"a\") = \"1\"\n  mod(\"b\") > \"0\"  \n\nput a 2\nget b\n\n\n"
	r := bufio.NewReader(strings.NewReader(in))
	cmps, err := readCompares(r)
	if err != nil || len(cmps) != 2 {
		t.Fatalf("compares = %d, %v; want 2", len(cmps), err)
	}
	thenOps, err := readOps(r, io.Discard)
	if err != nil || len(thenOps) != 2 || !thenOps[0].IsPut() || !thenOps[1].IsGet() {
		t.Fatalf("then ops = %+v, %v", thenOps, err)
	}
	elseOps, err := readOps(r, io.Discard)
	if err != nil || len(elseOps) != 0 {
		t.Fatalf("else ops = %+v, %v", elseOps, err)
	}

	// Input that ends before the empty line closing a section is an error,
	// exit code 3, message "EOF", like etcdctl.
	r = bufio.NewReader(strings.NewReader("\nput a 1\n"))
	if _, err := readCompares(r); err != nil {
		t.Fatal(err)
	}
	_, err = readOps(r, io.Discard)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != exitInvalidInput || ee.Error() != "EOF" {
		t.Fatalf("err = %v, want exit %d EOF", err, exitInvalidInput)
	}
}
