package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func newTestPrinter(format string, hex bool) (*printer, *bytes.Buffer, *bytes.Buffer) {
	var out, errOut bytes.Buffer
	return &printer{format: format, hex: hex, out: &out, errOut: &errOut}, &out, &errOut
}

func TestRenderTable(t *testing.T) {
	tests := []struct {
		name   string
		header []string
		rows   [][]string
		want   string
	}{
		{
			name:   "rows right-aligned, headers centred and upper-cased",
			header: []string{"ID", "Status", "Name", "Is Learner"},
			rows:   [][]string{{"bdae9bbc11dd390d", "started", "default", "false"}},
			want: "" +
				"┌──────────────────┬─────────┬─────────┬────────────┐\n" +
				"│        ID        │ STATUS  │  NAME   │ IS LEARNER │\n" +
				"├──────────────────┼─────────┼─────────┼────────────┤\n" +
				"│ bdae9bbc11dd390d │ started │ default │      false │\n" +
				"└──────────────────┴─────────┴─────────┴────────────┘\n",
		},
		{
			name:   "no rows: no separator",
			header: []string{"endpoint", "ID"},
			want: "" +
				"┌──────────┬────┐\n" +
				"│ ENDPOINT │ ID │\n" +
				"└──────────┴────┘\n",
		},
		{
			name:   "empty cells and several rows",
			header: []string{"endpoint", "health", "took", "error"},
			rows: [][]string{
				{"127.0.0.1:23791", "true", "6.652747ms", ""},
				{"127.0.0.1:1", "false", "5.001043053s", "context deadline exceeded"},
			},
			want: "" +
				"┌─────────────────┬────────┬──────────────┬───────────────────────────┐\n" +
				"│    ENDPOINT     │ HEALTH │     TOOK     │           ERROR           │\n" +
				"├─────────────────┼────────┼──────────────┼───────────────────────────┤\n" +
				"│ 127.0.0.1:23791 │   true │   6.652747ms │                           │\n" +
				"│     127.0.0.1:1 │  false │ 5.001043053s │ context deadline exceeded │\n" +
				"└─────────────────┴────────┴──────────────┴───────────────────────────┘\n",
		},
		{
			name:   "multi-line cell",
			header: []string{"a", "b"},
			rows:   [][]string{{"x\nyy", "z"}},
			want: "" +
				"┌────┬───┐\n" +
				"│ A  │ B │\n" +
				"├────┼───┤\n" +
				"│  x │ z │\n" +
				"│ yy │   │\n" +
				"└────┴───┘\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			renderTable(&b, tt.header, tt.rows)
			if b.String() != tt.want {
				t.Fatalf("got\n%s\nwant\n%s", b.String(), tt.want)
			}
		})
	}
}

