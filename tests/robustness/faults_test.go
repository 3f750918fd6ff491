package robustness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cadrekv/cadre/internal/storage/wal"
	"github.com/cadrekv/cadre/tests/framework"
)

// fault is one entry of the menu: it breaks something and heals it before
// it returns (a member down, paused, replaced...), so the next fault starts
// from a 3-member cluster that serves.
type fault struct {
	name string
	do   func(r *run)
}

// menu is every fault the suite injects; run r uses menu[(3r+i) % len].
var menu = []fault{
	{"kill -9 leader, restart", func(r *run) { r.killRestart(r.leader()) }},
	{"kill -9 follower, restart", func(r *run) { r.killRestart(r.follower()) }},
	{"SIGSTOP follower 2 s", func(r *run) { r.pause(r.follower()) }},
	{"SIGSTOP leader 2 s", func(r *run) { r.pause(r.leader()) }},
	{"replace follower (remove, wipe, add learner, promote)", func(r *run) { r.replace(r.follower()) }},
	{"remove leader, add a new member", func(r *run) { r.replace(r.leader()) }},
	{"restart a follower with a wiped data dir", func(r *run) { r.wipedRestart(r.follower()) }},
	{"kill -9 all, restart all", func(r *run) { r.killAll() }},
	{"partition a follower 3 s", func(r *run) { r.partition(r.follower()) }},
	{"move a follower's peer URL (member update), old address closed", func(r *run) { r.movePeerURL(r.follower()) }},
	{"partition the leader 3 s", func(r *run) { r.partition(r.leader()) }},
	{"blackhole the leader's outbound links 3 s (one way)", func(r *run) {
		id := r.idOf(r.leader())
		r.net.block(id, "*")
		time.Sleep(3 * time.Second)
		r.net.heal()
	}},
	{"delay every link of a follower by 200 ms, 3 s", func(r *run) {
		id := r.idOf(r.follower())
		r.net.setDelay("*", id, 200*time.Millisecond)
		r.net.setDelay(id, "*", 200*time.Millisecond)
		time.Sleep(3 * time.Second)
		r.net.heal()
	}},
	{"WAL fsync fails (EIO) on the leader", func(r *run) { r.diskFault(r.leader(), wal.FaultFsyncEIO) }},
	{"WAL write fails (EIO, torn) on a follower", func(r *run) { r.diskFault(r.follower(), wal.FaultWriteEIO) }},
	{"WAL disk full (ENOSPC, torn) on a follower", func(r *run) { r.diskFault(r.follower(), wal.FaultWriteENOSPC) }},
	{"lossy links to and from the leader, 3 s", func(r *run) {
		id := r.idOf(r.leader())
		r.net.setLossy("*", id)
		r.net.setLossy(id, "*")
		time.Sleep(3 * time.Second)
		r.net.heal()
	}},
}

// movePeerURL gives m a new peer address (a new proxy in front of the
// same listener), updates the membership, and closes the old address: the
// others must follow the update or lose m.
func (r *run) movePeerURL(m *framework.Member) {
	old := r.pxs[m.Name]
	px, err := r.net.listenProxy()
	if err != nil {
		r.t.Fatal(err)
	}
	px.serve(old.target)
	px.setMember(r.ids[m.Name])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	id := r.memberID(ctx, m)
	r.retry(ctx, "member update "+m.Name, func(cli *clientv3.Client) error {
		_, err := cli.MemberUpdate(ctx, id, []string{"http://" + px.addr()})
		return err
	}, nil)
	r.pxs[m.Name] = px
	time.Sleep(500 * time.Millisecond)
	old.close()
}

