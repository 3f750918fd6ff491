package main

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func TestSplitWatchArgs(t *testing.T) {
	tests := []struct {
		name      string
		pos       []string
		dash      int
		env       watchEnv
		keys, cmd []string
		err       error
	}{
		{"key", []string{"a"}, -1, watchEnv{}, []string{"a"}, nil, nil},
		{"range", []string{"a", "b"}, -1, watchEnv{}, []string{"a", "b"}, nil, nil},
		{"exec", []string{"a", "echo", "x"}, 1, watchEnv{}, []string{"a"}, []string{"echo", "x"}, nil},
		{"nothing", nil, -1, watchEnv{}, nil, nil, errWatchArgs},
		{"separator last", []string{"a"}, 1, watchEnv{}, nil, nil, errWatchArgsSeparator},
		{"env key", nil, -1, watchEnv{key: "k"}, []string{"k"}, nil, nil},
		{"env range and exec", []string{"echo"}, 0, watchEnv{key: "k", rangeEnd: "z"}, []string{"k", "z"}, []string{"echo"}, nil},
		{"env and key", []string{"a"}, -1, watchEnv{key: "k"}, nil, nil, errWatchArgsEnv},
		{"env, key and exec", []string{"a", "echo"}, 1, watchEnv{key: "k"}, nil, nil, errWatchArgsEnv},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, cmd, err := splitWatchArgs(tt.pos, tt.dash, tt.env)
			if !errors.Is(err, tt.err) || !reflect.DeepEqual(keys, tt.keys) || !reflect.DeepEqual(cmd, tt.cmd) {
				t.Fatalf("got %q %q %v; want %q %q %v", keys, cmd, err, tt.keys, tt.cmd, tt.err)
			}
		})
	}
}

func TestParseWatchLine(t *testing.T) {
	tests := []struct {
		line     string
		invalid  string
		progress bool
		key      string
		execArgs []string
		code     int // exit code of a line that ends the command
	}{
		{line: "watch foo", key: "foo"},
		{line: "watch --prefix --rev 3 foo -- sh -c 'echo $X'", key: "foo", execArgs: []string{"sh", "-c", "echo $X"}},
		{line: `watch "a b"`, key: "a b"},
		{line: "progress", progress: true},
		{line: "", invalid: "Invalid command:  (watch and progress supported)"},
		{line: "get foo", invalid: "Invalid command get foo (only support watch)"},
		{line: "watch", invalid: "Invalid command watch (command type or key is not provided)"},
		{line: "watch a b --prefix", invalid: "Invalid command watch a b --prefix (`range_end` and `--prefix` are mutually exclusive)"},
		{line: "watch --prefix", code: exitBadArgs},
		{line: "watch foo --", code: exitBadArgs},
		{line: "watch -w json foo", code: exitBadArgs},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			got, err := parseWatchLine(tt.line, watchEnv{})
			if tt.code != 0 {
				var ee *exitError
				if !errors.As(err, &ee) || ee.code != tt.code {
					t.Fatalf("err = %v, want exit code %d", err, tt.code)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.invalid != tt.invalid || got.progress != tt.progress || got.key != tt.key || !reflect.DeepEqual(got.execArgs, tt.execArgs) {
				t.Fatalf("got %+v", got)
			}
		})
	}
}

