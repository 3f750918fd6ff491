package membership

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Errors of change validation. Their texts follow etcd's (with the
// "membership:" prefix); Validate wraps them with an explanation that names
// the members and counts involved.
var (
	ErrNotEnoughStarted = errors.New("membership: re-configuration failed due to not enough started members")
	ErrUnhealthy        = errors.New("membership: unhealthy cluster")
	ErrLearnerNotReady  = errors.New("membership: can only promote a learner member which is in sync with leader")
	ErrNotLearner       = errors.New("membership: can only promote a learner member")
	ErrTooManyLearners  = errors.New("membership: too many learner members in cluster")
	ErrBadURLs          = errors.New("membership: given member URLs are invalid")

	// ErrLastVoter refuses a change that would leave no voter (raft cannot
	// run without one, and etcd's raft panics on it). It wraps
	// ErrNotEnoughStarted, which is what etcd's strict check answers in
	// that case, so an error table that knows only etcd's errors still
	// maps it; errors.Is tells the two apart where it matters.
	ErrLastVoter = fmt.Errorf("%w: the cluster must keep at least one voting member", ErrNotEnoughStarted)
)

// ChangeKind is the kind of a membership change.
type ChangeKind int

const (
	ChangeAdd ChangeKind = iota + 1
	ChangeRemove
	ChangeUpdate
	ChangePromote
	// ChangeSwap promotes learner ID and removes voter Old in one
	// joint-consensus change (replace).
	ChangeSwap
)

func (k ChangeKind) String() string {
	switch k {
	case ChangeAdd:
		return "add"
	case ChangeRemove:
		return "remove"
	case ChangeUpdate:
		return "update"
	case ChangePromote:
		return "promote"
	case ChangeSwap:
		return "swap"
	}
	return "change(" + strconv.Itoa(int(k)) + ")"
}

// Change is one membership change as the leader is asked to make it.
type Change struct {
	Kind      ChangeKind
	ID        uint64   // remove/update/promote: the target; add: the new member's ID (already computed)
	PeerURLs  []string // add/update
	IsLearner bool     // add
	// AutoPromote and Replaces are the intents an add records with the
	// new learner (Member.AutoPromote, Member.Replaces).
	AutoPromote bool
	Replaces    uint64
	// Old is the voter a swap removes.
	Old uint64
	// By is who asked (the audit trail): a user, a certificate's CN,
	// "autopilot", or the client's address.
	By string
}

// View is everything the leader knows when it judges a change. All fields
// are plain data so tests can build any situation.
type View struct {
	Members        []*Member            // current members (Name != "" means started)
	Removed        map[uint64]bool      // IDs removed from the cluster
	Leader         uint64               // the member doing the check (always counts as active)
	ActiveSince    map[uint64]time.Time // per peer: since when the leader has an unbroken connection to it; missing/zero = not connected
	Now            time.Time            // the time of the check
	HealthInterval time.Duration        // a peer counts as active only if connected for at least this long (etcd: 5s)
	Match          map[uint64]uint64    // raft progress match index per member (leader's view)
	Commit         uint64               // leader's committed index
	// SnapshotInFlight marks members the leader is sending a snapshot to.
	SnapshotInFlight    map[uint64]bool
	StrictReconfigCheck bool
	// MaxLearners caps the number of learners; 0 allows none (etcd's
	// --max-learners defaults to 1).
	MaxLearners int
	// MaxLearnerLag: a learner is ready to promote when
	// Commit - Match[id] <= MaxLearnerLag and no snapshot is in flight.
	MaxLearnerLag uint64
}

// quorum is the number of votes a configuration of n voters needs.
func quorum(n int) int { return n/2 + 1 }

// active reports whether id counts as up for the quorum-safety checks: the
// leader itself, or a peer connected without a break for HealthInterval.
func (v *View) active(id uint64) bool {
	if id == v.Leader {
		return true
	}
	t := v.ActiveSince[id]
	return !t.IsZero() && v.Now.Sub(t) >= v.HealthInterval
}

