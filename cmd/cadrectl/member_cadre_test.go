package main

// Tests of the Cadre-only parts of the member commands (--dry-run,
// --progress) against fake servers on 127.0.0.1: the HTTP endpoints with
// httptest and, for member list, a gRPC Cluster service on the same port.

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
)

const (
	acceptedVerdict = `{"accepted":true,"votersBefore":["0000000000000001"],"votersAfter":["0000000000000001"],` +
		`"learnersBefore":[],"learnersAfter":["00000000000000ab"],"quorumBefore":1,"quorumAfter":1,` +
		`"failureToleranceBefore":0,"failureToleranceAfter":0,"members":[{"id":"0000000000000001","name":"infra1",` +
		`"started":true,"isLearner":false,"active":true,"activeSince":"2026-11-23T20:00:00Z","match":42,"lag":0}]}`
	refusedVerdict = `{"accepted":false,"error":"etcdserver: unhealthy cluster",` +
		`"fix":"start member 0000000000000003 (infra3) or remove it first","detail":"removing 0000000000000002 leaves 1 of 2 voters active",` +
		`"votersBefore":["0000000000000001","0000000000000002","0000000000000003"],"votersAfter":["0000000000000001","0000000000000003"],` +
		`"learnersBefore":[],"learnersAfter":[],"quorumBefore":2,"quorumAfter":2,"failureToleranceBefore":1,"failureToleranceAfter":0,` +
		`"members":[{"id":"0000000000000001","name":"infra1","started":true,"isLearner":false,"active":true,"activeSince":"2026-11-23T20:00:00Z","match":9,"lag":0},` +
		`{"id":"0000000000000002","name":"infra2","started":true,"isLearner":false,"active":true,"activeSince":"2026-11-23T20:00:01Z","match":9,"lag":0},` +
		`{"id":"0000000000000003","name":"","started":false,"isLearner":false,"active":false,"activeSince":"","match":0,"lag":9}]}`
	progressJSON = `{"leader":"0000000000000001","commit":120,"members":[` +
		`{"id":"0000000000000001","match":120,"lag":0,"snapshotInFlight":false,"snapshotBytesSent":0,"snapshotBytesTotal":0},` +
		`{"id":"00000000000000ab","match":3,"lag":117,"snapshotInFlight":true,"snapshotBytesSent":12000000,"snapshotBytesTotal":28000000}]}`
)

