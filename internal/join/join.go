// Package join is the new member's side of `cadre --join`: before the
// member touches raft, it checks with the cluster that it can join
// (pre-flight), records who it is in its data dir, asks the leader to add
// it as a learner, and turns the answer into the bootstrap settings of a
// member joining a running cluster. The leader promotes it once it has
// caught up (server/autopilot.go), or swaps it in for the member it
// replaces. Every step can be interrupted (kill -9) and resumes on the next
// start: the ID recorded before the add makes a retry find its own entry,
// never add a second one.
package join

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/cadrekv/cadre/internal/config"
	"github.com/cadrekv/cadre/internal/membership"
	"github.com/cadrekv/cadre/internal/netutil"
	"github.com/cadrekv/cadre/internal/tlsutil"
)

// ErrRefused means the cluster refused the join; the text says why and
// what to do. Nothing was added.
var ErrRefused = errors.New("the cluster refused to add this member")

// Bounds of the conversation with the cluster: each request, and how long
// a join keeps trying members that do not answer (or have no leader).
const (
	requestTimeout = 10 * time.Second
	retryFor       = 60 * time.Second
	retryPause     = time.Second
)

// state is what the joiner records in its data dir before the add.
type state struct {
	Name      string               `json:"name"`
	PeerURLs  []string             `json:"peerURLs"`
	ID        string               `json:"id"`
	Replaces  string               `json:"replaces,omitempty"`
	Added     bool                 `json:"added"`
	ClusterID string               `json:"clusterID,omitempty"`
	Members   []*membership.Member `json:"members,omitempty"`
}

// StatePath is where a join records its progress, beside the WAL.
func StatePath(dataDir string) string { return filepath.Join(dataDir, "member", "join.json") }

// TLS is what the joiner needs of the member's TLS settings.
type TLS struct {
	PeerServer *tls.Config // serves the probe on https peer URLs
	// Client dials https --join URLs: the member's --trusted-ca-file as
	// the CA and its --cert-file as the client certificate.
	Client           *tls.Config
	HandshakeTimeout time.Duration
}

// Prepare runs a join for a member started with --join and, on success,
// leaves cfg set up as a member joining a running cluster. A data dir
// that already holds a member has joined before: Prepare does nothing.
func Prepare(ctx context.Context, cfg *config.Config, lg *slog.Logger, t TLS, hasData bool) error {
	if hasData {
		_ = os.Remove(StatePath(cfg.DataDir))
		lg.Info("the data dir already holds this member; --join has nothing to do", "data-dir", cfg.DataDir)
		return nil
	}
	j := &joiner{cfg: cfg, lg: lg, tls: t, nonce: newNonce()}
	j.client = &http.Client{Transport: &http.Transport{TLSClientConfig: t.Client, Proxy: nil}, Timeout: requestTimeout}
	return j.run(ctx)
}

type joiner struct {
	cfg    *config.Config
	lg     *slog.Logger
	tls    TLS
	nonce  string
	client *http.Client
	token  string // auth token of --join-user
}

func (j *joiner) run(ctx context.Context) error {
	st, err := loadState(j.cfg)
	if err != nil {
		return err
	}
	stop, err := j.serveProbe()
	if err != nil {
		return err
	}
	defer stop()

	req := membership.JoinRequest{Name: j.cfg.Name, PeerURLs: urlStrings(j.cfg.InitialAdvertisePeerURLs), Nonce: j.nonce, Preflight: true}
	if j.cfg.Join.TokenSet {
		req.Token = j.cfg.InitialClusterToken
	}
	if j.cfg.Join.Replace != 0 {
		req.Replaces = membership.IDString(j.cfg.Join.Replace)
	}
	if st != nil {
		req.ID = st.ID
	} else {
		now := time.Now()
		req.ID = membership.IDString(membership.ComputeMemberID(req.PeerURLs, "", &now))
	}

	// 1. Pre-flight: nothing is proposed.
	pre, err := j.ask(ctx, req)
	if err != nil {
		return err
	}
	j.lg.Info("join pre-flight passed", "name", req.Name, "member-id", req.ID, "cluster-id", pre.ClusterID, "checks", pre.Checks)
	CrashPoint("preflight")

	// 2. Identity, durable before the add.
	if st == nil {
		st = &state{Name: req.Name, PeerURLs: req.PeerURLs, ID: req.ID, Replaces: req.Replaces}
		if err := saveState(j.cfg.DataDir, st); err != nil {
			return err
		}
		j.lg.Info("recorded this member's identity before asking to be added", "path", StatePath(j.cfg.DataDir), "member-id", st.ID)
	} else {
		j.lg.Info("resuming an interrupted join", "member-id", st.ID, "added", st.Added)
	}
	CrashPoint("identity")

	// 3. The add (a learner); a retry finds the entry the first try made.
	req.Preflight = false
	ans, err := j.ask(ctx, req)
	if err != nil {
		return err
	}
	if ans.Member == nil {
		return fmt.Errorf("%w: the cluster's answer names no member for %q", ErrRefused, req.Name)
	}
	st.ID, st.Added, st.ClusterID, st.Members = membership.IDString(ans.Member.ID), true, ans.ClusterID, ans.Members
	if err := saveState(j.cfg.DataDir, st); err != nil {
		return err
	}
	what := "added as a learner; the leader promotes it once it has caught up"
	switch {
	case ans.Reused:
		what = "the cluster already had this member's entry (a resumed join, or a `member add` at this peer URL); nothing added"
	case req.Replaces != "":
		what = "added as a learner that replaces " + req.Replaces + "; the leader swaps it in once it has caught up"
	}
	j.lg.Info("joined the cluster: "+what, "member-id", st.ID, "cluster-id", st.ClusterID)
	CrashPoint("added")

	// 4. Start as a member of a running cluster.
	return applyAnswer(j.cfg, st)
}

