package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/cadrekv/cadre/tests/framework"
	"github.com/cadrekv/cadre/tests/lincheck"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Bounds of the reconfiguration steps.
const (
	linStepBudget = 20 * time.Second // one member-API call, retried
	linExitBudget = 20 * time.Second // a removed member's process exiting
	linRPCTimeout = 5 * time.Second
)

// linNode is one member of the reconfigured cluster as this test tracks it:
// framework.Member flags are fixed at creation, so a member restarted on a
// new peer URL is a new process started with StartServer.
type linNode struct {
	name   string
	id     uint64
	client string
	peer   string
	proc   *framework.Member
}

// linCluster drives membership changes on a running cluster.
type linCluster struct {
	t     *testing.T
	token string
	nodes []*linNode // current voting members and learners, all running
	rec   *lincheck.Recorder
	notes []porcupine.Annotation
}

// linDial is a client for endpoints that the caller closes.
func linDial(t *testing.T, endpoints ...string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatalf("client for %v: %v", endpoints, err)
	}
	return cli
}

// linUnimplemented reports whether err says the server lacks the RPC.
func linUnimplemented(err error) bool {
	if status.Code(err) == codes.Unimplemented {
		return true
	}
	var ce interface{ Code() codes.Code }
	return errors.As(err, &ce) && ce.Code() == codes.Unimplemented
}

// linSkipIfUnimplemented skips the test while Cadre's Cluster service is
// not there yet; any other error is the caller's to judge.
func linSkipIfUnimplemented(t *testing.T, what string, err error) {
	t.Helper()
	if linUnimplemented(err) {
		t.Skipf("%s: the server answers codes.Unimplemented (%v); this test needs the Cluster service (MemberAddAsLearner/Promote/Update/Remove/List)", what, err)
	}
}

// retry runs f until it returns nil or budget passes, then fails the test.
// codes.Unimplemented skips the test at once.
func (c *linCluster) retry(what string, budget time.Duration, f func(ctx context.Context) error) {
	c.t.Helper()
	start := time.Now()
	deadline := start.Add(budget)
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), linRPCTimeout)
		err := f(ctx)
		cancel()
		if err == nil {
			if attempt > 1 {
				c.t.Logf("%s: done after %d attempts in %v", what, attempt, time.Since(start).Round(time.Millisecond))
			}
			return
		}
		linSkipIfUnimplemented(c.t, what, err)
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: still failing after %d attempts in %v: %v", what, attempt, budget, err)
		}
		if attempt == 1 || attempt%10 == 0 {
			c.t.Logf("%s: attempt %d: %v (retrying)", what, attempt, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// step runs one named reconfiguration step and keeps its time window for
// the porcupine visualization.
func (c *linCluster) step(name string, f func()) {
	c.t.Helper()
	start := c.rec.Now()
	began := time.Now()
	f()
	c.notes = append(c.notes, porcupine.Annotation{Tag: "reconfiguration", Start: start, End: c.rec.Now(), Description: name})
	c.t.Logf("step %q done in %v", name, time.Since(began).Round(time.Millisecond))
}

func (c *linCluster) endpoints() []string {
	eps := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		eps[i] = n.client
	}
	return eps
}

func (c *linCluster) byID(id uint64) *linNode {
	for _, n := range c.nodes {
		if n.id == id {
			return n
		}
	}
	return nil
}

func (c *linCluster) drop(n *linNode) {
	for i, m := range c.nodes {
		if m == n {
			c.nodes = append(c.nodes[:i:i], c.nodes[i+1:]...)
			return
		}
	}
}

// leader returns the member every tracked member names as leader.
func (c *linCluster) leader() *linNode {
	c.t.Helper()
	var found *linNode
	c.retry("finding the leader", linStepBudget, func(ctx context.Context) error {
		cli := linDial(c.t, c.endpoints()...)
		defer cli.Close()
		var leader uint64
		for _, n := range c.nodes {
			st, err := cli.Status(ctx, n.client)
			if err != nil {
				return fmt.Errorf("status of %s: %w", n.name, err)
			}
			if st.Leader == 0 || (leader != 0 && st.Leader != leader) {
				return fmt.Errorf("no agreed leader yet (%s says %x, others %x)", n.name, st.Leader, leader)
			}
			leader = st.Leader
		}
		if found = c.byID(leader); found == nil {
			return fmt.Errorf("leader %x is not a tracked member", leader)
		}
		return nil
	})
	return found
}

// follower returns a member other than the leader and not in avoid, if one
// exists; else any non-leader.
func (c *linCluster) follower(leader *linNode, avoid ...*linNode) *linNode {
	var fallback *linNode
	for _, n := range c.nodes {
		if n == leader {
			continue
		}
		if fallback == nil {
			fallback = n
		}
		skip := false
		for _, a := range avoid {
			skip = skip || a == n
		}
		if !skip {
			return n
		}
	}
	return fallback
}

// linFreeURL picks a free port on 127.0.0.1 and returns it as an http URL.
func linFreeURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("picking a free port: %v", err)
	}
	defer ln.Close()
	return "http://127.0.0.1:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// addLearner adds a learner, starts its process with