// fakeCadre answers the dry-run endpoint with verdict and records the
// request it got.
func fakeCadre(t *testing.T, verdict string, got *dryRunRequest) string {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+pathDryRun, func(w http.ResponseWriter, r *http.Request) {
		if err := json.NewDecoder(r.Body).Decode(got); err != nil {
			t.Errorf("dry-run body: %v", err)
		}
		io.WriteString(w, verdict+"\n")
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func TestDryRun(t *testing.T) {
	tests := []struct {
		name    string
		verdict string
		args    []string
		want    dryRunRequest
		code    int
		stdout  string
	}{
		{
			name: "add learner accepted", verdict: acceptedVerdict,
			args: []string{"member", "add", "infra4", "--peer-urls=http://10.0.0.4:2380", "--learner", "--dry-run"},
			want: dryRunRequest{Action: "add", Name: "infra4", PeerURLs: []string{"http://10.0.0.4:2380"}, IsLearner: true},
			stdout: "" +
				"Dry run: member add infra4 --peer-urls=http://10.0.0.4:2380 --learner (nothing was changed)\n" +
				"┌──────────────────┬────────┬─────────┬────────────┬──────────────────────┬─────┐\n" +
				"│        ID        │  NAME  │ STARTED │ IS LEARNER │     ACTIVE SINCE     │ LAG │\n" +
				"├──────────────────┼────────┼─────────┼────────────┼──────────────────────┼─────┤\n" +
				"│ 0000000000000001 │ infra1 │    true │      false │ 2026-11-23T20:00:00Z │   0 │\n" +
				"└──────────────────┴────────┴─────────┴────────────┴──────────────────────┴─────┘\n" +
				"Voters:            1 -> 1\n" +
				"Learners:          0 -> 1\n" +
				"Quorum:            1 -> 1\n" +
				"Failure tolerance: 0 -> 0\n" +
				"Verdict: accepted\n",
		},
		{
			name: "remove refused", verdict: refusedVerdict, code: exitFailure,
			args: []string{"member", "remove", "2", "--dry-run"},
			want: dryRunRequest{Action: "remove", ID: "0000000000000002", PeerURLs: []string{}},
			stdout: "" +
				"Dry run: member remove 0000000000000002 (nothing was changed)\n" +
				"┌──────────────────┬────────┬─────────┬────────────┬──────────────────────┬─────┐\n" +
				"│        ID        │  NAME  │ STARTED │ IS LEARNER │     ACTIVE SINCE     │ LAG │\n" +
				"├──────────────────┼────────┼─────────┼────────────┼──────────────────────┼─────┤\n" +
				"│ 0000000000000001 │ infra1 │    true │      false │ 2026-11-23T20:00:00Z │   0 │\n" +
				"│ 0000000000000002 │ infra2 │    true │      false │ 2026-11-23T20:00:01Z │   0 │\n" +
				"│ 0000000000000003 │        │   false │      false │                    - │   9 │\n" +
				"└──────────────────┴────────┴─────────┴────────────┴──────────────────────┴─────┘\n" +
				"Voters:            3 -> 2\n" +
				"Learners:          0 -> 0\n" +
				"Quorum:            2 -> 2\n" +
				"Failure tolerance: 1 -> 0\n" +
				"Detail: removing 0000000000000002 leaves 1 of 2 voters active\n" +
				"Verdict: refused: etcdserver: unhealthy cluster\n" +
				"Fix: start member 0000000000000003 (infra3) or remove it first\n",
		},
		{
			name: "update refused as json", verdict: refusedVerdict, code: exitFailure,
			args:   []string{"member", "update", "ab", "--peer-urls=http://a:1,http://b:2", "--dry-run", "-w", "json"},
			want:   dryRunRequest{Action: "update", ID: "00000000000000ab", PeerURLs: []string{"http://a:1", "http://b:2"}},
			stdout: refusedVerdict + "\n",
		},
		{
			name: "promote accepted as json", verdict: acceptedVerdict,
			args:   []string{"member", "promote", "ab", "--dry-run", "-w", "json"},
			want:   dryRunRequest{Action: "promote", ID: "00000000000000ab", PeerURLs: []string{}},
			stdout: acceptedVerdict + "\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got dryRunRequest
			ep := fakeCadre(t, tt.verdict, &got)
			r := runCLI(nil, "", append([]string{"--endpoints", ep}, tt.args...)...)
			if r.code != tt.code || r.stdout != tt.stdout || r.stderr != "" {
				t.Fatalf("code %d, stderr %q, stdout:\n%s\nwant code %d, stdout:\n%s", r.code, r.stderr, r.stdout, tt.code, tt.stdout)
			}
			gotJSON, _ := json.Marshal(got)
			wantJSON, _ := json.Marshal(tt.want)
			if string(gotJSON) != string(wantJSON) {
				t.Fatalf("request %s, want %s", gotJSON, wantJSON)
			}
		})
	}
}

func TestDryRunErrors(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /busy"+pathDryRun, func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"error":"etcdserver: no leader"}`)
	})
	srv := httptest.NewServer(mux) // everything else: 404, as from etcd
	defer srv.Close()

	tests := []struct {
		name, ep, stderr string
		args             []string
		code             int
	}{
		{"not a Cadre server", srv.URL, "Error: --dry-run needs a Cadre server (the endpoint does not serve /cadre/v1/members/dry-run)\n",
			[]string{"member", "remove", "1", "--dry-run"}, exitFailure},
		{"server error", srv.URL + "/busy", "Error: etcdserver: no leader\n",
			[]string{"member", "promote", "1", "--dry-run"}, exitFailure},
		{"arguments checked first", srv.URL, "Error: member peer urls not provided\n",
			[]string{"member", "add", "x", "--dry-run"}, exitBadArgs},
		{"unsupported format", srv.URL, "Error: fields not supported as output format\n",
			[]string{"member", "remove", "1", "--dry-run", "-w", "fields"}, exitBadFeature},
		{"nothing listening", "127.0.0.1:1", "", []string{"member", "remove", "1", "--dry-run", "--command-timeout", "2s"}, exitFailure},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(nil, "", append([]string{"--endpoints", tt.ep}, tt.args...)...)
			if r.code != tt.code || r.stdout != "" || (tt.stderr != "" && r.stderr != tt.stderr) || !strings.HasPrefix(r.stderr, "Error: ") {
				t.Fatalf("code %d stdout %q stderr %q; want code %d stderr %q", r.code, r.stdout, r.stderr, tt.code, tt.stderr)
			}
		})
	}
}

