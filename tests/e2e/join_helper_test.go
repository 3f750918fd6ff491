package e2e

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cadrekv/cadre/tests/framework"
)

// addAndStart adds a member named name at fresh loopback ports through
// cli (as a learner if asked), retrying while the strict check still calls
// the cluster unhealthy, then starts it with the settings the add implies
// and waits until it is healthy. It returns the process and the add's answer.
func addAndStart(t *testing.T, ctx context.Context, c *framework.Cluster, cli *clientv3.Client, name string, learner bool) (*framework.Member, *clientv3.MemberAddResponse) {
	t.Helper()
	ports := framework.FreePorts(t, 2)
	peer, client := membURL(ports[0]), membURL(ports[1])
	var add *clientv3.MemberAddResponse
	var err error
	for deadline := time.Now().Add(20 * time.Second); ; {
		if learner {
			add, err = cli.MemberAddAsLearner(ctx, []string{peer})
		} else {
			add, err = cli.MemberAdd(ctx, []string{peer})
		}
		if err == nil || time.Now().After(deadline) || !strings.Contains(err.Error(), "unhealthy") {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("member add %s: %v", name, err)
	}
	var initial []string
	for _, m := range add.Members {
		n := m.Name
		if m.ID == add.Member.ID {
			n = name
		}
		initial = append(initial, n+"="+m.PeerURLs[0])
	}
	m := c.AddMemberProcess(t, name, append(membJoinFlags(filepath.Join(c.Dir(), name+".data"), peer, client),
		"--name", name, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "existing"), nil)
	m.WaitHealthy(t, 30*time.Second)
	return m, add
}
