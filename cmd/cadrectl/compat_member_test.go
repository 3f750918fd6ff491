package main

// Membership commands compared with etcdctl on the one-member server of
// TestCompatWithEtcdctl. Only changes a one-member cluster survives are
// made: learners with unreachable peer URLs (etcd allows a learner there),
// their update, promote (refused: not in sync) and removal, error cases and
// moving the leadership to the leader itself. Adding a voter with an
// unreachable URL would cost the server its quorum, so voters are only
// added where the server refuses them.

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// memberCompatState is what the membership cases keep between runs.
type memberCompatState struct {
	selfID uint64
	// nextPort numbers the peer URLs of added learners: every add uses a
	// new URL, as etcd derives the new ID from the URLs and the current
	// second and refuses to reuse the ID of a member removed a moment ago.
	nextPort int
	// skip, once set, is why the server cannot run these cases.
	skip map[string]string
}

// newLearnerURL is a peer URL nothing listens on; maskMembers hides its port.
func (s *compatServer) newLearnerURL() string {
	s.member.nextPort++
	return fmt.Sprintf("http://127.0.0.2:%d", 20000+s.member.nextPort)
}

// requireRPC skips the test when the server answers Unimplemented for the
// API a case needs (Cadre before its membership services landed). The probe
// is a harmless call on a member ID that does not exist.
func (s *compatServer) requireRPC(t *testing.T, api string) {
	t.Helper()
	if s.member.skip == nil {
		s.member.skip = map[string]string{}
	}
	reason, probed := s.member.skip[api]
	if !probed {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		var err error
		switch api {
		case "Cluster":
			_, err = s.cli.MemberPromote(ctx, 1)
		case "Maintenance.MoveLeader":
			_, err = s.cli.MoveLeader(ctx, 1)
		}
		cancel()
		if status.Code(err) == codes.Unimplemented {
			reason = fmt.Sprintf("the server does not implement the %s RPCs yet (%v)", api, err)
		}
		s.member.skip[api] = reason
	}
	if reason != "" {
		t.Skip(reason)
	}
}

// resetMembers removes every member but the server itself.
func (s *compatServer) resetMembers(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	resp, err := s.cli.MemberList(ctx)
	if err != nil {
		t.Fatalf("resetting the members (has the server lost its quorum?): %v", err)
	}
	for _, m := range resp.Members {
		if m.ID == s.member.selfID {
			continue
		}
		if _, err := s.cli.MemberRemove(ctx, m.ID); err != nil {
			t.Fatalf("resetting the members: removing %x (has the server lost its quorum?): %v", m.ID, err)
		}
	}
}

// addLearner adds a learner that never starts and returns its ID.
func (s *compatServer) addLearner(t *testing.T) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	resp, err := s.cli.MemberAddAsLearner(ctx, []string{s.newLearnerURL()})
	if err != nil {
		t.Fatal(err)
	}
	return resp.Member.ID
}

type prepareFunc = func(*testing.T, *clientv3.Client) []string

// initMembers records the ID of the one member the server starts with.
func (s *compatServer) initMembers(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	list, err := s.cli.MemberList(ctx)
	if err != nil || len(list.Members) != 1 {
		t.Fatalf("member cases need a one-member server: %v, %v", list, err)
	}
	s.member.selfID = list.Members[0].ID
}

// clean prepares a run on the one-member cluster; extra's arguments are
// appended to the case's own.
func (s *compatServer) clean(extra func() []string) prepareFunc {
	return func(t *testing.T, _ *clientv3.Client) []string {
		s.requireRPC(t, "Cluster")
		s.resetMembers(t)
		if extra == nil {
			return nil
		}
		return extra()
	}
}

// withLearner prepares a run with one learner added; its ID is appended.
func (s *compatServer) withLearner(api string) prepareFunc {
	return func(t *testing.T, _ *clientv3.Client) []string {
		s.requireRPC(t, "Cluster")
		s.requireRPC(t, api)
		s.resetMembers(t)
		return []string{fmt.Sprintf("%x", s.addLearner(t))}
	}
}