// fakeCluster serves a fixed member list.
type fakeCluster struct {
	pb.UnimplementedClusterServer
	resp *pb.MemberListResponse
}

func (f *fakeCluster) MemberList(context.Context, *pb.MemberListRequest) (*pb.MemberListResponse, error) {
	return f.resp, nil
}

// fakeCadreServer serves gRPC and HTTP on one loopback port, as Cadre does
// on a client URL, and returns its address.
func fakeCadreServer(t *testing.T, members *pb.MemberListResponse, progress string) string {
	gs := grpc.NewServer()
	pb.RegisterClusterServer(gs, &fakeCluster{resp: members})
	mux := http.NewServeMux()
	if progress != "" {
		mux.HandleFunc("GET "+pathProgress, func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, progress) })
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
			gs.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})}
	srv.Protocols = new(http.Protocols)
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close(); gs.Stop() })
	return l.Addr().String()
}

func TestMemberListProgress(t *testing.T) {
	members := &pb.MemberListResponse{
		Header: &pb.ResponseHeader{ClusterId: 0x10, MemberId: 1, RaftTerm: 2},
		Members: []*pb.Member{
			{ID: 1, Name: "infra1", PeerURLs: []string{"http://127.0.0.1:12380"}, ClientURLs: []string{"http://127.0.0.1:12379"}},
			{ID: 0xab, PeerURLs: []string{"http://127.0.0.1:22380"}, IsLearner: true},
			{ID: 0xcd, PeerURLs: []string{"http://127.0.0.1:32380"}},
		},
	}
	ep := fakeCadreServer(t, members, progressJSON)
	plainJSON := `{"header":{"cluster_id":16,"member_id":1,"raft_term":2},"members":[` +
		`{"ID":1,"name":"infra1","peerURLs":["http://127.0.0.1:12380"],"clientURLs":["http://127.0.0.1:12379"]},` +
		`{"ID":171,"peerURLs":["http://127.0.0.1:22380"],"isLearner":true},{"ID":205,"peerURLs":["http://127.0.0.1:32380"]}]}`
	table := "" +
		"┌────┬───────────┬────────┬────────────────────────┬────────────────────────┬────────────┬─────┬─────────────────────────────┐\n" +
		"│ ID │  STATUS   │  NAME  │       PEER ADDRS       │      CLIENT ADDRS      │ IS LEARNER │ LAG │          SNAPSHOT           │\n" +
		"├────┼───────────┼────────┼────────────────────────┼────────────────────────┼────────────┼─────┼─────────────────────────────┤\n" +
		"│  1 │   started │ infra1 │ http://127.0.0.1:12380 │ http://127.0.0.1:12379 │      false │   0 │                           - │\n" +
		"│ ab │ unstarted │        │ http://127.0.0.1:22380 │                        │       true │ 117 │ sending 42% (12 MB / 28 MB) │\n" +
		"│ cd │ unstarted │        │ http://127.0.0.1:32380 │                        │      false │   - │                           - │\n" +
		"└────┴───────────┴────────┴────────────────────────┴────────────────────────┴────────────┴─────┴─────────────────────────────┘\n"
	tests := []struct {
		name   string
		args   []string
		stdout string
	}{
		{"plain list unchanged", []string{"member", "list", "-w", "json"}, plainJSON + "\n"},
		{"simple", []string{"member", "list", "--progress"}, "" +
			"1, started, infra1, http://127.0.0.1:12380, http://127.0.0.1:12379, false, 0, -\n" +
			"ab, unstarted, , http://127.0.0.1:22380, , true, 117, sending 42% (12 MB / 28 MB)\n" +
			"cd, unstarted, , http://127.0.0.1:32380, , false, -, -\n"},
		{"table", []string{"member", "list", "--progress", "-w", "table"}, table},
		{"wide", []string{"member", "list", "-w", "wide"}, table},
		{"json", []string{"member", "list", "--progress", "-w", "json"},
			strings.TrimSuffix(plainJSON, "}") + `,"progress":` + progressJSON + "}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(nil, "", append([]string{"--endpoints", ep}, tt.args...)...)
			if r.code != 0 || r.stdout != tt.stdout {
				t.Fatalf("code %d stderr %q stdout:\n%s\nwant:\n%s", r.code, r.stderr, r.stdout, tt.stdout)
			}
		})
	}

	notCadre := fakeCadreServer(t, members, "")
	r := runCLI(nil, "", "--endpoints", notCadre, "member", "list", "--progress")
	want := "Error: --progress needs a Cadre server (the endpoint does not serve /cadre/v1/members/progress)\n"
	if r.code != exitFailure || r.stdout != "" || r.stderr != want {
		t.Fatalf("not Cadre: %+v, want stderr %q", r, want)
	}
}

