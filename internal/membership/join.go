package membership

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Errors of the join check.
var (
	// ErrJoinMismatch: the member's flags do not describe the running
	// cluster (etcd: "unmatched member while checking PeerURLs").
	ErrJoinMismatch = errors.New("membership: this member's flags do not match the running cluster")
	// ErrNotAdded: the cluster has no member waiting for this one.
	ErrNotAdded = errors.New("membership: this member was never added to the cluster")
)

// JoinMismatchError explains why a member started with
// --initial-cluster-state=existing may not join, and how to start it.
// errors.Is matches Reason (ErrJoinMismatch or ErrNotAdded).
type JoinMismatchError struct {
	Reason   error
	Name     string    // --name
	Problems []string  // one line per difference found
	Cluster  []*Member // the cluster's member list
	// Self is the cluster's member this one should start as, when that is
	// clear; then InitialCluster and AdvertisePeerURLs are flag values that
	// would work.
	Self              *Member
	InitialCluster    string
	AdvertisePeerURLs string
	// Hint is extra advice (e.g. run `member add` first).
	Hint string
}

func (e *JoinMismatchError) Unwrap() error { return e.Reason }

func (e *JoinMismatchError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v (member %q):\n", e.Reason, e.Name)
	for _, p := range e.Problems {
		fmt.Fprintf(&b, "  - %s\n", p)
	}
	fmt.Fprintf(&b, "the cluster has %d member(s):\n", len(e.Cluster))
	for _, m := range e.Cluster {
		name, role := m.Name, ""
		if name == "" {
			name = "(unstarted)"
		}
		if m.IsLearner {
			role = " [learner]"
		}
		fmt.Fprintf(&b, "  %s  %-12s %s%s\n", IDString(m.ID), name, strings.Join(m.PeerURLs, ","), role)
	}
	if e.Hint != "" {
		fmt.Fprintf(&b, "%s\n", e.Hint)
	}
	if e.Self != nil {
		fmt.Fprintf(&b, "start this member (ID %s) with:\n", IDString(e.Self.ID))
		fmt.Fprintf(&b, "  --name=%s --initial-cluster-state=existing\n", e.Name)
		fmt.Fprintf(&b, "  --initial-cluster=%s\n", e.InitialCluster)
		fmt.Fprintf(&b, "  --initial-advertise-peer-urls=%s\n", e.AdvertisePeerURLs)
		b.WriteString("  (and a --listen-peer-urls that receives traffic sent to those URLs)")
	}
	return strings.TrimRight(b.String(), "\n")
}