func TestWatchAndLeaseArgumentErrors(t *testing.T) {
	const ep = "--endpoints=127.0.0.1:1"
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		code    int
		wantErr string
	}{
		{"watch nothing", nil, []string{ep, "watch"}, exitBadArgs, "Error: bad number of arguments\n"},
		{"watch separator only", nil, []string{ep, "watch", "a", "--"}, exitBadArgs,
			"Error: bad number of arguments (found separator --, but no commands)\n"},
		{"watch range end without key", map[string]string{"ETCDCTL_WATCH_RANGE_END": "z"}, []string{ep, "watch"}, exitBadArgs,
			"Error: ETCDCTL_WATCH_KEY is empty but got ETCDCTL_WATCH_RANGE_END=\"z\"\n"},
		{"watch env and key", map[string]string{"ETCDCTL_WATCH_KEY": "k"}, []string{ep, "watch", "a"}, exitBadArgs,
			"Error: bad number of arguments (found conflicting environment key)\n"},
		{"watch prefix and range", nil, []string{ep, "watch", "a", "b", "--prefix"}, exitBadArgs,
			"Error: `range_end` and `--prefix` are mutually exclusive\n"},
		{"watch bad format", nil, []string{ep, "watch", "a", "-w", "yaml"}, exitBadFeature, "Error: unsupported output format\n"},
		{"lease grant", nil, []string{ep, "lease", "grant"}, exitBadArgs, "Error: lease grant command needs TTL argument\n"},
		{"lease grant bad ttl", nil, []string{ep, "lease", "grant", "x"}, exitBadArgs,
			"Error: bad TTL (strconv.ParseInt: parsing \"x\": invalid syntax)\n"},
		{"lease revoke", nil, []string{ep, "lease", "revoke"}, exitBadArgs, "Error: lease revoke command needs 1 argument\n"},
		{"lease revoke bad id", nil, []string{ep, "lease", "revoke", "zz"}, exitBadArgs,
			"Error: bad lease ID arg (strconv.ParseInt: parsing \"zz\": invalid syntax), expecting ID in Hex\n"},
		{"lease timetolive", nil, []string{ep, "lease", "timetolive"}, exitBadArgs,
			"Error: lease timetolive command needs lease ID as argument\n"},
		{"lease keep-alive", nil, []string{ep, "lease", "keep-alive", "--once"}, exitBadArgs,
			"Error: lease keep-alive command needs lease ID as argument\n"},
		{"lock", nil, []string{ep, "lock"}, exitBadArgs,
			"Error: lock takes a lock name argument and an optional command to execute\n"},
		{"elect", nil, []string{ep, "elect"}, exitBadArgs,
			"Error: elect takes one election name argument and an optional proposal argument\n"},
		{"elect no proposal", nil, []string{ep, "elect", "e"}, exitBadArgs, "Error: no proposal argument but -l not set\n"},
		{"elect proposal and listen", nil, []string{ep, "elect", "-l", "e", "p"}, exitBadArgs, "Error: proposal given but -l is set\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(tt.env, "", tt.args...)
			if r.code != tt.code || r.stderr != tt.wantErr || r.stdout != "" {
				t.Fatalf("got code %d stdout %q stderr %q; want code %d stderr %q", r.code, r.stdout, r.stderr, tt.code, tt.wantErr)
			}
		})
	}
}