func TestMemberAddPrinter(t *testing.T) {
	resp := &pb.MemberAddResponse{
		Header: &pb.ResponseHeader{ClusterId: 0xdc50b8daae93b3e0, MemberId: 0x667880157b8812c8, RaftTerm: 2},
		Member: &pb.Member{ID: 0x0a5e, PeerURLs: []string{"http://10.0.0.4:2380"}, IsLearner: true},
		Members: []*pb.Member{
			{ID: 0x0a5e, PeerURLs: []string{"http://10.0.0.4:2380"}, IsLearner: true},
			{ID: 0x667880157b8812c8, Name: "infra1", PeerURLs: []string{"http://10.0.0.1:2380"}},
			{ID: 0x7000000000000000, PeerURLs: []string{"http://10.0.0.3:2380"}}, // added, not started
		},
	}
	p, out, _ := newTestPrinter(formatSimple, false)
	if err := p.memberAdd((*clientv3.MemberAddResponse)(resp), "my node", "http://10.0.0.4:2380"); err != nil {
		t.Fatal(err)
	}
	// etcdctl pads IDs with spaces (%16x) and lists members in the
	// response's order, an unstarted one as "=url".
	want := "" +
		"Member " + strings.Repeat(" ", 13) + "a5e added as learner to cluster dc50b8daae93b3e0\n" +
		"\n" +
		"CADRE_NAME=\"my node\"\n" +
		"CADRE_INITIAL_CLUSTER=\"my node=http://10.0.0.4:2380,infra1=http://10.0.0.1:2380,=http://10.0.0.3:2380\"\n" +
		"CADRE_INITIAL_ADVERTISE_PEER_URLS=\"http://10.0.0.4:2380\"\n" +
		"CADRE_INITIAL_CLUSTER_STATE=\"existing\"\n" +
		"\n" +
		"cadre --name 'my node' --initial-cluster 'my node=http://10.0.0.4:2380,infra1=http://10.0.0.1:2380,=http://10.0.0.3:2380' " +
		"--initial-advertise-peer-urls http://10.0.0.4:2380 --listen-peer-urls http://10.0.0.4:2380 --initial-cluster-state existing\n" +
		"# Add --data-dir, --listen-client-urls and --advertise-client-urls as you choose for the new member.\n"
	if out.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", out, want)
	}

	p, out, _ = newTestPrinter(formatJSON, true)
	if err := p.memberAdd((*clientv3.MemberAddResponse)(resp), "x", "u"); err != nil {
		t.Fatal(err)
	}
	wantJSON := `{"header":{"cluster_id":"dc50b8daae93b3e0","member_id":"667880157b8812c8","raft_term":2},` +
		`"member":{"ID":"a5e","peerURLs":["http://10.0.0.4:2380"],"isLearner":true},"members":[` +
		`{"ID":"a5e","peerURLs":["http://10.0.0.4:2380"],"isLearner":true},` +
		`{"ID":"667880157b8812c8","name":"infra1","peerURLs":["http://10.0.0.1:2380"]},` +
		`{"ID":"7000000000000000","peerURLs":["http://10.0.0.3:2380"]}]}` + "\n"
	if out.String() != wantJSON {
		t.Fatalf("json --hex: got\n%s\nwant\n%s", out, wantJSON)
	}

	for _, f := range []string{formatTable, formatFields} {
		p, out, _ = newTestPrinter(f, false)
		if err := p.memberAdd((*clientv3.MemberAddResponse)(resp), "x", "u"); err == nil || err.Error() != f+" not supported as output format" || out.Len() != 0 {
			t.Fatalf("%s: err %v, output %q", f, err, out)
		}
	}
}