func (s *compatServer) memberCases(t *testing.T) []compatCase {
	s.initMembers(t)
	self := fmt.Sprintf("%x", s.member.selfID)
	clean, withLearner := s.clean, s.withLearner
	freshURL := clean(func() []string { return []string{"--peer-urls=" + s.newLearnerURL()} })
	moveLeader := func(t *testing.T, _ *clientv3.Client) []string {
		s.requireRPC(t, "Maintenance.MoveLeader")
		return nil
	}

	var cases []compatCase
	add := func(prepare prepareFunc, args ...string) {
		cases = append(cases, compatCase{name: strings.Join(args, " "), args: args, prepare: prepare, norm: maskMembers})
	}
	// addL: a case on a fresh learner, whose ID is appended to args.
	addL := func(api string, args ...string) {
		cases = append(cases, compatCase{name: strings.Join(args, " ") + " <learner>", args: args, prepare: withLearner(api), norm: maskMembers})
	}
	for _, f := range []string{"simple", "json", "fields", "table"} {
		add(freshURL, "member", "add", "newbie", "--learner", "-w", f)
	}
	add(freshURL, "member", "add", "newbie", "--learner", "-w", "json", "--hex")
	add(clean(nil), "member", "add", "dup", "--peer-urls="+s.peerURL)
	add(clean(nil), "member", "add", "dup", "--peer-urls="+s.peerURL, "--learner")
	add(clean(nil), "member", "add", "bad", "--peer-urls=foo", "--learner")
	add(nil, "member", "add", "--peer-urls=http://127.0.0.2:1")
	add(nil, "member", "add", "x", "http://127.0.0.2:1")
	add(nil, "member", "add", "x")

	for _, f := range []string{"simple", "json", "fields"} {
		addL("Cluster", "member", "remove", "-w", f)
	}
	addL("Cluster", "member", "remove", "-w", "json", "--hex")
	add(clean(nil), "member", "remove", "deadbeef")
	add(nil, "member", "remove", "zz")
	add(nil, "member", "remove")

	addL("Cluster", "member", "update", "--peer-urls=http://127.0.0.2:19999")
	addL("Cluster", "member", "update", "--peer-urls=http://127.0.0.2:19999", "-w", "json", "--hex")
	addL("Cluster", "member", "update", "--peer-urls="+s.peerURL)
	addL("Cluster", "member", "update")
	add(clean(nil), "member", "update", "deadbeef", "--peer-urls=http://127.0.0.2:19999")

	// (promote of the learner: TestCompatPromoteUnsyncedLearner)
	add(clean(nil), "member", "promote", "deadbeef")
	add(nil, "member", "promote", "zz")

	add(moveLeader, "move-leader", self)
	add(moveLeader, "move-leader", self, "-w", "json")
	add(moveLeader, "move-leader", self, "-w", "table")
	add(moveLeader, "move-leader", "deadbeef")
	addL("Maintenance.MoveLeader", "move-leader")
	add(nil, "move-leader", "zz")
	add(nil, "move-leader")
	// Leave the server as the other cases found it.
	cases = append(cases, compatCase{name: "member list after changes", args: []string{"member", "list"}, prepare: clean(nil)})
	return cases
}

// TestCompatPromoteUnsyncedLearner has a server of its own: one that wrongly
// promoted a learner that never started would have two voters, one of them
// unreachable, and lose its quorum for every case after it.
func TestCompatPromoteUnsyncedLearner(t *testing.T) {
	env := startCompatServer(t)
	env.initMembers(t)
	prepare := env.withLearner("Cluster")
	id := prepare(t, env.cli)[0]

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	var learner uint64
	fmt.Sscanf(id, "%x", &learner)
	_, err := env.cli.MemberPromote(ctx, learner)
	const want = "etcdserver: can only promote a learner member which is in sync with leader"
	if err == nil {
		t.Fatalf("the server promoted learner %s, which never started: the cluster now has 2 voters, one unreachable, "+
			"and has lost its quorum; promote must fail with %q", id, want)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("promote of a learner that never started: %v, want %q", err, want)
	}
	env.compare(t, compatCase{name: "member promote <learner>", args: []string{"member", "promote"}, prepare: prepare, norm: maskMembers})
}

var (
	learnerPort  = regexp.MustCompile(`127\.0\.0\.2:2\d{4}`)
	hexID        = regexp.MustCompile(` *\b[0-9a-f]{8,16}\b`)
	decimalID    = regexp.MustCompile(`"ID":\d+`)
	initialClstr = regexp.MustCompile(`(?m)^(ETCD_INITIAL_CLUSTER=")([^"]*)"`)
)

// maskMembers hides what legitimately differs between two runs of a
// membership change: the random ID and the fresh peer URL of the member
// added, and the order of members (sorted by ID). It also maps cadrectl's
// deliberate additions to etcdctl's output: CADRE_* for ETCD_*, the command
// line after the variables and the warning before a voter is added to a
// one-member cluster.
func maskMembers(s string) string {
	// Sort JSON members first, while the line is still valid JSON.
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = sortJSONMembers(l)
	}
	s = strings.Join(lines, "\n")
	if i := strings.Index(s, "\n\ncadre --name "); i >= 0 {
		s = s[:i+1]
	}
	s = strings.ReplaceAll(s, "CADRE_", "ETCD_")
	s = strings.ReplaceAll(s, oneMemberVoterWarning+"\n", "")
	s = learnerPort.ReplaceAllString(s, "127.0.0.2:P")
	s = hexID.ReplaceAllString(s, " <ID>")
	s = decimalID.ReplaceAllString(s, `"ID":N`)
	s = initialClstr.ReplaceAllStringFunc(s, func(line string) string {
		m := initialClstr.FindStringSubmatch(line)
		entries := strings.Split(m[2], ",")
		sort.Strings(entries)
		return m[1] + strings.Join(entries, ",") + `"`
	})
	return s
}

// sortJSONMembers sorts the "members" of a member response printed as
// JSON, keeping its keys in their order; other lines are returned as is.
func sortJSONMembers(line string) string {
	if !strings.HasPrefix(line, `{"header":`) {
		return line
	}
	var r struct {
		Header  json.RawMessage   `json:"header"`
		Member  json.RawMessage   `json:"member,omitempty"`
		Members []json.RawMessage `json:"members"`
	}
	if json.Unmarshal([]byte(line), &r) != nil {
		return line
	}
	// Compare with IDs and fresh ports hidden: they differ between runs.
	key := func(m json.RawMessage) string {
		return hexID.ReplaceAllString(decimalID.ReplaceAllString(learnerPort.ReplaceAllString(string(m), "127.0.0.2:P"), `"ID":N`), " <ID>")
	}
	sort.SliceStable(r.Members, func(i, j int) bool { return key(r.Members[i]) < key(r.Members[j]) })
	b, err := json.Marshal(r)
	if err != nil {
		return line
	}
	return string(b)
}
