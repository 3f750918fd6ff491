package framework

import (
	"slices"
	"testing"
)

func TestParseMemberAdd(t *testing.T) {
	out := "Member 5e949d3cb4a509d1 added to cluster 639a4c36359b447a\n\n" +
		"ETCD_NAME=\"infra4\"\n" +
		"ETCD_INITIAL_CLUSTER=\"infra4=http://localhost:2380,infra2=http://127.0.0.1:22380\"\n" +
		"ETCD_INITIAL_ADVERTISE_PEER_URLS=\"http://localhost:2380\"\n" +
		"ETCD_INITIAL_CLUSTER_STATE=\"existing\"\n"
	a, err := ParseMemberAdd(out)
	if err != nil || a.ID != 0x5e949d3cb4a509d1 || a.ClusterID != 0x639a4c36359b447a || a.Learner ||
		a.Env["ETCD_INITIAL_CLUSTER"] != "infra4=http://localhost:2380,infra2=http://127.0.0.1:22380" {
		t.Fatalf("ParseMemberAdd: %+v, %v", a, err)
	}
	want := []string{
		"ETCD_INITIAL_ADVERTISE_PEER_URLS=http://localhost:2380",
		"ETCD_INITIAL_CLUSTER=infra4=http://localhost:2380,infra2=http://127.0.0.1:22380",
		"ETCD_INITIAL_CLUSTER_STATE=existing",
		"ETCD_NAME=infra4",
	}
	if got := a.EnvList(); !slices.Equal(got, want) {
		t.Fatalf("EnvList: %q, want %q", got, want)
	}
	l, err := ParseMemberAdd("Member  e949d3cb4a509d1 added as learner to cluster 639a4c36359b447a\n")
	if err != nil || !l.Learner || l.ID != 0xe949d3cb4a509d1 {
		t.Fatalf("learner line: %+v, %v", l, err)
	}
	if _, err := ParseMemberAdd("Error: etcdserver: unhealthy cluster\n"); err == nil {
		t.Fatal("ParseMemberAdd accepted an error message")
	}
}

func TestFlagValueAndWithFlag(t *testing.T) {
	args := []string{"--name", "a", "-data-dir=/d", "--listen-client-urls", "http://x:1", "positional"}
	for _, tc := range []struct {
		name, want string
		ok         bool
	}{
		{"name", "a", true},
		{"data-dir", "/d", true},
		{"listen-client-urls", "http://x:1", true},
		{"missing", "", false},
	} {
		if got, ok := FlagValue(args, tc.name); got != tc.want || ok != tc.ok {
			t.Errorf("FlagValue(%s) = %q %v, want %q %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
	got := WithFlag(WithFlag(WithFlag(args, "name", "b"), "data-dir", "/e"), "new-flag", "v")
	want := []string{"--name", "b", "--data-dir=/e", "--listen-client-urls", "http://x:1", "positional", "--new-flag", "v"}
	if !slices.Equal(got, want) {
		t.Fatalf("WithFlag: %q, want %q", got, want)
	}
	if args[1] != "a" {
		t.Fatal("WithFlag changed its input")
	}
}