func TestWatchPrinter(t *testing.T) {
	hdr := &pb.ResponseHeader{ClusterId: 10, MemberId: 11, Revision: 7, RaftTerm: 2}
	resp := &clientv3.WatchResponse{Header: hdr, Events: []*clientv3.Event{
		{Type: mvccpb.Event_PUT, Kv: &mvccpb.KeyValue{Key: []byte("k"), Value: []byte("v2"), CreateRevision: 5, ModRevision: 6, Version: 2},
			PrevKv: &mvccpb.KeyValue{Key: []byte("k"), Value: []byte("v1"), CreateRevision: 5, ModRevision: 5, Version: 1}},
		{Type: mvccpb.Event_DELETE, Kv: &mvccpb.KeyValue{Key: []byte("k"), ModRevision: 7}},
	}}
	tests := []struct {
		format string
		hex    bool
		want   string
		code   int
	}{
		{format: formatSimple, want: "PUT\nk\nv1\nk\nv2\nDELETE\nk\n\n"},
		{format: formatSimple, hex: true, want: "PUT\n\\x6b\n\\x76\\x31\n\\x6b\n\\x76\\x32\nDELETE\n\\x6b\n\n"},
		{format: formatFields, want: `"ClusterID" : 10
"MemberID" : 11
"Revision" : 7
"RaftTerm" : 2
"Type" : PUT
"PrevKey" : "k"
"PrevCreateRevision" : 5
"PrevModRevision" : 5
"PrevVersion" : 1
"PrevValue" : "v1"
"PrevLease" : 0
"Key" : "k"
"CreateRevision" : 5
"ModRevision" : 6
"Version" : 2
"Value" : "v2"
"Lease" : 0
"Type" : DELETE
"Key" : "k"
"CreateRevision" : 0
"ModRevision" : 7
"Version" : 0
"Value" : ""
"Lease" : 0
`},
		{format: formatJSON, want: `{"Header":{"cluster_id":10,"member_id":11,"revision":7,"raft_term":2},"Events":[` +
			`{"kv":{"key":"aw==","create_revision":5,"mod_revision":6,"version":2,"value":"djI="},"prev_kv":{"key":"aw==","create_revision":5,"mod_revision":5,"version":1,"value":"djE="}},` +
			`{"type":1,"kv":{"key":"aw==","mod_revision":7}}],"CompactRevision":0,"Canceled":false,"Created":false,"CancelReason":""}` + "\n"},
		{format: formatTable, code: exitBadFeature},
	}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			p, out, _ := newTestPrinter(tt.format, tt.hex)
			err := p.watch(resp)
			checkPrinted(t, err, out.String(), tt.want, tt.code)
		})
	}
	p, out, _ := newTestPrinter(formatProtobuf, false)
	if err := p.watch(resp); err != nil || out.Len() == 0 {
		t.Fatalf("protobuf: %v, %d bytes", err, out.Len())
	}
}

// checkPrinted checks a printer's output, or the exit code it refused with.
func checkPrinted(t *testing.T, err error, got, want string, code int) {
	t.Helper()
	if code != 0 {
		var ee *exitError
		if !errors.As(err, &ee) || ee.code != code {
			t.Fatalf("err = %v, want exit code %d", err, code)
		}
		return
	}
	if err != nil || got != want {
		t.Fatalf("got %q (%v)\nwant %q", got, err, want)
	}
}