// partition cuts m off from every other member (both directions) for 3 s.
func (r *run) partition(m *framework.Member) {
	id := r.idOf(m)
	r.net.block("*", id)
	r.net.block(id, "*")
	time.Sleep(3 * time.Second)
	// The others must have a leader among themselves by now.
	var leaders []string
	for _, o := range r.c.Members {
		if o == m {
			continue
		}
		cli := framework.NewClient(r.t, o.Endpoint())
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if st, err := cli.Status(ctx, o.Endpoint()); err == nil {
			leaders = append(leaders, fmt.Sprintf("%s sees %016x", o.Name, st.Leader))
		}
		cancel()
		cli.Close()
	}
	r.note("partitioned %s (%s): %s", m.Name, id, strings.Join(leaders, ", "))
	r.net.heal()
}

// idOf is m's member ID as peers name it on the wire.
func (r *run) idOf(m *framework.Member) string {
	id, ok := r.ids[m.Name]
	if !ok {
		r.t.Fatalf("no member ID known for %s", m.Name)
	}
	return id
}

func (r *run) leader() *framework.Member { return r.c.Members[r.c.Leader(r.t)] }

func (r *run) follower() *framework.Member {
	lead := r.c.Leader(r.t)
	var fs []*framework.Member
	for i, m := range r.c.Members {
		if i != lead {
			fs = append(fs, m)
		}
	}
	return fs[r.rng.IntN(len(fs))]
}

// walFaultsEnv puts every member's WAL behind its control file (a
// faultinject build; see TestMain).
const walFaultsEnv = "CADRE_WAL_FAULTS=1"

// diskFault makes m's WAL disk fail with fault while traffic runs. The
// member must stop by itself (fail-stop: exit ≠ 0, never acknowledging
// what it could not persist); the disk is then healed and m restarted,
// and must recover from its own log (repairing a torn tail) and its peers.
// What it acknowledged before is checked at the end of the run.
func (r *run) diskFault(m *framework.Member, fault string) {
	ctl := wal.FaultControlFile(filepath.Join(m.DataDir(), "member", "wal"))
	if err := os.WriteFile(ctl, []byte(fault), 0o600); err != nil {
		r.t.Fatal(err)
	}
	code, exited := m.Wait(10 * time.Second)
	if err := os.Remove(ctl); err != nil {
		r.t.Fatal(err)
	}
	switch {
	case !exited:
		r.t.Errorf("%s still runs 10 s after its WAL began failing with %s: a member that cannot persist must stop", m.Name, fault)
		m.Kill(r.t)
	case code == 0:
		r.t.Errorf("%s stopped with exit 0 on a WAL %s; want a failure exit", m.Name, fault)
	}
	r.note("%s: WAL %s -> exit %d: %s", m.Name, fault, code, lastError(m.LogTail(15)))
	time.Sleep(500 * time.Millisecond)
	m.Start(r.t)
}

func (r *run) killRestart(m *framework.Member) {
	m.Kill(r.t)
	time.Sleep(time.Second)
	m.Start(r.t)
}

func (r *run) pause(m *framework.Member) {
	m.Pause(r.t)
	time.Sleep(2 * time.Second)
	m.Resume(r.t)
}

func (r *run) killAll() {
	for _, m := range r.c.Members {
		m.Kill(r.t)
	}
	time.Sleep(500 * time.Millisecond)
	for _, m := range r.c.Members {
		m.Start(r.t)
	}
}

// replace removes m from the cluster (through etcdctl-equivalent client
// calls; removing the leader hands leadership over first), discards its
// data, and brings the cluster back to three with a new member added as a
// learner, caught up and promoted.
func (r *run) replace(m *framework.Member) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	id := r.memberID(ctx, m)
	r.retry(ctx, "member remove "+m.Name, func(cli *clientv3.Client) error {
		_, err := cli.MemberRemove(ctx, id)
		if err != nil && strings.Contains(err.Error(), "member not found") {
			return nil // an earlier try went through
		}
		return err
	}, m)
	r.c.Drop(m.Name)
	r.addMember(ctx)
}