// activity says in words why a member does or does not count as active.
func (v *View) activity(id uint64) string {
	if id == v.Leader {
		return "the leader"
	}
	t := v.ActiveSince[id]
	if t.IsZero() {
		return "not connected"
	}
	d := v.Now.Sub(t)
	if d >= v.HealthInterval {
		return "connected for " + fmtDur(d)
	}
	return "connected for only " + fmtDur(d)
}

// lag is how many committed entries a member is missing (leader's view).
func (v *View) lag(id uint64) uint64 {
	if m := v.Match[id]; m < v.Commit {
		return v.Commit - m
	}
	return 0
}

func (v *View) member(id uint64) *Member {
	for _, m := range v.Members {
		if m.ID == id {
			return m
		}
	}
	return nil
}

// voters returns the voting members, in the order of v.Members.
func (v *View) voters() []*Member {
	var out []*Member
	for _, m := range v.Members {
		if !m.IsLearner {
			out = append(out, m)
		}
	}
	return out
}

func (v *View) learners() []*Member {
	var out []*Member
	for _, m := range v.Members {
		if m.IsLearner {
			out = append(out, m)
		}
	}
	return out
}

func fmtDur(d time.Duration) string {
	if d >= time.Second {
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Millisecond).String()
}

// label names a member for messages: its name, or its ID when unstarted.
func label(m *Member) string {
	if m.Name != "" {
		return m.Name
	}
	return IDString(m.ID) + " (unstarted)"
}

func labelID(v *View, id uint64) string {
	if m := v.member(id); m != nil {
		if m.Name != "" {
			return fmt.Sprintf("%s (%s)", m.Name, IDString(id))
		}
		return IDString(id) + " (unstarted)"
	}
	return IDString(id)
}

// judgement is the outcome of a check: the error Validate returns and the
// advice Evaluate shows with it. One function computes both, so the dry
// run can never disagree with the real call.
type judgement struct {
	err      error
	fix      string
	warnings []string
}

func refuse(fix string, sentinel error, format string, args ...any) judgement {
	return judgement{err: fmt.Errorf("%w: "+format, append([]any{sentinel}, args...)...), fix: fix}
}

// Validate decides whether the leader may propose c, with etcd's semantics
// (anchors-membership.md §2) and Cadre's changes: learner promotion uses an
// absolute lag bound, a learner add needs quorum of the voters it leaves
// (not of voters+1), and no change may leave zero voters. Static checks
// (URLs, IDs, learner cap) come before the quorum-safety ones: a malformed
// request is wrong whatever the cluster's health.
func Validate(v View, c Change) error { return judge(&v, c).err }

func judge(v *View, c Change) judgement {
	switch c.Kind {
	case ChangeAdd:
		return judgeAdd(v, c)
	case ChangeRemove:
		return judgeRemove(v, c)
	case ChangeUpdate:
		return judgeUpdate(v, c)
	case ChangePromote:
		return judgePromote(v, c)
	case ChangeSwap:
		return judgeSwap(v, c)
	}
	return judgement{err: fmt.Errorf("membership: unknown change kind %d: expected add, remove, update or promote", int(c.Kind)),
		fix: "use member add, remove, update or promote"}
}

// checkURLs applies etcd's rule for peer URLs (types.NewURLs): at least one,
// each http(s)://host:port with nothing after the port.
func checkURLs(urls []string) judgement {
	const fix = "give peer URLs as scheme://host:port, comma-separated, e.g. --peer-urls=http://10.0.0.4:2380"
	if len(urls) == 0 {
		return refuse(fix, ErrBadURLs, "no peer URLs given")
	}
	seen := map[string]bool{}
	for _, s := range urls {
		if err := validPeerURL(s); err != nil {
			return refuse(fix, ErrBadURLs, "%q %v", s, err)
		}
		n := normalizeURL(s)
		if seen[n] {
			return refuse(fix, ErrBadURLs, "%q is given twice", s)
		}
		seen[n] = true
	}
	return judgement{}
}

func validPeerURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("does not parse as a URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return errors.New("must start with http:// or https://")
	}
	if u.Opaque != "" || u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" {
		return errors.New("must be only scheme://host:port, with no path, user, query or fragment")
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil || host == "" {
		return errors.New("must have a host and a port (host:port)")
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("has port %q, expected 1-65535", port)
	}
	return nil
}

// urlOwner returns the member other than self already using one of urls.
func urlOwner(v *View, urls []string, self uint64) (*Member, string) {
	return peerURLOwner(v.Members, urls, self)
}

func judgeAdd(v *View, c Change) judgement {
	if j := checkURLs(c.PeerURLs); j.err != nil {
		return j
	}
	if c.Replaces != 0 {
		if j := judgeReplaceIntent(v, c); j.err != nil {
			return j
		}
	}
	switch r := checkAdd(v.Members, v.Removed, c.ID, c.PeerURLs, c.IsLearner, v.MaxLearners); r.err {
	case nil:
	case ErrIDRemoved:
		return refuse("retry: a new add computes a new ID", ErrIDRemoved, "new member ID %s belongs to a removed member and can never be reused", IDString(c.ID))
	case ErrIDExists:
		return refuse("retry: a new add computes a new ID", ErrIDExists, "member ID %s already exists", IDString(c.ID))
	case ErrPeerURLExists:
		return refuse("give the new member its own peer URL; if "+labelID(v, r.owner.ID)+" was added by mistake, remove it first",
			ErrPeerURLExists, "peer URL %s is already used by member %s", r.url, labelID(v, r.owner.ID))
	case ErrTooManyLearners:
		return refuse("promote or remove a learner first, or raise --max-learners on every member",
			ErrTooManyLearners, "the cluster has %d learner(s) (%s) and allows at most %d (--max-learners)",
			len(r.learners), names(r.learners), v.MaxLearners)
	default:
		return refuse("", r.err, "%v", r.err)
	}
	voters := v.voters()
	after := len(voters)
	if !c.IsLearner {
		after++
	}
	var j judgement
	switch {
	case c.IsLearner:
	case len(voters) == 1:
		j.warnings = append(j.warnings, "this makes a 2-member cluster with quorum 2: writes (and further member changes, including removing the new member) stall until the new member has started and connected")
	default:
		j.warnings = append(j.warnings, fmt.Sprintf("quorum becomes %d of %d voters when the add commits; the new member counts as down until it has started and caught up", quorum(after), after))
		if after%2 == 0 {
			j.warnings = append(j.warnings, fmt.Sprintf("%d voters tolerate no more failures than %d; add another member next, or add this one as a learner", after, after-1))
		}
	}
	if !v.StrictReconfigCheck {
		return j
	}
	if !c.IsLearner {
		started, unstarted := splitStarted(voters)
		// etcd's special case: a single started member may grow to two.
		growFromOne := len(started) == 1 && after == 2
		if !growFromOne && len(started) < quorum(after) {
			return refuse(fmt.Sprintf("start the unstarted member(s) %s with --initial-cluster-state=existing, or remove them if they were added by mistake; or add this member as a learner (--learner)", ids(unstarted)),
				ErrNotEnoughStarted, "adding a voter makes %d voters (quorum %d) but only %d voter(s) have started (%s; unstarted: %s)",
				after, quorum(after), len(started), names(started), ids(unstarted))
		}
	}
	// etcd asks quorum(voters+1) for learners too; a learner does not vote,
	// so Cadre asks only the quorum of the voters that remain.
	if c.IsLearner || len(voters) != 1 { // etcd: a one-voter cluster may always grow
		need := quorum(after)
		if j2 := needActive(v, voters, 0, need, "adding a "+kindWord(c.IsLearner)); j2.err != nil {
			return j2
		}
	}
	return j
}

func kindWord(learner bool) string {
	if learner {
		return "learner"
	}
	return "voter"
}