// --initial-cluster-state existing, waits until it has applied what the
// leader had committed, then promotes it (the server refuses while it is
// behind, so promotion is retried).
func (c *linCluster) addLearner(name string) *linNode {
	c.t.Helper()
	n := &linNode{name: name, client: linFreeURL(c.t), peer: linFreeURL(c.t)}
	admin := linDial(c.t, c.endpoints()...)
	defer admin.Close()

	var members []*linMember
	c.retry("MemberAddAsLearner "+n.peer, linStepBudget, func(ctx context.Context) error {
		resp, err := admin.MemberAddAsLearner(ctx, []string{n.peer})
		if errors.Is(err, rpctypes.ErrPeerURLExist) {
			// An earlier attempt was applied though its answer was lost.
			err = nil
		}
		if err != nil {
			return err
		}
		if resp != nil {
			n.id = resp.Member.ID
		}
		members, err = linMembers(ctx, admin)
		return err
	})
	var initial []string
	for _, m := range members {
		if len(m.peers) == 1 && m.peers[0] == n.peer {
			n.id = m.id
			m.name = n.name
		}
		for _, p := range m.peers {
			initial = append(initial, m.name+"="+p)
		}
	}
	if n.id == 0 {
		c.t.Fatalf("learner %s not in the member list %v", n.peer, members)
	}

	dir := c.t.TempDir()
	dataDir := filepath.Join(dir, name+".data")
	n.proc = framework.StartServer(c.t, framework.ServerSpec{
		Name: name,
		Dir:  dir,
		Args: []string{
			"--name", name,
			"--data-dir", dataDir,
			"--listen-client-urls", n.client,
			"--advertise-client-urls", n.client,
			"--listen-peer-urls", n.peer,
			"--initial-advertise-peer-urls", n.peer,
			"--initial-cluster", strings.Join(initial, ","),
			"--initial-cluster-state", "existing",
			"--initial-cluster-token", c.token,
		},
		ClientURL: n.client,
		DataDir:   dataDir,
	})

	// Caught up = has reached the leader's index as of the learner's start;
	// traffic keeps the leader moving, so a moving target could never be met.
	leader := c.leader()
	var target uint64
	c.retry(name+" catching up with the leader", linStepBudget, func(ctx context.Context) error {
		cli := linDial(c.t, leader.client, n.client)
		defer cli.Close()
		if target == 0 {
			ls, err := cli.Status(ctx, leader.client)
			if err != nil {
				return fmt.Errorf("leader status: %w", err)
			}
			target = ls.RaftIndex
		}
		// Short: until the learner listens, the client waits out the deadline.
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		st, err := cli.Status(sctx, n.client)
		if err != nil {
			return fmt.Errorf("learner status: %w", err)
		}
		if applied := max(st.RaftAppliedIndex, st.RaftIndex); applied < target {
			return fmt.Errorf("learner at %d, leader was at %d", applied, target)
		}
		return nil
	})
	c.retry("MemberPromote "+name, linStepBudget, func(ctx context.Context) error {
		_, err := admin.MemberPromote(ctx, n.id)
		if errors.Is(err, rpctypes.ErrMemberNotLearner) {
			return nil // an earlier attempt was applied
		}
		return err
	})
	c.nodes = append(c.nodes, n)
	return n
}

// movePeerURL gives n a new peer URL with MemberUpdate, then restarts it on
// that URL with its data dir.
func (c *linCluster) movePeerURL(n *linNode) {
	c.t.Helper()
	newPeer := linFreeURL(c.t)
	admin := linDial(c.t, c.endpoints()...)
	defer admin.Close()
	c.retry("MemberUpdate "+n.name, linStepBudget, func(ctx context.Context) error {
		_, err := admin.MemberUpdate(ctx, n.id, []string{newPeer})
		return err
	})
	args := n.proc.Args()
	n.proc.Stop(c.t)
	for i, a := range args {
		args[i] = strings.ReplaceAll(a, n.peer, newPeer)
	}
	n.peer = newPeer
	n.proc = framework.StartServer(c.t, framework.ServerSpec{
		Name:      n.name + "-moved",
		Dir:       c.t.TempDir(),
		Args:      args,
		ClientURL: n.client,
		DataDir:   n.proc.DataDir(),
	})
	n.proc.WaitHealthy(c.t, framework.DefaultHealthTimeout)
}

// remove removes n through the member at via, then waits for n's process
// to exit, as a removed member must.
func (c *linCluster) remove(n, via *linNode) {
	c.t.Helper()
	admin := linDial(c.t, via.client)
	defer admin.Close()
	attempts := 0
	c.retry("MemberRemove "+n.name, linStepBudget, func(ctx context.Context) error {
		attempts++
		_, err := admin.MemberRemove(ctx, n.id)
		if attempts > 1 && errors.Is(err, rpctypes.ErrMemberNotFound) {
			return nil // an earlier attempt was applied
		}
		return err
	})
	c.drop(n)
	code, exited := n.proc.Wait(linExitBudget)
	if !exited {
		c.t.Fatalf("removed member %s still running %v after its removal\n%s", n.name, linExitBudget, n.proc.LogTail(30))
	}
	c.t.Logf("removed member %s exited with code %d", n.name, code)
}

// linMember is one entry of MemberList.
type linMember struct {
	id      uint64
	name    string
	peers   []string
	learner bool
}

func (m *linMember) String() string {
	return fmt.Sprintf("%x %s %v learner=%v", m.id, m.name, m.peers, m.learner)
}

func linMembers(ctx context.Context, cli *clientv3.Client) ([]*linMember, error) {
	resp, err := cli.MemberList(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*linMember, 0, len(resp.Members))
	for _, m := range resp.Members {
		out = append(out, &linMember{id: m.ID, name: m.Name, peers: m.PeerURLs, learner: m.IsLearner})
	}
	return out, nil
}