// wipedRestart stops a follower, wipes its data dir and starts it again
// with its old flags under its old name. Cadre must refuse (it would join
// having lost what it acknowledged) or rejoin without serving stale data;
// either way the cluster is brought back to three members.
func (r *run) wipedRestart(m *framework.Member) {
	m.Stop(r.t)
	if err := os.RemoveAll(m.DataDir()); err != nil {
		r.t.Fatal(err)
	}
	m.Start(r.t)
	code, exited := m.Wait(15 * time.Second)
	if !exited {
		// It came back: the checks at the end compare its data with the
		// others'. Nothing else to heal.
		r.note("%s restarted with a wiped data dir and kept running", m.Name)
		return
	}
	r.note("%s restarted with a wiped data dir was refused (exit %d)", m.Name, code)
	r.replace(m)
}

// addMember adds a learner at fresh ports, starts it, promotes it once it
// has caught up, and makes it part of the cluster.
func (r *run) addMember(ctx context.Context) {
	r.added++
	name := fmt.Sprintf("new%d", r.added)
	ports := framework.FreePorts(r.t, 2)
	listen, client := fmt.Sprintf("http://127.0.0.1:%d", ports[0]), fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	px, err := r.net.listenProxy()
	if err != nil {
		r.t.Fatal(err)
	}
	px.serve(fmt.Sprintf("127.0.0.1:%d", ports[0]))
	peer := "http://" + px.addr()
	var add *clientv3.MemberAddResponse
	r.retry(ctx, "member add --learner "+name, func(cli *clientv3.Client) error {
		var err error
		add, err = cli.MemberAddAsLearner(ctx, []string{peer})
		return err
	}, nil)
	var initial []string
	for _, m := range add.Members {
		n := m.Name
		if m.ID == add.Member.ID {
			n = name
		}
		if n != "" && len(m.PeerURLs) > 0 {
			initial = append(initial, n+"="+m.PeerURLs[0])
		}
	}
	r.ids[name] = fmt.Sprintf("%016x", add.Member.ID)
	px.setMember(r.ids[name])
	r.pxs[name] = px
	nm := r.c.AddMemberProcess(r.t, name, []string{
		"--name", name, "--data-dir", filepath.Join(r.c.Dir(), name+".data"),
		"--listen-peer-urls", listen, "--initial-advertise-peer-urls", peer,
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "existing",
	}, []string{walFaultsEnv})
	r.retry(ctx, "member promote "+name, func(cli *clientv3.Client) error {
		_, err := cli.MemberPromote(ctx, add.Member.ID)
		if err != nil && strings.Contains(err.Error(), "can only promote a learner member") && !strings.Contains(err.Error(), "in sync") {
			return nil // promoted by an earlier try
		}
		return err
	}, nil)
	r.c.Append(nm)
}

// memberID looks m's ID up by name.
func (r *run) memberID(ctx context.Context, m *framework.Member) uint64 {
	var id uint64
	r.retry(ctx, "member list", func(cli *clientv3.Client) error {
		ml, err := cli.MemberList(ctx)
		if err != nil {
			return err
		}
		for _, x := range ml.Members {
			if x.Name == m.Name {
				id = x.ID
				return nil
			}
		}
		return fmt.Errorf("no member named %s in %v", m.Name, ml.Members)
	}, nil)
	return id
}

// retry runs op through the members other than skip until it succeeds or
// ctx ends (a membership change may be refused while the cluster settles).
func (r *run) retry(ctx context.Context, what string, op func(*clientv3.Client) error, skip *framework.Member) {
	var eps []string
	for _, m := range r.c.Members {
		if m != skip && m.Running() {
			eps = append(eps, m.Endpoint())
		}
	}
	cli := framework.NewClient(r.t, eps...)
	var err error
	for i := 0; i < 200; i++ {
		err = op(cli)
		if err == nil || ctx.Err() != nil {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if err != nil {
		r.t.Fatalf("%s: %v", what, err)
	}
}