// needActive refuses with ErrUnhealthy unless at least need of voters
// (other than skip) are active.
func needActive(v *View, voters []*Member, skip uint64, need int, what string) judgement {
	var up, down []string
	var downMembers []*Member
	for _, m := range voters {
		if m.ID == skip {
			continue
		}
		if v.active(m.ID) {
			up = append(up, label(m))
		} else {
			down = append(down, label(m)+" "+v.activity(m.ID))
			downMembers = append(downMembers, m)
		}
	}
	if len(up) >= need {
		return judgement{}
	}
	return refuse(fmt.Sprintf("restore the leader's connection to %s and wait %s, or remove a dead member first (`member list` shows IDs)", names(downMembers), fmtDur(v.HealthInterval)),
		ErrUnhealthy, "%s needs %d voter(s) in contact with the leader for %s, only %d %s (%s; %s)",
		what, need, fmtDur(v.HealthInterval), len(up), isAre(len(up)), listOrNone(up), listOrNone(down))
}

func judgeRemove(v *View, c Change) judgement {
	m, j := target(v, c.ID)
	if j.err != nil {
		return j
	}
	if m.IsLearner {
		return judgement{} // a learner holds no vote: removing it never risks quorum
	}
	voters := v.voters()
	if len(voters) == 1 {
		return refuse("add another voter first, or, to retire the cluster, stop it instead", ErrLastVoter,
			"%s is the only voting member", labelID(v, m.ID))
	}
	after := len(voters) - 1
	var j2 judgement
	if after == 2 {
		j2.warnings = append(j2.warnings, "2 voters have quorum 2: the cluster will not survive the loss of either; add a member soon")
	}
	if c.ID == v.Leader {
		j2.warnings = append(j2.warnings, "this removes the leader: leadership is handed to another voter first")
	}
	if !v.StrictReconfigCheck {
		return j2
	}
	var rest []*Member
	for _, o := range voters {
		if o.ID != m.ID {
			rest = append(rest, o)
		}
	}
	started, unstarted := splitStarted(rest)
	if len(started) < quorum(after) {
		return refuse(fmt.Sprintf("start the unstarted member(s) %s first, or remove them first", ids(unstarted)),
			ErrNotEnoughStarted, "removing %s leaves %d voters (quorum %d) but only %d of them have started (%s; unstarted: %s)",
			labelID(v, m.ID), after, quorum(after), len(started), names(started), ids(unstarted))
	}
	if m.ID != v.Leader && v.ActiveSince[m.ID].IsZero() {
		// etcd: a member the leader has no connection to at all is safe
		// to remove. "Connected" here means now, for any time: a member
		// that reconnected a moment ago still votes.
		return j2
	}
	if j3 := needActive(v, voters, m.ID, quorum(after), "removing "+labelID(v, m.ID)); j3.err != nil {
		return j3
	}
	return j2
}

func judgeUpdate(v *View, c Change) judgement {
	if j := checkURLs(c.PeerURLs); j.err != nil {
		return j
	}
	m, j := target(v, c.ID)
	if j.err != nil {
		return j
	}
	if o, u := urlOwner(v, c.PeerURLs, m.ID); o != nil {
		return refuse("choose a peer URL no other member uses", ErrPeerURLExists,
			"peer URL %s is already used by member %s", u, labelID(v, o.ID))
	}
	return judgement{} // etcd: an update changes no vote, so it has no quorum check
}

func judgePromote(v *View, c Change) judgement {
	m, j := target(v, c.ID)
	if j.err != nil {
		return j
	}
	if checkPromote(m, false) == ErrNotLearner {
		return refuse("nothing to do", ErrNotLearner, "%s is already a voting member", labelID(v, m.ID))
	}
	// Readiness is checked even without the strict check, as in etcd.
	if j := learnerReady(v, m); j.err != nil {
		return j
	}
	voters := v.voters()
	after := len(voters) + 1
	var j2 judgement
	if after%2 == 0 {
		j2.warnings = append(j2.warnings, fmt.Sprintf("%d voters tolerate no more failures than %d", after, after-1))
	}
	if !v.StrictReconfigCheck {
		return j2
	}
	started, unstarted := splitStarted(voters)
	if len(started)+1 < quorum(after) { // the learner counts as started (etcd)
		return refuse(fmt.Sprintf("start the unstarted member(s) %s first, or remove them", ids(unstarted)),
			ErrNotEnoughStarted, "promoting %s makes %d voters (quorum %d) but only %d voter(s) plus the learner have started (unstarted: %s)",
			labelID(v, m.ID), after, quorum(after), len(started), ids(unstarted))
	}
	return j2
}