// CheckJoin is what a member started with --initial-cluster-state=existing
// verifies against the running cluster's member list (remote; unstarted
// members have Name ""). Its --initial-cluster must list exactly the
// cluster's members, matched by peer URL set (no DNS: scheme and host case
// and a trailing slash are ignored), learners included. Names of the other
// entries do not matter. The entry for name must match exactly one member,
// which is returned as self (its ID is this member's), and
// advertisePeerURLs must be that member's URLs.
//
// Unlike etcd, the entry for name may not take over a member that has
// already started under another name: two processes would share one ID.
func CheckJoin(name string, initialCluster map[string][]string, advertisePeerURLs []string, remote []*Member) (self *Member, err error) {
	e := &JoinMismatchError{Reason: ErrJoinMismatch, Name: name}
	for _, m := range remote {
		if m != nil {
			e.Cluster = append(e.Cluster, m.clone())
		}
	}
	sort.Slice(e.Cluster, func(i, j int) bool { return e.Cluster[i].ID < e.Cluster[j].ID })
	cl := e.Cluster

	mine, listed := initialCluster[name]
	if !listed || name == "" {
		e.Problems = append(e.Problems, fmt.Sprintf("--initial-cluster has no entry for --name=%q", name))
		mine = advertisePeerURLs
	}

	// Match every other local entry to a remote member by URL set.
	byKey := map[string][]int{}
	for i, m := range cl {
		k := urlSet(m.PeerURLs)
		byKey[k] = append(byKey[k], i)
	}
	taken := make([]bool, len(cl))
	localOf := map[int]string{}
	var others []string
	for n := range initialCluster {
		if n != name {
			others = append(others, n)
		}
	}
	sort.Strings(others)

	// self first: it is the entry whose identity matters.
	selfIdx := -1
	switch c := byKey[urlSet(mine)]; {
	case len(mine) == 0:
	case len(c) == 1:
		selfIdx = c[0]
	case len(c) > 1:
		e.Problems = append(e.Problems, fmt.Sprintf("%d cluster members share the peer URLs %s; remove the duplicate first", len(c), strings.Join(mine, ",")))
	}
	if selfIdx >= 0 {
		taken[selfIdx] = true
		localOf[selfIdx] = name
	}
	var extra []string
	for _, n := range others {
		found := false
		for _, i := range byKey[urlSet(initialCluster[n])] {
			if !taken[i] {
				taken[i], localOf[i], found = true, n, true
				break
			}
		}
		if !found {
			extra = append(extra, n)
		}
	}

	if selfIdx >= 0 && cl[selfIdx].Started() && cl[selfIdx].Name != name {
		m := cl[selfIdx]
		e.Problems = append(e.Problems, fmt.Sprintf("peer URLs %s of %q belong to member %s (ID %s), which has already started; a new member needs its own peer URLs and a `member add`",
			strings.Join(m.PeerURLs, ","), name, m.Name, IDString(m.ID)))
		e.Reason = ErrNotAdded
		e.Hint = addHint(name, mine)
		return nil, e
	}

	target := selfIdx
	if target < 0 && len(mine) > 0 {
		// Which member was added for this one? An unstarted member no
		// other entry accounts for; else a started one under this name
		// (its peer URLs changed without `member update`).
		var cands []int
		for i, m := range cl {
			if !taken[i] && !m.Started() {
				cands = append(cands, i)
			}
		}
		for _, i := range cands {
			m := cl[i]
			e.Problems = append(e.Problems, fmt.Sprintf("member %q is at %s locally but the cluster added it as %s (member ID %s, unstarted)",
				name, strings.Join(mine, ","), strings.Join(m.PeerURLs, ","), IDString(m.ID)))
		}
		switch {
		case len(cands) == 1:
			target = cands[0]
		case len(cands) > 1:
			e.Hint = "several members are unstarted; start this member with the URLs of the one added for it"
			for _, i := range cands {
				taken[i] = true // described above; not listed again as missing
			}
		default:
			for i, m := range cl {
				if !taken[i] && m.Name == name {
					e.Problems = append(e.Problems, fmt.Sprintf("member %q is at %s locally but the cluster knows it at %s (member ID %s, started); to move it run `cadrectl member update %s --peer-urls=%s` first",
						name, strings.Join(mine, ","), strings.Join(m.PeerURLs, ","), IDString(m.ID), IDString(m.ID), strings.Join(mine, ",")))
					target = i
					break
				}
			}
		}
		if len(cands) == 0 && target < 0 {
			e.Reason = ErrNotAdded
			e.Problems = append(e.Problems, fmt.Sprintf("no cluster member has the peer URLs %s and none is waiting to start", strings.Join(mine, ",")))
			e.Hint = addHint(name, orDefault(advertisePeerURLs, mine))
		}
		if target >= 0 {
			taken[target] = true
		}
	}

	for _, n := range extra {
		e.Problems = append(e.Problems, fmt.Sprintf("--initial-cluster lists %s=%s but no cluster member has these peer URLs",
			n, strings.Join(initialCluster[n], ",")))
	}
	for i, m := range cl {
		if !taken[i] {
			e.Problems = append(e.Problems, fmt.Sprintf("the cluster has member %s (ID %s) at %s but --initial-cluster has no entry with these peer URLs",
				orUnstarted(m.Name), IDString(m.ID), strings.Join(m.PeerURLs, ",")))
		}
	}
	if len(initialCluster) != len(cl) && e.Reason != ErrNotAdded {
		e.Problems = append(e.Problems, fmt.Sprintf("--initial-cluster lists %d member(s), the cluster has %d (learners count)", len(initialCluster), len(cl)))
	}
	if target >= 0 && urlSet(advertisePeerURLs) != urlSet(cl[target].PeerURLs) && target == selfIdx {
		e.Problems = append(e.Problems, fmt.Sprintf("--initial-advertise-peer-urls=%s but the cluster knows this member (ID %s) at %s",
			strings.Join(advertisePeerURLs, ","), IDString(cl[target].ID), strings.Join(cl[target].PeerURLs, ",")))
	}
	if len(e.Problems) == 0 {
		return cl[selfIdx].clone(), nil
	}
	if target >= 0 && e.Reason == ErrJoinMismatch {
		e.Self = cl[target].clone()
		localOf[target] = name
		e.InitialCluster = workingInitialCluster(cl, target, name, localOf)
		e.AdvertisePeerURLs = strings.Join(cl[target].PeerURLs, ",")
	}
	return nil, e
}

func addHint(name string, urls []string) string {
	return fmt.Sprintf("this member was never added: run `cadrectl member add %s --peer-urls=%s` (or etcdctl member add) on the running cluster first, then start it with the printed settings",
		name, strings.Join(urls, ","))
}

func orDefault(a, b []string) []string {
	if len(a) > 0 {
		return a
	}
	return b
}

func orUnstarted(name string) string {
	if name == "" {
		return "(unstarted)"
	}
	return fmt.Sprintf("%q", name)
}

// workingInitialCluster builds an --initial-cluster that describes the
// cluster exactly, with the member at self under this member's name. Each
// other member keeps its published name, else the local name that matched
// it, else a made-up unique one (names of other members do not matter, but
// must be distinct or their URLs would merge into one entry).
func workingInitialCluster(cl []*Member, self int, name string, localOf map[int]string) string {
	used := map[string]bool{name: true}
	names := make([]string, len(cl))
	names[self] = name
	for i, m := range cl {
		if i == self {
			continue
		}
		for _, n := range []string{m.Name, localOf[i], "member-" + IDString(m.ID)} {
			if n != "" && !used[n] && validEntryName(n) {
				names[i] = n
				break
			}
		}
		if names[i] == "" { // only with duplicate IDs, which a real cluster never has
			names[i] = fmt.Sprintf("member-%s-%d", IDString(m.ID), i)
		}
		used[names[i]] = true
	}
	idx := make([]int, len(cl))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return names[idx[a]] < names[idx[b]] })
	var parts []string
	for _, i := range idx {
		for _, u := range cl[i].PeerURLs {
			parts = append(parts, names[i]+"="+u)
		}
	}
	return strings.Join(parts, ",")
}

// validEntryName: a name that survives the name=url,... syntax.
func validEntryName(n string) bool { return !strings.ContainsAny(n, "=, \t\n") }
