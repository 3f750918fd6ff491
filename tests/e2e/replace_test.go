package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cadrekv/cadre/tests/framework"
)

// raftConfig is the raft configuration a member reports in
// /cadre/v1/members/progress.
type raftConfig struct {
	Voters         []string `json:"voters"`
	VotersOutgoing []string `json:"votersOutgoing"`
	Learners       []string `json:"learners"`
}

// configWatch samples the raft configuration and the member list while a
// replace runs, and records every breach of the replace's promise: the
// voters are always 3 (in each half of a joint configuration), never 2 or
// 4, so the quorum is always 2 of 3.
type configWatch struct {
	stop   chan struct{}
	done   chan struct{}
	mu     sync.Mutex
	joint  int      // samples taken in a joint configuration
	bad    []string // breaches
	sample int
}

func watchConfig(t *testing.T, c *framework.Cluster, want int) *configWatch {
	w := &configWatch{stop: make(chan struct{}), done: make(chan struct{})}
	cli := framework.NewClient(t, c.Endpoints()...)
	hc := &http.Client{Timeout: time.Second}
	go func() {
		defer close(w.done)
		for i := 0; i < 3000; i++ { // at most ~5 minutes
			select {
			case <-w.stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			for _, ep := range c.RunningEndpoints() {
				resp, err := hc.Get(ep + "/cadre/v1/members/progress")
				if err != nil {
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				var p struct {
					Raft raftConfig `json:"raft"`
				}
				if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &p) != nil {
					continue
				}
				w.mu.Lock()
				w.sample++
				if len(p.Raft.Voters) != want || (len(p.Raft.VotersOutgoing) != 0 && len(p.Raft.VotersOutgoing) != want) {
					w.bad = append(w.bad, fmt.Sprintf("raft configuration %+v", p.Raft))
				}
				if len(p.Raft.VotersOutgoing) > 0 {
					w.joint++
				}
				w.mu.Unlock()
				break
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			ml, err := cli.MemberList(ctx)
			cancel()
			if err == nil {
				voters := 0
				for _, m := range ml.Members {
					if !m.IsLearner {
						voters++
					}
				}
				if voters != want {
					w.mu.Lock()
					w.bad = append(w.bad, fmt.Sprintf("member list with %d voters: %v", voters, ml.Members))
					w.mu.Unlock()
				}
			}
		}
	}()
	return w
}

func (w *configWatch) Stop(t *testing.T) {
	t.Helper()
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	t.Logf("configuration samples: %d (%d in a joint configuration)", w.sample, w.joint)
	if w.sample == 0 {
		t.Fatal("no raft configuration could be read while the replace ran")
	}
	for i, b := range w.bad {
		if i == 5 {
			break
		}
		t.Errorf("the voters left 3 during the replace: %s", b)
	}
}

var replacedLine = regexp.MustCompile(`Member\s+([0-9a-f]+) added as learner to cluster\s+([0-9a-f]+) to replace\s+([0-9a-f]+)`)
var cadreEnvLine = regexp.MustCompile(`(?m)^CADRE_([A-Z_]+)="(.*)"$`)

// TestMemberReplace: `cadrectl member replace` first shows its plan with
// --dry-run (every step, with its quorum and failure tolerance) and changes
// nothing; then adds the new member as a learner and prints its settings,
// like `member add`. Started with them, the new member catches up and the
// leader swaps it in for the old one in one joint-consensus change: the
// voters stay 3 throughout (raft's configuration and the member list are
// sampled every 50 ms), the old member exits with code 3, every write
// survives, and the audit trail records the replace. A replace of the
// leader with `cadre --join --replace` follows, the same way from the new
// member's side.
func TestMemberReplace(t *testing.T) {
	framework.SkipUnlessCadre(t)
	c := framework.NewCluster(t, 3, framework.Options{})
	cli := framework.NewClient(t, c.Endpoints()...)
	w := startWriter(cli, "/replace/")
	w.WaitAcked(t, 50, 30*time.Second)
	ctl := func(args ...string) framework.Result {
		t.Helper()
		return framework.RunProcessIn(t, "", 60*time.Second, framework.Cadrectl(t),
			append([]string{"--endpoints", strings.Join(c.RunningEndpoints(), ",")}, args...), nil, nil)
	}
	ids := c.MemberIDs(t)
	lead := c.Leader(t)
	old := c.Members[(lead+1)%3]
	oldID := fmt.Sprintf("%016x", ids[old.Name])
	before := membList(t, cli)

	ports := framework.FreePorts(t, 4)
	peer, client := membURL(ports[0]), membURL(ports[1])
	var res framework.Result
	eventually(t, 20*time.Second, "the replace dry run", func() error {
		res = ctl("member", "replace", oldID, "--name", "infra4", "--peer-urls", peer, "--dry-run")
		if res.Code != 0 {
			return fmt.Errorf("%s", res)
		}
		return nil
	})
	for _, want := range []string{"would be accepted", "joint configuration", "quorum: 2 of 3 (old voters) and 2 of 3 (new voters)", "failure tolerance: 1", old.Name + " exits (exit code 3)"} {
		if !strings.Contains(res.Stdout, want) {
			t.Errorf("dry run lacks %q:\n%s", want, res.Stdout)
		}
	}
	membUnchanged(t, cli, "the replace dry run", before)

	watch := watchConfig(t, c, 3)
	// With --wait the command prints the settings, then follows the
	// replace until it is done: the member is started from its output
	// while it still runs.
	wctx, wcancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer wcancel()
	cmd := exec.CommandContext(wctx, framework.Cadrectl(t), "--endpoints", strings.Join(c.RunningEndpoints(), ","),
		"member", "replace", oldID, "--name", "infra4", "--peer-urls", peer, "--wait")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if strings.HasPrefix(sc.Text(), "CADRE_INITIAL_CLUSTER_STATE") {
			break
		}
	}
	// IDs are printed like etcdctl's (%16x: padded with spaces, not
	// zeros), so compare them as numbers.
	m := replacedLine.FindStringSubmatch(out.String())
	var printed uint64
	if m != nil {
		printed, _ = strconv.ParseUint(m[3], 16, 64)
	}
	if m == nil || fmt.Sprintf("%016x", printed) != oldID {
		t.Fatalf("member replace --wait printed no added line for %s:\n%s%s", oldID, out.String(), stderr.String())
	}
	var env []string
	for _, kv := range cadreEnvLine.FindAllStringSubmatch(out.String(), -1) {
		env = append(env, "ETCD_"+kv[1]+"="+kv[2]) // as an etcd operator would paste them
	}
	if len(env) != 4 {
		t.Fatalf("member replace printed %d settings, want 4:\n%s", len(env), out.String())
	}
	nm := c.AddMemberProcess(t, "infra4", membJoinFlags(c.Dir()+"/infra4.data", peer, client), env)
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("member replace --wait: %v\n%s%s", err, out.String(), stderr.String())
	}
	if !strings.Contains(out.String(), "done: infra4") {
		t.Errorf("member replace --wait did not report the swap done:\n%s", out.String())
	}
	t.Logf("member replace --wait:\n%s", out.String())
	if code := membWaitExit(t, old, 60*time.Second); code != 3 {
		t.Fatalf("the replaced member exited with %d, want 3\n%s", code, old.LogTail(20))
	}
	c.Drop(old.Name)
	c.Append(nm)
	waitVoter(t, cli, "infra4", 30*time.Second)
	watch.Stop(t)

	// The leader, from the new member's side: cadre --join --replace.
	lead = c.Leader(t)
	leader := c.Members[lead]
	leaderID := fmt.Sprintf("%016x", c.MemberIDs(t)[leader.Name])
	watch = watchConfig(t, c, 3)
	peer5, client5 := membURL(ports[2]), membURL(ports[3])
	j := c.AddMemberProcess(t, "infra5", joinFlags(c, "infra5", peer5, client5, "--replace", leaderID), nil)
	if code := membWaitExit(t, leader, 90*time.Second); code != 3 {
		t.Fatalf("the replaced leader exited with %d, want 3\n%s", code, leader.LogTail(20))
	}
	c.Drop(leader.Name)
	c.Append(j)
	cli.SetEndpoints(c.RunningEndpoints()...)
	waitVoter(t, cli, "infra5", 30*time.Second)
	watch.Stop(t)

	acked := w.Stop(t)
	for _, mem := range c.Members {
		checkKeys(t, framework.NewClient(t, mem.Endpoint()), "/replace/", acked, clientv3.WithSerializable())
	}
	checkKeys(t, cli, "/replace/", acked)
	hist := ctl("member", "history", "-w", "json")
	if hist.Code != 0 || strings.Count(hist.Stdout, `"action":"replace"`) < 2 {
		t.Errorf("member history does not record both replaces: %s", hist)
	}
}
