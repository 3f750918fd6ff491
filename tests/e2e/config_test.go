package e2e

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cadrekv/cadre/tests/framework"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// flagList is an ordered flag set where a case can replace or drop a flag.
type flagList [][2]string

func (f flagList) with(set map[string]string, drop ...string) []string {
	var args []string
	for _, kv := range f {
		if strings.Contains(" "+strings.Join(drop, " ")+" ", " "+kv[0]+" ") {
			continue
		}
		v := kv[1]
		if nv, ok := set[kv[0]]; ok {
			v = nv
		}
		args = append(args, kv[0], v)
	}
	return args
}

// TestConfigErrors: a bad configuration stops Cadre before it touches the
// disk or the network, with one line on stderr naming the flag and value.
func TestConfigErrors(t *testing.T) {
	framework.SkipUnlessCadre(t)
	bin := framework.Server(t)
	// Ports that nothing listens on: the process must not get as far as
	// binding them anyway.
	const client, peer, other = "http://127.0.0.1:1", "http://127.0.0.1:2", "http://127.0.0.1:3"
	cases := []struct {
		name string
		set  map[string]string
		drop []string
		env  []string
		want []string // substrings of stderr
	}{
		{"listen URL without scheme", map[string]string{"--listen-client-urls": "127.0.0.1:2379"}, nil, nil,
			[]string{"--listen-client-urls", "127.0.0.1:2379"}},
		{"listen URL with a host name", map[string]string{"--listen-peer-urls": "http://example.com:2380"}, nil, nil,
			[]string{"--listen-peer-urls", "http://example.com:2380"}},
		{"unknown URL scheme", map[string]string{"--listen-client-urls": "htp://127.0.0.1:1"}, nil, nil,
			[]string{"--listen-client-urls", "htp://127.0.0.1:1"}},
		{"URL with a path", map[string]string{"--advertise-client-urls": "http://127.0.0.1:1/path"}, nil, nil,
			[]string{"--advertise-client-urls", "http://127.0.0.1:1/path"}},
		{"duplicate peer URL in initial cluster", map[string]string{"--initial-cluster": "infra1=" + peer + ",infra2=" + peer}, nil, nil,
			[]string{"--initial-cluster", peer}},
		{"name missing from initial cluster", map[string]string{"--name": "infra9"}, nil, nil,
			[]string{"--initial-cluster", "infra9"}},
		{"advertised peer URL not in initial cluster", map[string]string{"--initial-advertise-peer-urls": other}, nil, nil,
			[]string{"--initial-advertise-peer-urls", other}},
		{"bad initial cluster state", map[string]string{"--initial-cluster-state": "bogus"}, nil, nil,
			[]string{"--initial-cluster-state", "bogus"}},
		{"bad initial cluster state from env", nil, []string{"--initial-cluster-state"}, []string{"ETCD_INITIAL_CLUSTER_STATE=bogus"},
			[]string{"--initial-cluster-state", "bogus"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dataDir := filepath.Join(t.TempDir(), "data")
			base := flagList{
				{"--name", "infra1"},
				{"--data-dir", dataDir},
				{"--listen-client-urls", client},
				{"--advertise-client-urls", client},
				{"--listen-peer-urls", peer},
				{"--initial-advertise-peer-urls", peer},
				{"--initial-cluster", "infra1=" + peer},
				{"--initial-cluster-state", "new"},
				{"--initial-cluster-token", "cadre-e2e"},
			}
			args := base.with(tc.set, tc.drop...)
			res := framework.RunProcessIn(t, "", 10*time.Second, bin, args, tc.env, nil)
			if res.TimedOut || res.Code == 0 {
				t.Fatalf("cadre %q (env %q) did not fail fast: %s", args, tc.env, res)
			}
			stderr := strings.TrimSpace(res.Stderr)
			if n := len(lines(stderr)); n != 1 {
				t.Errorf("stderr has %d lines, want one:\n%s", n, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr does not mention %q:\n%s", w, stderr)
				}
			}
			if _, err := os.Stat(dataDir); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("--data-dir %s was created (stat: %v); validation must come first", dataDir, err)
			}
		})
	}
}

// TestNoFlagsDefaultCluster: `cadre` alone starts a one-member cluster on
// 127.0.0.1:2379 with its data in ./default.cadre, and stops cleanly.
func TestNoFlagsDefaultCluster(t *testing.T) {
	framework.SkipUnlessCadre(t)
	for _, addr := range []string{"127.0.0.1:2379", "127.0.0.1:2380"} {
		if !framework.PortFree(addr) {
			t.Skipf("%s is in use on this machine", addr)
		}
	}
	dir := t.TempDir()
	const endpoint = "http://127.0.0.1:2379"
	m := framework.StartServer(t, framework.ServerSpec{Name: "default", Dir: dir, ClientURL: endpoint})
	m.WaitHealthy(t, framework.DefaultHealthTimeout)

	if st, err := os.Stat(filepath.Join(dir, "default.cadre")); err != nil || !st.IsDir() {
		t.Fatalf("./default.cadre not created in the working dir: %v", err)
	}
	cli := framework.NewClient(t, endpoint)
	for i := range 3 {
		if _, err := cli.Put(ctxFor(t, opTimeout), "k"+strconv.Itoa(i), "v"+strconv.Itoa(i)); err != nil {
			t.Fatalf("put: %v", err)
		}
	}
	r, err := cli.Get(ctxFor(t, opTimeout), "k", clientv3.WithPrefix())
	if err != nil || r.Count != 3 || string(r.Kvs[2].Value) != "v2" {
		t.Fatalf("get: %v %v", err, r)
	}
	if code := m.Stop(t); code != 0 {
		t.Fatalf("exit code %d on SIGTERM, want 0", code)
	}
}