func TestHumanBytes(t *testing.T) {
	tests := []struct {
		in   uint64
		want string
	}{
		{0, "0 B"}, {9, "9 B"}, {10, "10 B"}, {999, "999 B"}, {1000, "1.0 kB"}, {16384, "16 kB"},
		{20480, "20 kB"}, {99949, "100 kB"}, {2147483648, "2.1 GB"}, {8589934592, "8.6 GB"},
	}
	for _, tt := range tests {
		if got := humanBytes(tt.in); got != tt.want {
			t.Errorf("humanBytes(%d) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func testHeader() *pb.ResponseHeader {
	return &pb.ResponseHeader{ClusterId: 0xd1cfaf999eb97a2a, MemberId: 0xbdae9bbc11dd390d, Revision: 7, RaftTerm: 2}
}

func testKV() *mvccpb.KeyValue {
	return &mvccpb.KeyValue{Key: []byte("foo"), Value: []byte("bar\n"), CreateRevision: 2, ModRevision: 5, Version: 3, Lease: 0x1f}
}

func TestSimpleAndFieldsKV(t *testing.T) {
	resp := &clientv3.GetResponse{Header: testHeader(), Kvs: []*mvccpb.KeyValue{testKV()}, Count: 1}
	tests := []struct {
		format    string
		hex       bool
		valueOnly bool
		want      string
	}{
		{formatSimple, false, false, "foo\nbar\n\n"},
		{formatSimple, true, false, `\x66\x6f\x6f` + "\n" + `\x62\x61\x72\x0a` + "\n"},
		{formatSimple, false, true, "bar\n\n"},
		{formatFields, false, false, `"ClusterID" : 15118495548433857066
"MemberID" : 13668033151171901709
"Revision" : 7
"RaftTerm" : 2
"Key" : "foo"
"CreateRevision" : 2
"ModRevision" : 5
"Version" : 3
"Value" : "bar\n"
"Lease" : 31
"More" : false
"Count" : 1
`},
		{formatFields, true, false, `"ClusterID" : d1cfaf999eb97a2a
"MemberID" : bdae9bbc11dd390d
"Revision" : 7
"RaftTerm" : 2
"Key" : "foo"
"CreateRevision" : 2
"ModRevision" : 5
"Version" : 3
"Value" : "bar\n"
"Lease" : 000000000000001f
"More" : false
"Count" : 1
`},
		{formatJSON, false, false, `{"header":{"cluster_id":15118495548433857066,"member_id":13668033151171901709,"revision":7,"raft_term":2},"kvs":[{"key":"Zm9v","create_revision":2,"mod_revision":5,"version":3,"value":"YmFyCg==","lease":31}],"count":1}` + "\n"},
	}
	for _, tt := range tests {
		p, out, _ := newTestPrinter(tt.format, tt.hex)
		p.valueOnly = tt.valueOnly
		if err := p.get(resp); err != nil {
			t.Fatalf("%s: %v", tt.format, err)
		}
		if out.String() != tt.want {
			t.Errorf("%s hex=%v valueOnly=%v:\ngot  %q\nwant %q", tt.format, tt.hex, tt.valueOnly, out.String(), tt.want)
		}
	}
}

func TestUnsupportedFormat(t *testing.T) {
	p, out, _ := newTestPrinter(formatTable, false)
	err := p.put(&clientv3.PutResponse{Header: testHeader()})
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != exitBadFeature || ee.Error() != "table not supported as output format" {
		t.Fatalf("err = %v, want exit %d 'table not supported as output format'", err, exitBadFeature)
	}
	if out.Len() != 0 {
		t.Fatalf("unexpected output %q", out.String())
	}
}

func testTxnResponse() *clientv3.TxnResponse {
	return &clientv3.TxnResponse{
		Header:    testHeader(),
		Succeeded: true,
		Responses: []*pb.ResponseOp{
			{Response: &pb.ResponseOp_ResponseRange{ResponseRange: &pb.RangeResponse{
				Header: &pb.ResponseHeader{Revision: 6}, Kvs: []*mvccpb.KeyValue{{Key: []byte("a"), Value: []byte("1")}}, Count: 1}}},
			{Response: &pb.ResponseOp_ResponsePut{ResponsePut: &pb.PutResponse{Header: &pb.ResponseHeader{Revision: 7}}}},
			{Response: &pb.ResponseOp_ResponseDeleteRange{ResponseDeleteRange: &pb.DeleteRangeResponse{
				Header: &pb.ResponseHeader{Revision: 7}, Deleted: 1, PrevKvs: []*mvccpb.KeyValue{{Key: []byte("b"), Value: []byte("2")}}}}},
		},
	}
}

func TestTxnPrinters(t *testing.T) {
	tests := []struct {
		format string
		want   string
	}{
		{formatSimple, "SUCCESS\n\na\n1\n\nOK\n\n1\nb\n2\n"},
		{formatJSON, `{"header":{"cluster_id":15118495548433857066,"member_id":13668033151171901709,"revision":7,"raft_term":2},"succeeded":true,"responses":[` +
			`{"Response":{"response_range":{"header":{"revision":6},"kvs":[{"key":"YQ==","value":"MQ=="}],"count":1}}},` +
			`{"Response":{"response_put":{"header":{"revision":7}}}},` +
			`{"Response":{"response_delete_range":{"header":{"revision":7},"deleted":1,"prev_kvs":[{"key":"Yg==","value":"Mg=="}]}}}]}` + "\n"},
	}
	for _, tt := range tests {
		p, out, _ := newTestPrinter(tt.format, false)
		if err := p.txn(testTxnResponse()); err != nil {
			t.Fatal(err)
		}
		if out.String() != tt.want {
			t.Errorf("%s:\ngot  %s\nwant %s", tt.format, out.String(), tt.want)
		}
	}
	// A failed txn with no responses: "succeeded" and "responses" are omitted.
	p, out, _ := newTestPrinter(formatJSON, false)
	if err := p.txn(&clientv3.TxnResponse{Header: testHeader()}); err != nil {
		t.Fatal(err)
	}
	if want := `{"header":{"cluster_id":15118495548433857066,"member_id":13668033151171901709,"revision":7,"raft_term":2}}` + "\n"; out.String() != want {
		t.Errorf("got %s want %s", out.String(), want)
	}
}

func testMembers() *clientv3.MemberListResponse {
	return &clientv3.MemberListResponse{
		Header: &pb.ResponseHeader{ClusterId: 0xd1cfaf999eb97a2a, MemberId: 0xbdae9bbc11dd390d, RaftTerm: 2},
		Members: []*pb.Member{
			{ID: 0xbdae9bbc11dd390d, Name: "default", PeerURLs: []string{"http://127.0.0.1:2380"}, ClientURLs: []string{"http://127.0.0.1:2379", "http://10.0.0.1:2379"}},
			{ID: 0x1234, PeerURLs: []string{"http://127.0.0.2:2380"}, IsLearner: true},
		},
	}
}

func TestMemberListPrinters(t *testing.T) {
	tests := []struct {
		format string
		hex    bool
		want   string
	}{
		{formatSimple, false, "bdae9bbc11dd390d, started, default, http://127.0.0.1:2380, http://127.0.0.1:2379,http://10.0.0.1:2379, false\n" +
			"1234, unstarted, , http://127.0.0.2:2380, , true\n"},
		{formatTable, false, "" +
			"┌──────────────────┬───────────┬─────────┬───────────────────────┬────────────────────────────────────────────┬────────────┐\n" +
			"│        ID        │  STATUS   │  NAME   │      PEER ADDRS       │                CLIENT ADDRS                │ IS LEARNER │\n" +
			"├──────────────────┼───────────┼─────────┼───────────────────────┼────────────────────────────────────────────┼────────────┤\n" +
			"│ bdae9bbc11dd390d │   started │ default │ http://127.0.0.1:2380 │ http://127.0.0.1:2379,http://10.0.0.1:2379 │      false │\n" +
			"│             1234 │ unstarted │         │ http://127.0.0.2:2380 │                                            │       true │\n" +
			"└──────────────────┴───────────┴─────────┴───────────────────────┴────────────────────────────────────────────┴────────────┘\n"},
		{formatJSON, false, `{"header":{"cluster_id":15118495548433857066,"member_id":13668033151171901709,"raft_term":2},"members":[` +
			`{"ID":13668033151171901709,"name":"default","peerURLs":["http://127.0.0.1:2380"],"clientURLs":["http://127.0.0.1:2379","http://10.0.0.1:2379"]},` +
			`{"ID":4660,"peerURLs":["http://127.0.0.2:2380"],"isLearner":true}]}` + "\n"},
		{formatJSON, true, `{"header":{"cluster_id":"d1cfaf999eb97a2a","member_id":"bdae9bbc11dd390d","raft_term":2},"members":[` +
			`{"ID":"bdae9bbc11dd390d","name":"default","peerURLs":["http://127.0.0.1:2380"],"clientURLs":["http://127.0.0.1:2379","http://10.0.0.1:2379"]},` +
			`{"ID":"1234","peerURLs":["http://127.0.0.2:2380"],"isLearner":true}]}` + "\n"},
	}
	for _, tt := range tests {
		p, out, _ := newTestPrinter(tt.format, tt.hex)
		if err := p.memberList(testMembers()); err != nil {
			t.Fatal(err)
		}
		if out.String() != tt.want {
			t.Errorf("%s hex=%v:\ngot\n%s\nwant\n%s", tt.format, tt.hex, out.String(), tt.want)
		}
	}
}

func TestEndpointPrinters(t *testing.T) {
	status := []endpointStatusResult{{Endpoint: "127.0.0.1:2379", Status: &clientv3.StatusResponse{
		Header: testHeader(), Version: "3.7.3", StorageVersion: "3.7.0", DbSize: 20480, DbSizeInUse: 16384,
		DbSizeQuota: 2147483648, Leader: 0xbdae9bbc11dd390d, RaftIndex: 6, RaftTerm: 2, RaftAppliedIndex: 6,
		DowngradeInfo: &pb.DowngradeInfo{},
	}}}
	p, out, _ := newTestPrinter(formatSimple, false)
	if err := p.endpointStatus(status); err != nil {
		t.Fatal(err)
	}
	if want := "127.0.0.1:2379, bdae9bbc11dd390d, 3.7.3, 3.7.0, 20 kB, 16 kB, 20%, 2.1 GB, true, false, 2, 6, 6, , , false\n"; out.String() != want {
		t.Errorf("status simple:\ngot  %q\nwant %q", out.String(), want)
	}
	p, out, _ = newTestPrinter(formatJSON, false)
	if err := p.endpointStatus(status); err != nil {
		t.Fatal(err)
	}
	if want := `[{"Endpoint":"127.0.0.1:2379","Status":{"header":{"cluster_id":15118495548433857066,"member_id":13668033151171901709,"revision":7,"raft_term":2},` +
		`"version":"3.7.3","dbSize":20480,"leader":13668033151171901709,"raftIndex":6,"raftTerm":2,"raftAppliedIndex":6,"dbSizeInUse":16384,` +
		`"storageVersion":"3.7.0","dbSizeQuota":2147483648,"downgradeInfo":{}}}]` + "\n"; out.String() != want {
		t.Errorf("status json:\ngot  %s\nwant %s", out.String(), want)
	}

	health := []endpointHealthResult{
		{Endpoint: "a:1", Health: true, Took: "1ms"},
		{Endpoint: "b:2", Took: "5s", Error: "context deadline exceeded"},
	}
	p, out, errOut := newTestPrinter(formatSimple, false)
	if err := p.endpointHealth(health); err != nil {
		t.Fatal(err)
	}
	if want := "a:1 is healthy: successfully committed proposal: took = 1ms\n"; out.String() != want {
		t.Errorf("health simple stdout %q, want %q", out.String(), want)
	}
	if want := "b:2 is unhealthy: failed to commit proposal: context deadline exceeded\n"; errOut.String() != want {
		t.Errorf("health simple stderr %q, want %q", errOut.String(), want)
	}
	p, out, _ = newTestPrinter(formatJSON, false)
	if err := p.endpointHealth(health); err != nil {
		t.Fatal(err)
	}
	if want := `[{"endpoint":"a:1","health":true,"took":"1ms"},{"endpoint":"b:2","health":false,"took":"5s","error":"context deadline exceeded"}]` + "\n"; out.String() != want {
		t.Errorf("health json %s, want %s", out.String(), want)
	}
}
