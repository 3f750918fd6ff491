package membership

import (
	"errors"
	"strings"
	"testing"
)

// The article's cluster: infra1-3 started; infra4 added as
// http://localhost:2380 and not yet started.
const infra4ID = 0x8e9e05c52164694d

// articleWorking is the --initial-cluster that works for infra4.
const articleWorking = "infra1=http://127.0.0.1:12380,infra2=http://127.0.0.1:22380,infra3=http://127.0.0.1:32380,infra4=http://localhost:2380"

func articleCluster() []*Member {
	return []*Member{
		{ID: 0x1, Name: "infra1", PeerURLs: []string{"http://127.0.0.1:12380"}},
		{ID: 0x2, Name: "infra2", PeerURLs: []string{"http://127.0.0.1:22380"}},
		{ID: 0x3, Name: "infra3", PeerURLs: []string{"http://127.0.0.1:32380"}},
		{ID: infra4ID, PeerURLs: []string{"http://localhost:2380"}},
	}
}

func initial(extra map[string][]string) map[string][]string {
	m := map[string][]string{
		"infra1": {"http://127.0.0.1:12380"},
		"infra2": {"http://127.0.0.1:22380"},
		"infra3": {"http://127.0.0.1:32380"},
	}
	for k, v := range extra {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	return m
}

// parseInitialCluster reads name=url,name=url (test helper for feeding
// the printed working flags back in).
func parseInitialCluster(s string) map[string][]string {
	out := map[string][]string{}
	for _, kv := range strings.Split(s, ",") {
		n, u, ok := strings.Cut(kv, "=")
		if ok {
			out[n] = append(out[n], u)
		}
	}
	return out
}

func splitURLs(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func TestCheckJoinArticleMismatch(t *testing.T) {
	local := initial(map[string][]string{"infra4": {"http://127.0.0.1:2380"}})
	self, err := CheckJoin("infra4", local, []string{"http://127.0.0.1:2380"}, articleCluster())
	if self != nil || !errors.Is(err, ErrJoinMismatch) || errors.Is(err, ErrNotAdded) {
		t.Fatalf("self %v err %v", self, err)
	}
	msg := err.Error()
	for _, want := range []string{
		`member "infra4" is at http://127.0.0.1:2380 locally but the cluster added it as http://localhost:2380 (member ID 8e9e05c52164694d, unstarted)`,
		"0000000000000001  infra1       http://127.0.0.1:12380",
		"0000000000000003  infra3       http://127.0.0.1:32380",
		"8e9e05c52164694d  (unstarted)  http://localhost:2380",
		"--initial-cluster=infra1=http://127.0.0.1:12380,infra2=http://127.0.0.1:22380,infra3=http://127.0.0.1:32380,infra4=http://localhost:2380\n",
		"--initial-advertise-peer-urls=http://localhost:2380\n",
		"--name=infra4 --initial-cluster-state=existing",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "lists") {
		t.Errorf("counts agree, yet the message talks about them:\n%s", msg)
	}
	var je *JoinMismatchError
	if !errors.As(err, &je) || je.Self == nil || je.Self.ID != infra4ID {
		t.Fatalf("no structured answer: %#v", err)
	}
	// The printed flags work.
	self, err = CheckJoin("infra4", parseInitialCluster(je.InitialCluster), splitURLs(je.AdvertisePeerURLs), articleCluster())
	if err != nil || self.ID != infra4ID {
		t.Fatalf("working flags refused: %v", err)
	}
}

func TestCheckJoin(t *testing.T) {
	learner := func() []*Member {
		return append(articleCluster()[:3], &Member{ID: infra4ID, PeerURLs: []string{"http://localhost:2380"}, IsLearner: true})
	}
	started := articleCluster()[:3]
	cases := []struct {
		name    string
		self    string
		local   map[string][]string
		adv     []string
		remote  []*Member
		wantID  uint64 // when accepted
		want    error
		wantIn  []string
		working string // expected --initial-cluster in the error, if any
	}{
		{name: "exact", self: "infra4", local: initial(map[string][]string{"infra4": {"http://localhost:2380"}}),
			adv: []string{"http://localhost:2380"}, remote: articleCluster(), wantID: infra4ID},
		{name: "normalised scheme, host case and trailing slash", self: "infra4",
			local: initial(map[string][]string{"infra4": {"HTTP://LocalHost:2380/"}, "infra1": {"http://127.0.0.1:12380/"}}),
			adv:   []string{"http://LOCALHOST:2380"}, remote: articleCluster(), wantID: infra4ID},
		{name: "other names irrelevant", self: "infra4",
			local: initial(map[string][]string{"infra4": {"http://localhost:2380"}, "infra1": nil, "a": {"http://127.0.0.1:12380"}}),
			adv:   []string{"http://localhost:2380"}, remote: articleCluster(), wantID: infra4ID},
		{name: "learner self", self: "infra4", local: initial(map[string][]string{"infra4": {"http://localhost:2380"}}),
			adv: []string{"http://localhost:2380"}, remote: learner(), wantID: infra4ID},
		{name: "rejoin started member", self: "infra2", local: initial(map[string][]string{"infra4": {"http://localhost:2380"}}),
			adv: []string{"http://127.0.0.1:22380"}, remote: articleCluster(), wantID: 2},
		{name: "multi-URL member in any order", self: "infra1",
			local: map[string][]string{"infra1": {"http://10.0.0.1:2380", "http://127.0.0.1:12380"}, "infra2": {"http://127.0.0.1:22380"}},
			adv:   []string{"http://127.0.0.1:12380", "http://10.0.0.1:2380"},
			remote: []*Member{{ID: 1, Name: "infra1", PeerURLs: []string{"http://127.0.0.1:12380", "http://10.0.0.1:2380"}},
				{ID: 2, Name: "infra2", PeerURLs: []string{"http://127.0.0.1:22380"}}},
			wantID: 1},
		{name: "not added", self: "infra4", local: initial(map[string][]string{"infra4": {"http://127.0.0.1:2380"}}),
			adv: []string{"http://127.0.0.1:2380"}, remote: started, want: ErrNotAdded,
			wantIn: []string{"this member was never added: run `cadrectl member add infra4 --peer-urls=http://127.0.0.1:2380` (or etcdctl member add) on the running cluster first, then start it with the printed settings"}},
		{name: "takes over a started member", self: "infra4", local: initial(map[string][]string{"infra4": {"http://127.0.0.1:32380"}, "infra3": nil}),
			adv: []string{"http://127.0.0.1:32380"}, remote: started, want: ErrNotAdded,
			wantIn: []string{`belong to member infra3 (ID 0000000000000003), which has already started`}},
		{name: "count: member missing locally", self: "infra4", local: initial(map[string][]string{"infra4": {"http://localhost:2380"}, "infra3": nil}),
			adv: []string{"http://localhost:2380"}, remote: articleCluster(), want: ErrJoinMismatch,
			wantIn:  []string{`the cluster has member "infra3" (ID 0000000000000003) at http://127.0.0.1:32380 but --initial-cluster has no entry`, "--initial-cluster lists 3 member(s), the cluster has 4"},
			working: articleWorking},
		{name: "extra member", self: "infra4", local: initial(map[string][]string{"infra4": {"http://localhost:2380"}, "infra5": {"http://127.0.0.1:52380"}}),
			adv: []string{"http://localhost:2380"}, remote: articleCluster(), want: ErrJoinMismatch,
			wantIn:  []string{"--initial-cluster lists infra5=http://127.0.0.1:52380 but no cluster member has these peer URLs", "lists 5 member(s), the cluster has 4"},
			working: articleWorking},
		{name: "another member's URL differs", self: "infra4", local: initial(map[string][]string{"infra4": {"http://localhost:2380"}, "infra2": {"http://127.0.0.1:22381"}}),
			adv: []string{"http://localhost:2380"}, remote: articleCluster(), want: ErrJoinMismatch,
			wantIn:  []string{"lists infra2=http://127.0.0.1:22381 but no cluster member", `the cluster has member "infra2" (ID 0000000000000002) at http://127.0.0.1:22380`},
			working: articleWorking},
		{name: "learner missing locally", self: "infra1", local: initial(nil), adv: []string{"http://127.0.0.1:12380"}, remote: learner(),
			want: ErrJoinMismatch, wantIn: []string{"(unstarted) (ID 8e9e05c52164694d) at http://localhost:2380", "the cluster has 4 (learners count)", "[learner]"},
			working: "infra1=http://127.0.0.1:12380,infra2=http://127.0.0.1:22380,infra3=http://127.0.0.1:32380,member-8e9e05c52164694d=http://localhost:2380"},
		{name: "advertise differs", self: "infra4", local: initial(map[string][]string{"infra4": {"http://localhost:2380"}}),
			adv: []string{"http://127.0.0.1:2380"}, remote: articleCluster(), want: ErrJoinMismatch,
			wantIn:  []string{"--initial-advertise-peer-urls=http://127.0.0.1:2380 but the cluster knows this member (ID 8e9e05c52164694d) at http://localhost:2380", "--initial-advertise-peer-urls=http://localhost:2380\n"},
			working: articleWorking},
		{name: "no advertise URLs", self: "infra4", local: initial(map[string][]string{"infra4": {"http://localhost:2380"}}),
			remote: articleCluster(), want: ErrJoinMismatch, wantIn: []string{"--initial-advertise-peer-urls= but"}, working: articleWorking},
		{name: "name not listed", self: "infra9", local: initial(map[string][]string{"infra4": {"http://localhost:2380"}}),
			adv: []string{"http://localhost:2380"}, remote: articleCluster(), want: ErrJoinMismatch,
			wantIn:  []string{`--initial-cluster has no entry for --name="infra9"`, "lists infra4=http://localhost:2380 but no cluster member"},
			working: "infra1=http://127.0.0.1:12380,infra2=http://127.0.0.1:22380,infra3=http://127.0.0.1:32380,infra9=http://localhost:2380"},
		{name: "started member moved without update", self: "infra3", local: initial(map[string][]string{"infra3": {"http://127.0.0.1:32381"}}),
			adv: []string{"http://127.0.0.1:32381"}, remote: started, want: ErrJoinMismatch,
			wantIn:  []string{`member "infra3" is at http://127.0.0.1:32381 locally but the cluster knows it at http://127.0.0.1:32380 (member ID 0000000000000003, started)`, "member update 0000000000000003 --peer-urls=http://127.0.0.1:32381"},
			working: "infra1=http://127.0.0.1:12380,infra2=http://127.0.0.1:22380,infra3=http://127.0.0.1:32380"},
		{name: "two unstarted candidates", self: "infra4", local: initial(map[string][]string{"infra4": {"http://127.0.0.1:2380"}, "infra5": {"http://127.0.0.1:2381"}}),
			adv:    []string{"http://127.0.0.1:2380"},
			remote: append(articleCluster(), &Member{ID: 5, PeerURLs: []string{"http://localhost:2381"}}), want: ErrJoinMismatch,
			wantIn: []string{"several members are unstarted", "added it as http://localhost:2380", "added it as http://localhost:2381"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			self, err := CheckJoin(tc.self, tc.local, tc.adv, tc.remote)
			if tc.want == nil {
				if err != nil || self == nil || self.ID != tc.wantID {
					t.Fatalf("self %+v err %v, want ID %x", self, err, tc.wantID)
				}
				return
			}
			if self != nil || !errors.Is(err, tc.want) {
				t.Fatalf("self %+v err %v, want %v", self, err, tc.want)
			}
			for _, s := range tc.wantIn {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("message lacks %q:\n%s", s, err)
				}
			}
			var je *JoinMismatchError
			if !errors.As(err, &je) {
				t.Fatalf("not a JoinMismatchError: %T", err)
			}
			if je.InitialCluster != tc.working {
				t.Fatalf("working --initial-cluster %q, want %q", je.InitialCluster, tc.working)
			}
			if je.Self != nil {
				back, err := CheckJoin(tc.self, parseInitialCluster(je.InitialCluster), splitURLs(je.AdvertisePeerURLs), tc.remote)
				if err != nil || back.ID != je.Self.ID {
					t.Fatalf("printed flags do not work: %v", err)
				}
			}
		})
	}
}
