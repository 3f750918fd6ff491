package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cadrekv/cadre/internal/membership"
)

// Before a member touches its data dir or raft, it asks the members it
// knows of who they are. This is what keeps a member from ever joining the
// wrong cluster, and a mistaken start from disturbing a running one.

// ErrClusterMismatch means a peer belongs to another cluster.
var ErrClusterMismatch = errors.New("cluster ID mismatch")

// ErrAlreadyBootstrapped means a member with no data tried to bootstrap a
// cluster in which it has already run.
var ErrAlreadyBootstrapped = errors.New("member has already been bootstrapped")

type peerView struct {
	url       string
	clusterID uint64
	members   []*membership.Member
}

// probePeers asks every URL for its cluster ID and member list, in
// parallel, each bounded by the client's timeout. Unreachable peers are skipped.
func probePeers(client *http.Client, urls []string) ([]peerView, []error) {
	var (
		mu    sync.Mutex
		views []peerView
		errs  []error
		wg    sync.WaitGroup
	)
	for _, u := range urls {
		wg.Add(1)
		go func(u string) {
			defer wg.Done()
			v, err := fetchMembers(client, u)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			views = append(views, v)
		}(u)
	}
	wg.Wait()
	sort.Slice(views, func(i, j int) bool { return views[i].url < views[j].url })
	return views, errs
}

func fetchMembers(client *http.Client, base string) (peerView, error) {
	resp, err := client.Get(strings.TrimSuffix(base, "/") + "/cadre/members")
	if err != nil {
		return peerView{}, fmt.Errorf("%s: %w", base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return peerView{}, fmt.Errorf("%s answered %s (is it a Cadre member?)", base, resp.Status)
	}
	cid, err := membership.ParseID(resp.Header.Get("X-Cadre-Cluster-ID"))
	if err != nil {
		return peerView{}, fmt.Errorf("%s: no cluster ID in its answer", base)
	}
	var ms []*membership.Member
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(&ms); err != nil {
		return peerView{}, fmt.Errorf("%s: unreadable member list: %w", base, err)
	}
	return peerView{url: base, clusterID: cid, members: ms}, nil
}

// otherPeerURLs lists the peer URLs of --initial-cluster, without ours.
func (s *Server) otherPeerURLs() []string {
	self := map[string]bool{}
	for _, u := range urlStrings(s.cfg.InitialAdvertisePeerURLs) {
		self[u] = true
	}
	var out []string
	for _, urls := range s.cfg.InitialCluster {
		for _, u := range urls {
			if !self[u.String()] {
				out = append(out, u.String())
			}
		}
	}
	sort.Strings(out)
	return out
}

// joinExisting is the start of a member added at runtime: it asks the
// running cluster for its members, checks --initial-cluster against them
// member for member, and takes the ID the cluster assigned.
func (s *Server) joinExisting() (clusterID uint64, self *membership.Member, others []*membership.Member, err error) {
	urls := s.otherPeerURLs()
	if len(urls) == 0 {
		return 0, nil, nil, fmt.Errorf("--initial-cluster-state existing needs the running members in --initial-cluster, but it lists only this member; add the running members (the `member add` command prints the full value)")
	}
	var views []peerView
	var errs []error
	// A bounded retry covers members that are restarting at this moment.
	for attempt := 0; attempt < 5 && len(views) == 0; attempt++ {
		if attempt > 0 {
			time.Sleep(time.Second)
		}
		views, errs = probePeers(s.peerHTTP(2*time.Second), urls)
	}
	if len(views) == 0 {
		return 0, nil, nil, fmt.Errorf("cannot reach any running member listed in --initial-cluster to join the cluster (%v); start this member while the cluster is running, with its members' peer URLs in --initial-cluster", errors.Join(errs...))
	}
	v := views[0]
	initial := map[string][]string{}
	for name, us := range s.cfg.InitialCluster {
		initial[name] = urlStrings(us)
	}
	self, err = membership.CheckJoin(s.cfg.Name, initial, urlStrings(s.cfg.InitialAdvertisePeerURLs), v.members)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("refusing to join the cluster at %s: %w", v.url, err)
	}
	for _, m := range v.members {
		if m.ID != self.ID {
			others = append(others, m)
		}
	}
	return v.clusterID, self, others, nil
}

// checkPeersAgree refuses to start when a reachable peer belongs to a
// different cluster than ours, or (for a brand-new member) already knows
// this member as one that ran before.
func (s *Server) checkPeersAgree(clusterID, memberID uint64, urls []string, fresh bool) error {
	views, _ := probePeers(s.peerHTTP(time.Second), urls)
	for _, v := range views {
		if v.clusterID != clusterID {
			how := "--initial-cluster and --initial-cluster-token describe"
			fix := "if this member was added to that cluster with `member add`, start it with --initial-cluster-state existing and the settings `member add` printed; if you meant to create a new cluster, give it its own peer URLs and --initial-cluster-token"
			if !fresh {
				how = "this data dir belongs to"
				fix = "a member never moves to another cluster with its data: point --data-dir at this member's own data, or wipe it and `member add` the member to the cluster you want"
			}
			return fmt.Errorf("%w: the member at %s belongs to cluster %s, but %s cluster %s; %s",
				ErrClusterMismatch, v.url, membership.IDString(v.clusterID), how, membership.IDString(clusterID), fix)
		}
		if fresh {
			for _, m := range v.members {
				if m.ID == memberID && len(m.ClientURLs) > 0 {
					return fmt.Errorf("%w: member %s already ran in cluster %s (the member at %s knows its client URLs %v) but this data dir %s is empty; starting it again as new could lose committed data. Remove it (`member remove %s`), `member add` it again, and start it with --initial-cluster-state existing",
						ErrAlreadyBootstrapped, membership.IDString(memberID), membership.IDString(clusterID), v.url, m.ClientURLs, s.cfg.DataDir, membership.IDString(memberID))
				}
			}
		}
	}
	return nil
}