func TestLeasePrinters(t *testing.T) {
	hdr := &pb.ResponseHeader{ClusterId: 10, MemberId: 11, Revision: 7, RaftTerm: 2}
	const id = clientv3.LeaseID(0x6f0ea20a4463ce03)
	grant := &clientv3.LeaseGrantResponse{ResponseHeader: hdr, ID: id, TTL: 60}
	ttl := &clientv3.LeaseTimeToLiveResponse{ResponseHeader: hdr, ID: id, TTL: 59, GrantedTTL: 60, Keys: [][]byte{[]byte("a"), []byte("b")}}
	expired := &clientv3.LeaseTimeToLiveResponse{ResponseHeader: hdr, ID: 0x1234, TTL: -1}
	list := &clientv3.LeaseLeasesResponse{ResponseHeader: hdr, Leases: []clientv3.LeaseStatus{{ID: id}, {ID: 0x1234}}}
	keep := &clientv3.LeaseKeepAliveResponse{ResponseHeader: hdr, ID: id, TTL: 60}
	revoke := &clientv3.LeaseRevokeResponse{Header: hdr}
	hdrFields := "\"ClusterID\" : 10\n\"MemberID\" : 11\n\"Revision\" : 7\n\"RaftTerm\" : 2\n"
	hdrJSON := `"cluster_id":10,"member_id":11,"revision":7,"raft_term":2`

	tests := []struct {
		name   string
		format string
		hex    bool
		print  func(p *printer) error
		want   string
		code   int
	}{
		{"grant", formatSimple, false, func(p *printer) error { return p.leaseGrant(grant) }, "lease 6f0ea20a4463ce03 granted with TTL(60s)\n", 0},
		{"grant", formatJSON, false, func(p *printer) error { return p.leaseGrant(grant) },
			"{" + hdrJSON + `,"ID":8002511752864714243,"TTL":60,"Error":""}` + "\n", 0},
		{"grant", formatFields, true, func(p *printer) error { return p.leaseGrant(grant) },
			"\"ClusterID\" : a\n\"MemberID\" : b\n\"Revision\" : 7\n\"RaftTerm\" : 2\n\"ID\" : 6f0ea20a4463ce03\n\"TTL\" : 60\n", 0},
		{"grant", formatTable, false, func(p *printer) error { return p.leaseGrant(grant) }, "", exitBadFeature},
		{"revoke", formatSimple, false, func(p *printer) error { return p.leaseRevoke(id, revoke) }, "lease 6f0ea20a4463ce03 revoked\n", 0},
		{"revoke", formatJSON, false, func(p *printer) error { return p.leaseRevoke(id, revoke) }, `{"header":{` + hdrJSON + "}}\n", 0},
		{"revoke", formatFields, false, func(p *printer) error { return p.leaseRevoke(id, revoke) }, hdrFields, 0},
		{"revoke", formatProtobuf, false, func(p *printer) error { return p.leaseRevoke(id, revoke) }, "", exitBadFeature},
		{"timetolive", formatSimple, false, func(p *printer) error { return p.leaseTimeToLive(ttl, false) },
			"lease 6f0ea20a4463ce03 granted with TTL(60s), remaining(59s)\n", 0},
		{"timetolive keys", formatSimple, false, func(p *printer) error { return p.leaseTimeToLive(ttl, true) },
			"lease 6f0ea20a4463ce03 granted with TTL(60s), remaining(59s), attached keys([a b])\n", 0},
		{"timetolive expired", formatSimple, false, func(p *printer) error { return p.leaseTimeToLive(expired, true) },
			"lease 0000000000001234 already expired\n", 0},
		{"timetolive", formatJSON, false, func(p *printer) error { return p.leaseTimeToLive(ttl, true) },
			"{" + hdrJSON + `,"id":8002511752864714243,"ttl":59,"granted-ttl":60,"keys":["YQ==","Yg=="]}` + "\n", 0},
		{"timetolive", formatFields, false, func(p *printer) error { return p.leaseTimeToLive(ttl, true) },
			hdrFields + "\"ID\" : 8002511752864714243\n\"TTL\" : 59\n\"GrantedTTL\" : 60\n\"Key\" : \"a\"\n\"Key\" : \"b\"\n", 0},
		{"list", formatSimple, false, func(p *printer) error { return p.leases(list) },
			"found 2 leases\n6f0ea20a4463ce03\n0000000000001234\n", 0},
		{"list", formatJSON, false, func(p *printer) error { return p.leases(list) },
			"{" + hdrJSON + `,"leases":[{"id":8002511752864714243},{"id":4660}]}` + "\n", 0},
		{"list", formatFields, true, func(p *printer) error { return p.leases(list) },
			"\"ClusterID\" : a\n\"MemberID\" : b\n\"Revision\" : 7\n\"RaftTerm\" : 2\n\"ID\" : 6f0ea20a4463ce03\n\"ID\" : 0000000000001234\n", 0},
		{"keep-alive", formatSimple, false, func(p *printer) error { return p.leaseKeepAlive(keep) },
			"lease 6f0ea20a4463ce03 keepalived with TTL(60)\n", 0},
		{"keep-alive", formatJSON, false, func(p *printer) error { return p.leaseKeepAlive(keep) },
			"{" + hdrJSON + `,"ID":8002511752864714243,"TTL":60}` + "\n", 0},
		{"keep-alive", formatTable, false, func(p *printer) error { return p.leaseKeepAlive(keep) }, "", exitBadFeature},
	}
	for _, tt := range tests {
		t.Run(tt.name+" "+tt.format, func(t *testing.T) {
			p, out, _ := newTestPrinter(tt.format, tt.hex)
			checkPrinted(t, tt.print(p), out.String(), tt.want, tt.code)
		})
	}
	// protobuf prints the header alone, as etcdctl (see lease.go).
	p, out, _ := newTestPrinter(formatProtobuf, false)
	if err := p.leaseGrant(grant); err != nil || out.Len() == 0 || strings.Contains(out.String(), "60") {
		t.Fatalf("protobuf grant: %v %q", err, out.String())
	}
}
