package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cadrekv/cadre/tests/framework"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Helpers of the membership tests; names start with memb to keep clear of
// other files of this package.

// membCtl runs etcdctl against the running members and fails unless it
// exits 0.
func membCtl(t *testing.T, c *framework.Cluster, args ...string) string {
	t.Helper()
	res := c.EtcdctlAt(t, c.RunningEndpoints(), "", args...)
	if res.Code != 0 || res.TimedOut {
		t.Fatalf("etcdctl %q: %s", args, res)
	}
	return res.Stdout
}

// membCtlFails runs etcdctl against endpoints, expects it to fail and
// returns its stderr.
func membCtlFails(t *testing.T, c *framework.Cluster, endpoints []string, args ...string) string {
	t.Helper()
	res := c.EtcdctlAt(t, endpoints, "", args...)
	if res.Code == 0 || res.TimedOut {
		t.Fatalf("etcdctl %q: want a refusal, got %s", args, res)
	}
	return res.Stderr
}

// membAdd runs `etcdctl member add args...` and parses its output,
// retrying "unhealthy cluster" like membCtlRetry.
func membAdd(t *testing.T, c *framework.Cluster, args ...string) framework.MemberAdded {
	t.Helper()
	a, err := framework.ParseMemberAdd(membCtlRetry(t, c, append([]string{"member", "add"}, args...)...))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// membCtlRetry runs a membership command with etcdctl and fails unless it
// exits 0. A member that (re)started less than a few seconds ago does not
// count as connected (etcd: 5 s), so "unhealthy cluster" is retried for
// at most 20 s; any other error fails at once.
func membCtlRetry(t *testing.T, c *framework.Cluster, args ...string) string {
	t.Helper()
	var last framework.Result
	deadline := time.Now().Add(20 * time.Second)
	for attempt := 0; attempt < 100 && time.Now().Before(deadline); attempt++ {
		last = c.EtcdctlAt(t, c.RunningEndpoints(), "", args...)
		if last.Code == 0 {
			return last.Stdout
		}
		if !strings.Contains(last.Stderr, "unhealthy cluster") {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("etcdctl %q: %s", args, last)
	return ""
}

// membList is the membership, one sorted line per member, through client
// (linearizable MemberList).
func membList(t *testing.T, cli *clientv3.Client) []string {
	t.Helper()
	var out []string
	eventually(t, 15*time.Second, "member list", func() error {
		l, err := framework.MemberListClient(ctxFor(t, opTimeout), cli)
		out = l
		return err
	})
	return out
}

// membUnchanged fails the test unless the membership equals want.
func membUnchanged(t *testing.T, cli *clientv3.Client, after string, want []string) {
	t.Helper()
	if got := membList(t, cli); !slices.Equal(got, want) {
		t.Fatalf("membership changed after %s:\n got %q\nwant %q", after, got, want)
	}
}

// membWantErr fails unless err is non-nil and its text contains want.
func membWantErr(t *testing.T, what string, err error, want string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("%s: error %v, want one containing %q", what, err, want)
	}
}

// membJoinFlags are the flags of a member joining at peerURL/clientURL
// with the given data dir; the ETCD_* settings come from the environment.
func membJoinFlags(dataDir, listenPeer, clientURL string) []string {
	return []string{
		"--data-dir", dataDir,
		"--listen-peer-urls", listenPeer,
		"--listen-client-urls", clientURL,
		"--advertise-client-urls", clientURL,
	}
}

// membURL is http://127.0.0.1:port.
func membURL(port int) string { return fmt.Sprintf("http://127.0.0.1:%d", port) }

// membWaitExit waits at most d for m to exit and returns its exit code;
// it fails the test if m is still running then.
func membWaitExit(t *testing.T, m *framework.Member, d time.Duration) int {
	t.Helper()
	code, ok := m.Wait(d)
	if !ok {
		t.Fatalf("%s still running %v after it should have exited\n%s", m.Name, d, m.LogTail(30))
	}
	return code
}

// membClusterID is the cluster ID from a MemberList header.
func membClusterID(t *testing.T, cli *clientv3.Client) uint64 {
	t.Helper()
	resp, err := cli.MemberList(ctxFor(t, opTimeout))
	if err != nil {
		t.Fatalf("member list: %v", err)
	}
	return resp.Header.ClusterId
}

// membPutOn puts key=value through the endpoint of one member, retrying
// for at most d (a restarted member needs a moment to find the leader).
func membPutOn(t *testing.T, m *framework.Member, key, value string, d time.Duration) {
	t.Helper()
	cli := framework.NewClient(t, m.Endpoint())
	eventually(t, d, "put "+key+" through "+m.Name, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := cli.Put(ctx, key, value)
		return err
	})
}

// membSerializableGet waits at most d until m itself serves key=value on a
// serializable read.
func membSerializableGet(t *testing.T, m *framework.Member, key, value string, d time.Duration) {
	t.Helper()
	cli := framework.NewClient(t, m.Endpoint())
	eventually(t, d, m.Name+" serving "+key, func() error {
		r, err := cli.Get(ctxFor(t, opTimeout), key, clientv3.WithSerializable())
		if err != nil {
			return err
		}
		if len(r.Kvs) != 1 || string(r.Kvs[0].Value) != value {
			return fmt.Errorf("got %v", r.Kvs)
		}
		return nil
	})
}
