package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/cadrekv/cadre/internal/cerr"
	"github.com/cadrekv/cadre/internal/membership"
)

// The cluster's side of `cadre --join` and `cadrectl member replace`: any
// member takes the request, the leader judges it (joiner.go is the new
// member's side).

// ErrJoinRefused wraps every refusal of a join; its text names the member,
// the reason and the fix.
var ErrJoinRefused = errors.New("join refused")

// joinProbeTimeout bounds the leader's probe of a joiner's peer URL.
const joinProbeTimeout = 3 * time.Second

func joinRefused(name, format string, args ...any) error {
	return fmt.Errorf("%w: member %q: %s", ErrJoinRefused, name, fmt.Sprintf(format, args...))
}

// Join judges (and, unless it is a preflight, carries out) a join.
func (s *Server) Join(ctx context.Context, req membership.JoinRequest) (*membership.JoinAnswer, error) {
	if !s.node.IsLeader() {
		var ans membership.JoinAnswer
		if err := s.forward(ctx, http.MethodPost, "/cadre/members/join", req, &ans); err != nil {
			return nil, err
		}
		return &ans, nil
	}
	return s.judgeJoin(ctx, req)
}

func (s *Server) judgeJoin(ctx context.Context, req membership.JoinRequest) (*membership.JoinAnswer, error) {
	id, err1 := parseOptionalID(req.ID)
	replaces, err2 := parseOptionalID(req.Replaces)
	if err := errors.Join(err1, err2); err != nil || id == 0 || req.Name == "" || len(req.PeerURLs) == 0 {
		return nil, joinRefused(req.Name, "the request lacks a name, a member ID or peer URLs (%v); use a cadre of the same version as the cluster", err)
	}
	ans := &membership.JoinAnswer{ClusterID: membership.IDString(s.ClusterID())}
	if req.Token != "" && req.Token != s.cfg.InitialClusterToken {
		return nil, joinRefused(req.Name, "--initial-cluster-token %q does not match the cluster's (%q): the --join URLs reach another cluster than the one meant. Fix: check the --join URLs, or drop --initial-cluster-token", req.Token, s.cfg.InitialClusterToken)
	}
	ans.Checks = append(ans.Checks, "the cluster answers (leader "+membership.IDString(s.id)+", cluster "+ans.ClusterID+")")
	if req.Token != "" {
		ans.Checks = append(ans.Checks, "--initial-cluster-token matches")
	}
	members := s.cluster.Members()
	if err := sameScheme(req, members); err != nil {
		return nil, err
	}
	ans.Checks = append(ans.Checks, "peer URL scheme matches the cluster's")

	self, err := s.joinEntry(req, id, members)
	if err != nil {
		return nil, err
	}
	if err := s.probeJoiner(ctx, req); err != nil {
		return nil, err
	}
	ans.Checks = append(ans.Checks, "the leader reaches "+req.PeerURLs[0]+" (peer TLS included) and finds "+req.Name+" there")
	if req.Preflight {
		ans.Members = members
		return ans, nil
	}
	if self != nil {
		ans.Reused, ans.Member, ans.Members = true, self, members
		return ans, nil
	}
	by := req.By
	if by == "" {
		by = "cadre --join (" + req.Name + ")"
	}
	res, err := s.ChangeMembers(ctx, membership.Change{Kind: membership.ChangeAdd, ID: id, PeerURLs: req.PeerURLs, IsLearner: true,
		AutoPromote: replaces == 0, Replaces: replaces, By: by}, false)
	if err != nil {
		return nil, err
	}
	ans.Member, ans.Members = res.Member, res.Members
	return ans, nil
}

// sameScheme refuses a joiner whose peer URLs use another scheme than the
// cluster's: http against https peers fails only later, at the first
// stream, with a TLS error far from its cause.
func sameScheme(req membership.JoinRequest, members []*membership.Member) error {
	have := map[string]bool{}
	for _, m := range members {
		for _, u := range m.PeerURLs {
			if p, err := url.Parse(u); err == nil {
				have[p.Scheme] = true
			}
		}
	}
	for _, u := range req.PeerURLs {
		p, err := url.Parse(u)
		if err != nil {
			return joinRefused(req.Name, "peer URL %q does not parse: %v. Fix: --initial-advertise-peer-urls=scheme://host:port", u, err)
		}
		if len(have) > 0 && !have[p.Scheme] {
			want := "https (with --peer-cert-file, --peer-key-file and --peer-trusted-ca-file)"
			if have["http"] {
				want = "http"
			}
			return joinRefused(req.Name, "peer URL %s uses %s, but the cluster's members use %s peer URLs. Fix: advertise and listen on %s peer URLs", u, p.Scheme, strings.Join(slices.Sorted(maps.Keys(have)), " and "), want)
		}
	}
	return nil
}