// learnerReady is the readiness rule of a promotion (and of a swap): the
// learner has started, is replicating, and is caught up.
func learnerReady(v *View, m *Member) judgement {
	const fix = "wait for the learner to catch up and retry; `cadrectl member list` shows its lag"
	if !m.Started() || v.Match[m.ID] == 0 || v.ActiveSince[m.ID].IsZero() {
		// A learner that never started (or is not connected now) has
		// acknowledged nothing recent: with a small commit index its lag
		// alone could look small, so it must be replicating to count.
		return refuse("start the learner with the settings `member add` printed, wait until it has caught up, then promote it", ErrLearnerNotReady,
			"learner %s is not replicating from the leader (started: %v, connected: %v, match %d)", labelID(v, m.ID), m.Started(), !v.ActiveSince[m.ID].IsZero(), v.Match[m.ID])
	}
	if v.SnapshotInFlight[m.ID] {
		return refuse(fix, ErrLearnerNotReady, "learner %s is still receiving a snapshot (snapshot in flight)", labelID(v, m.ID))
	}
	if lag := v.lag(m.ID); lag > v.MaxLearnerLag {
		return refuse(fix, ErrLearnerNotReady, "learner %s is %d entries behind the leader's commit index %d (match %d); it may be at most %d behind",
			labelID(v, m.ID), lag, v.Commit, v.Match[m.ID], v.MaxLearnerLag)
	}
	return judgement{}
}

// target finds the member a remove/update/promote refers to. A removed ID
// is "not found" too: that is what etcd clients get.
func target(v *View, id uint64) (*Member, judgement) {
	if v.Removed[id] {
		return nil, refuse("removed IDs never come back; add the member again to get a new ID", ErrIDNotFound,
			"member %s was removed from the cluster", IDString(id))
	}
	m := v.member(id)
	if m == nil {
		return nil, refuse("use an ID from `member list` (16 hex digits)", ErrIDNotFound, "no member has ID %s", IDString(id))
	}
	return m, judgement{}
}

func splitStarted(ms []*Member) (started, unstarted []*Member) {
	for _, m := range ms {
		if m.Started() {
			started = append(started, m)
		} else {
			unstarted = append(unstarted, m)
		}
	}
	return started, unstarted
}

func labels(ms []*Member) []string {
	out := make([]string, 0, len(ms))
	for _, m := range ms {
		out = append(out, label(m))
	}
	return out
}

func names(ms []*Member) string { return listOrNone(labels(ms)) }

// ids lists members by ID (for lists of unstarted members, which have no name).
func ids(ms []*Member) string {
	out := make([]string, 0, len(ms))
	for _, m := range ms {
		out = append(out, IDString(m.ID))
	}
	return listOrNone(out)
}

func isAre(n int) string {
	if n == 1 {
		return "is"
	}
	return "are"
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// normalizeURL makes equal URLs compare equal without DNS: scheme and host
// are case-insensitive and a trailing slash means nothing.
func normalizeURL(s string) string {
	s = strings.TrimSpace(s)
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || u.Opaque != "" {
		return strings.TrimSuffix(s, "/")
	}
	u.Scheme = strings.ToLower(u.Scheme)
	u.Host = strings.ToLower(u.Host)
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	return u.String()
}

// urlSet is the canonical key of a set of peer URLs.
func urlSet(urls []string) string {
	seen := map[string]bool{}
	var out []string
	for _, u := range urls {
		n := normalizeURL(u)
		if !seen[n] {
			seen[n] = true
			out = append(out, strconv.Quote(n)) // quoted: no two sets share a key
		}
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}