// applyAnswer turns the member list into the settings `member add`
// prints: --initial-cluster with every member, --initial-cluster-state
// existing.
func applyAnswer(cfg *config.Config, st *state) error {
	var parts []string
	for _, m := range st.Members {
		name := m.Name
		if membership.IDString(m.ID) == st.ID {
			name = st.Name
		}
		for _, u := range m.PeerURLs {
			parts = append(parts, name+"="+u)
		}
	}
	if !slices.ContainsFunc(st.Members, func(m *membership.Member) bool { return membership.IDString(m.ID) == st.ID }) {
		for _, u := range st.PeerURLs {
			parts = append(parts, st.Name+"="+u)
		}
	}
	if err := cfg.SetInitialCluster(strings.Join(parts, ",")); err != nil {
		return fmt.Errorf("the cluster's member list makes no --initial-cluster: %w", err)
	}
	cfg.InitialClusterState = "existing"
	cfg.InitialClusterSet = true
	return nil
}

// ask sends req to the --join URLs in turn until one answers; members that
// cannot be reached (or have no leader) are tried again for retryFor. A
// refusal ends the join at once.
func (j *joiner) ask(ctx context.Context, req membership.JoinRequest) (*membership.JoinAnswer, error) {
	deadline := time.Now().Add(retryFor)
	var last error
	for attempt := 1; time.Now().Before(deadline); attempt++ {
		for _, base := range j.cfg.Join.URLs {
			ans, final, err := j.askOne(ctx, base, req)
			if err == nil {
				return ans, nil
			}
			if final {
				return nil, err
			}
			last = err
			j.lg.Warn("cluster member did not answer the join; trying the next", "url", base, "attempt", attempt, "error", err.Error())
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(retryPause):
		}
	}
	return nil, fmt.Errorf("no member of --join %s answered for %v (last: %v). Check the URLs (client URLs of running members, like http://10.0.0.1:2379), that the cluster has a leader, and client TLS (--trusted-ca-file, --cert-file)",
		strings.Join(j.cfg.Join.URLs, ","), retryFor, last)
}

// askOne returns the answer, or an error and whether that is final (a
// refusal) rather than worth retrying.
func (j *joiner) askOne(ctx context.Context, base string, req membership.JoinRequest) (*membership.JoinAnswer, bool, error) {
	if j.cfg.Join.User != "" && j.token == "" {
		tok, err := j.authenticate(ctx, base)
		if err != nil {
			return nil, errors.Is(err, ErrRefused), err
		}
		j.token = tok
	}
	body, _ := json.Marshal(req)
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(base, "/")+"/cadre/v1/members/join", bytes.NewReader(body))
	if err != nil {
		return nil, true, err
	}
	hr.Header.Set("Content-Type", "application/json")
	if j.token != "" {
		hr.Header.Set("Authorization", j.token)
	}
	resp, err := j.client.Do(hr)
	if err != nil {
		return nil, false, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	switch resp.StatusCode {
	case http.StatusOK:
		var ans membership.JoinAnswer
		if err := json.Unmarshal(raw, &ans); err != nil {
			return nil, false, fmt.Errorf("%s: unreadable answer: %w", base, err)
		}
		return &ans, false, nil
	case http.StatusNotFound:
		return nil, true, fmt.Errorf("%w: %s does not serve Cadre's join endpoint (is it etcd, or an older Cadre?); add this member with `member add` and start it with the settings it prints instead", ErrRefused, base)
	}
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(raw, &e)
	msg := cmp.Or(e.Error, strings.TrimSpace(string(raw)), resp.Status)
	// Transient: no leader yet, a timeout, or members connected for less
	// than the health interval (a cluster that has just started).
	if resp.StatusCode == http.StatusServiceUnavailable || strings.Contains(msg, "no leader") || strings.Contains(msg, "timed out") ||
		strings.Contains(msg, "unhealthy cluster") {
		return nil, false, fmt.Errorf("%s: %s", base, msg)
	}
	return nil, true, fmt.Errorf("%w: %s", ErrRefused, msg)
}