// joinEntry finds the cluster's entry for the joiner, if it has one: a
// retry (same ID), or a member added at its peer URL and never started.
// It refuses what would make a second member or take another's place.
func (s *Server) joinEntry(req membership.JoinRequest, id uint64, members []*membership.Member) (*membership.Member, error) {
	if s.cluster.IsRemoved(id) {
		return nil, joinRefused(req.Name, "its data dir recorded member ID %s, which was removed from the cluster since. Fix: wipe the data dir and start again with --join", membership.IDString(id))
	}
	same := func(m *membership.Member) bool {
		return len(m.PeerURLs) == len(req.PeerURLs) && !slices.ContainsFunc(req.PeerURLs, func(u string) bool { return !slices.Contains(m.PeerURLs, u) })
	}
	for _, m := range members {
		switch {
		case m.ID == id && !same(m):
			return nil, joinRefused(req.Name, "member %s exists with peer URLs %v, not %v. Fix: start with the peer URLs it was added with, or wipe the data dir and join again", membership.IDString(id), m.PeerURLs, req.PeerURLs)
		case m.ID == id, same(m) && !m.Started():
			if m.Started() && m.Name != req.Name {
				return nil, joinRefused(req.Name, "member %s at %v runs under the name %q. Fix: start with --name=%s", membership.IDString(m.ID), m.PeerURLs, m.Name, m.Name)
			}
			return m, nil
		case same(m):
			return nil, joinRefused(req.Name, "member %s (%s) already runs at peer URL %v. If this machine is that member and lost its data dir, remove it first (etcdctl member remove %s), then join again; otherwise give this member its own peer URL",
				membership.IDString(m.ID), m.Name, m.PeerURLs, membership.IDString(m.ID))
		case m.Name == req.Name:
			return nil, joinRefused(req.Name, "the name is taken by member %s at %v. Fix: choose another --name, or remove that member first", membership.IDString(m.ID), m.PeerURLs)
		}
		for _, u := range req.PeerURLs {
			if slices.Contains(m.PeerURLs, u) {
				return nil, joinRefused(req.Name, "peer URL %s is used by member %s (%s). Fix: give this member its own peer URL", u, membership.IDString(m.ID), m.Name)
			}
		}
	}
	return nil, nil
}

// probeJoiner checks that the leader reaches the joiner's peer URLs, over
// the peer TLS the cluster will use, and that the joiner itself answers.
func (s *Server) probeJoiner(ctx context.Context, req membership.JoinRequest) error {
	for _, u := range req.PeerURLs {
		ctx, cancel := context.WithTimeout(ctx, joinProbeTimeout)
		err := probeOnce(ctx, s.peerClient, u, req)
		cancel()
		if err != nil {
			return joinRefused(req.Name, "the leader (%s) cannot reach it at its peer URL %s: %v. Fix: make cadre listen there (--listen-peer-urls), advertise an address the other members reach (--initial-advertise-peer-urls), open the firewall, and use the cluster's peer TLS settings (--peer-cert-file, --peer-key-file, --peer-trusted-ca-file, --peer-client-cert-auth)",
				membership.IDString(s.id), u, err)
		}
	}
	return nil
}

func probeOnce(ctx context.Context, c *http.Client, base string, req membership.JoinRequest) error {
	hr, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+membership.JoinProbePath+"?nonce="+url.QueryEscape(req.Nonce), nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(hr)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("it answered %s, not the joining member's probe answer (is another process listening there?)", resp.Status)
	}
	var p membership.JoinProbe
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&p); err != nil {
		return fmt.Errorf("unreadable probe answer: %v", err)
	}
	if p.Nonce != req.Nonce || p.Name != req.Name {
		return fmt.Errorf("another member answered there (%q), not this joining member", p.Name)
	}
	return nil
}

// ReplaceMember adds a learner that replaces req.Old (or, with DryRun,
// plans it).
func (s *Server) ReplaceMember(ctx context.Context, req membership.ReplaceRequest) (*membership.ReplaceAnswer, error) {
	if s.isLearner() {
		return nil, cerr.ErrNotSupportedLrnr
	}
	if !s.node.IsLeader() {
		var ans membership.ReplaceAnswer
		if err := s.forward(ctx, http.MethodPost, "/cadre/members/replace", req, &ans); err != nil {
			return nil, err
		}
		return &ans, nil
	}
	old, err := membership.ParseID(req.Old)
	if err != nil {
		return nil, fmt.Errorf("%w: member ID %q: %v", cerr.ErrInvalidArgument, req.Old, err)
	}
	c := membership.Change{Kind: membership.ChangeAdd, PeerURLs: req.PeerURLs, IsLearner: true, Replaces: old, By: req.By}
	ans := &membership.ReplaceAnswer{ClusterID: membership.IDString(s.ClusterID())}
	if req.DryRun {
		now := time.Now()
		c.ID = membership.ComputeMemberID(c.PeerURLs, "", &now)
		plan := membership.PlanReplace(s.view(), c, req.Name)
		ans.Plan, ans.Members = &plan, s.cluster.Members()
		return ans, nil
	}
	res, err := s.ChangeMembers(ctx, c, false)
	if err != nil {
		return nil, err
	}
	ans.Member, ans.Members = res.Member, res.Members
	return ans, nil
}

// registerJoinHandlers serves the forwarded join and replace requests on
// the peer port; only the leader answers them.
func (s *Server) registerJoinHandlers(mux *http.ServeMux) {
	mux.HandleFunc("POST /cadre/members/join", func(w http.ResponseWriter, r *http.Request) {
		var req membership.JoinRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
			http.Error(w, "bad join request: "+err.Error(), http.StatusBadRequest)
			return
		}
		if !s.node.IsLeader() {
			writeForwardError(w, cerr.ErrNotLeader)
			return
		}
		ans, err := s.judgeJoin(r.Context(), req)
		writeForwardAnswer(w, ans, err)
	})
	mux.HandleFunc("POST /cadre/members/replace", func(w http.ResponseWriter, r *http.Request) {
		var req membership.ReplaceRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
			http.Error(w, "bad replace request: "+err.Error(), http.StatusBadRequest)
			return
		}
		if !s.node.IsLeader() {
			writeForwardError(w, cerr.ErrNotLeader)
			return
		}
		ans, err := s.ReplaceMember(r.Context(), req)
		writeForwardAnswer(w, ans, err)
	})
}

func writeForwardAnswer(w http.ResponseWriter, ans any, err error) {
	if err != nil {
		writeForwardError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(ans)
}