func TestVoterWarningOnOneMemberCluster(t *testing.T) {
	one := &pb.MemberListResponse{Header: &pb.ResponseHeader{ClusterId: 1}, Members: []*pb.Member{{ID: 1, Name: "a", PeerURLs: []string{"http://127.0.0.1:1"}}}}
	two := &pb.MemberListResponse{Header: &pb.ResponseHeader{ClusterId: 1}, Members: append([]*pb.Member{{ID: 2, PeerURLs: []string{"http://127.0.0.1:2"}}}, one.Members...)}
	for _, tt := range []struct {
		name    string
		members *pb.MemberListResponse
		args    []string
		warn    bool
	}{
		{"voter to one member", one, nil, true},
		{"learner to one member", one, []string{"--learner"}, false},
		{"voter to two members", two, nil, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// The fake has no MemberAdd: the add itself fails after the check.
			ep := fakeCadreServer(t, tt.members, "")
			r := runCLI(nil, "", append([]string{"--endpoints", ep, "member", "add", "n", "--peer-urls=http://127.0.0.1:3"}, tt.args...)...)
			if got := strings.HasPrefix(r.stderr, oneMemberVoterWarning+"\n"); got != tt.warn || r.code != exitFailure {
				t.Fatalf("warning printed: %v, want %v (code %d, stderr %q)", got, tt.warn, r.code, r.stderr)
			}
		})
	}
}

func TestShellQuoteAndSplice(t *testing.T) {
	for in, want := range map[string]string{
		"infra4": "infra4", "a=http://h:1,b=http://h:2": "a=http://h:1,b=http://h:2",
		"my node": "'my node'", "it's": `'it'\''s'`, "": "''",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
	if got := string(spliceJSON([]byte(`{"a":1}`), "p", []byte(`{"b":2}`))); got != `{"a":1,"p":{"b":2}}` {
		t.Errorf("splice: %s", got)
	}
	if got := string(spliceJSON([]byte(`{}`), "p", []byte(`[]`))); got != `{"p":[]}` {
		t.Errorf("splice into empty: %s", got)
	}
}