// authenticate gets a token for --join-user through the JSON gateway.
func (j *joiner) authenticate(ctx context.Context, base string) (string, error) {
	name, pw, _ := strings.Cut(j.cfg.Join.User, ":")
	body, _ := json.Marshal(map[string]string{"name": name, "password": pw})
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(base, "/")+"/v3/auth/authenticate", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	resp, err := j.client.Do(hr)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out struct {
		Token   string `json:"token"`
		Message string `json:"message"`
	}
	_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out)
	if resp.StatusCode != http.StatusOK || out.Token == "" {
		return "", fmt.Errorf("%w: --join-user %q could not authenticate at %s: %s", ErrRefused, name, base, cmp.Or(out.Message, resp.Status))
	}
	return out.Token, nil
}

// serveProbe listens on the member's peer URLs and answers the leader's
// probe until the returned stop is called (the member's own peer listener
// takes over the ports after that).
func (j *joiner) serveProbe() (func(), error) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+membership.JoinProbePath, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(membership.JoinProbe{Name: j.cfg.Name, Nonce: r.URL.Query().Get("nonce")})
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	var lns []net.Listener
	stop := func() {
		_ = srv.Close()
		for _, ln := range lns {
			ln.Close()
		}
	}
	for _, u := range j.cfg.ListenPeerURLs {
		ln, err := netutil.Listen(u)
		if err != nil {
			stop()
			return nil, fmt.Errorf("cannot listen on --listen-peer-urls %s: %w (is another member or process using that port?)", u.String(), err)
		}
		if netutil.IsSecure(u.Scheme) {
			ln = tlsutil.Listener(ln, j.tls.PeerServer, j.tls.HandshakeTimeout, j.lg, "peer")
		}
		lns = append(lns, ln)
		go func() { _ = srv.Serve(ln) }()
	}
	return stop, nil
}

// loadState reads a recorded join; it must be this member's.
func loadState(cfg *config.Config) (*state, error) {
	b, err := os.ReadFile(StatePath(cfg.DataDir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the recorded join %s: %w", StatePath(cfg.DataDir), err)
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil || st.ID == "" {
		return nil, fmt.Errorf("the recorded join %s is unreadable (%v); it holds no member yet: remove it and start again", StatePath(cfg.DataDir), err)
	}
	peers := urlStrings(cfg.InitialAdvertisePeerURLs)
	if st.Name != cfg.Name || !slices.Equal(st.PeerURLs, peers) {
		return nil, fmt.Errorf("data dir %s holds an unfinished join of member %q at %v (member ID %s), not %q at %v: start with --name=%s --initial-advertise-peer-urls=%s to finish it, or remove the member (if added) and wipe the data dir",
			cfg.DataDir, st.Name, st.PeerURLs, st.ID, cfg.Name, peers, st.Name, strings.Join(st.PeerURLs, ","))
	}
	if want := membership.IDString(cfg.Join.Replace); cfg.Join.Replace != 0 && st.Replaces != want {
		return nil, fmt.Errorf("data dir %s holds an unfinished join that replaces %q, not %s: start with the same --replace, or wipe the data dir", cfg.DataDir, st.Replaces, want)
	}
	return &st, nil
}

// saveState writes st durably (write, fsync, rename, fsync the dir), so a
// crash leaves the old record or the new one.
func saveState(dataDir string, st *state) error {
	p := StatePath(dataDir)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("creating data dir %s: %w", dataDir, err)
	}
	b, _ := json.MarshalIndent(st, "", "  ")
	tmp := p + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("recording the join: %w", err)
	}
	if _, err := f.Write(b); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err == nil {
		var d *os.File
		if d, err = os.Open(filepath.Dir(p)); err == nil {
			err = d.Sync()
			d.Close()
		}
	}
	if err != nil {
		return fmt.Errorf("recording the join in %s: %w", p, err)
	}
	return nil
}

func newNonce() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func urlStrings(us []url.URL) []string {
	out := make([]string, 0, len(us))
	for _, u := range us {
		out = append(out, u.String())
	}
	return out
}

// ClientTLS is how the joiner dials https --join URLs: the client port's
// TLS files, as a client. --trusted-ca-file verifies the members (the
// system's CAs when unset; none with --auto-tls), and --client-cert-file,
// else --cert-file, is the client certificate (etcd's server certificates
// usually allow client use too).
func ClientTLS(cfg *config.Config) (*tls.Config, error) {
	c := cfg.TLS.Client
	return tlsutil.Client(tlsutil.Files{CertFile: c.CertFile, KeyFile: c.KeyFile, ClientCertFile: c.ClientCertFile, ClientKeyFile: c.ClientKeyFile,
		TrustedCAFile: c.TrustedCAFile, AutoTLS: c.AutoTLS}, tlsutil.Options{MinVersion: tls.VersionTLS12}, "")
}
