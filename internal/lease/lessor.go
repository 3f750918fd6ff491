// Package lease keeps Cadre's leases: their TTLs, attached keys, and, on
// the leader only, their expiry.
//
// The package does no I/O and starts no goroutines. Grants, revocations,
// checkpoints and key attachments arrive through the raft apply path on
// every member, in log order, and change the replicated state the same way
// everywhere. Expiry is not replicated: only the primary (the raft leader)
// tracks it, from its own clock, and reports expired leases so that the
// server proposes their revocation through raft. Remaining TTLs are
// checkpointed through raft so that a new primary continues a lease from
// where the old one left it instead of granting it a fresh full TTL.
//
// Semantics follow etcd's lessor (server/lease); see the method comments
// for where and why Cadre differs.
package lease

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/cadrekv/cadre/internal/storage/schema"
)

// MaxTTL is the largest TTL a lease can be granted, in seconds (as etcd).
const MaxTTL = schema.MaxLeaseTTL

var (
	ErrLeaseNotFound    = errors.New("lease not found")
	ErrLeaseExists      = errors.New("lease already exists")
	ErrNotPrimary       = errors.New("not the primary lessor (leader)")
	ErrLeaseTTLTooLarge = errors.New("too large lease TTL")
)

// Defaults for the optional Options fields.
const (
	DefaultExpiredRetry    = 3 * time.Second
	DefaultCheckpointDelta = 1
)

// Options configure a Lessor.
type Options struct {
	// MinTTL in seconds: granted TTLs are raised to at least this (etcd:
	// ceil(1.5 * election timeout)). Values below 1 mean 1.
	MinTTL int64
	// Now is the clock; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
	// ExpiredRetry is how long Expired stays silent about a lease it has
	// reported, so one expiry is not proposed every tick. 0 means
	// DefaultExpiredRetry.
	ExpiredRetry time.Duration
	// CheckpointDelta is how many seconds a lease's remaining TTL must move
	// away from its replicated checkpoint before Checkpoints reports it
	// again. Larger values mean fewer raft entries but up to that many
	// seconds of extra life after a leader change. 0 means
	// DefaultCheckpointDelta.
	CheckpointDelta int64
}

// Info describes one lease.
type Info struct {
	ID         int64
	GrantedTTL int64
	// RemainingTTL in seconds. On the primary: the time to expiry truncated
	// to whole seconds, as etcd's LeaseTimeToLive (so 9 just after a grant
	// of 10), and -1 once expired but not yet revoked. On other members
	// expiry is unknown: the checkpointed remaining TTL if any, else the
	// granted TTL; clients must be answered by the leader (etcd forwards).
	RemainingTTL int64
	Keys         [][]byte // sorted; Lookup leaves it empty (use Keys)
}

// Checkpoint is a lease's remaining TTL to replicate.
type Checkpoint struct {
	ID           int64
	RemainingTTL int64
}

type lease struct {
	id      int64
	granted int64
	// checkpoint is the replicated remaining TTL (0: none, use granted).
	checkpoint int64
	keys       map[string]struct{}

	// Primary-only state, reset by Promote and Demote.
	expiry     time.Time // zero when not primary
	reportedAt time.Time // last time Expired returned this lease
	cpSent     int64     // remaining TTL last returned by Checkpoints, not yet applied
	cpSentAt   time.Time
}

// Lessor holds all leases. It is safe for concurrent use.
type Lessor struct {
	mu      sync.Mutex
	leases  map[int64]*lease
	keys    map[string]int64 // key -> lease it is attached to
	primary bool

	minTTL          int64
	now             func() time.Time
	lg              *slog.Logger
	expiredRetry    time.Duration
	checkpointDelta int64
}

// New returns an empty, non-primary lessor.
func New(opts Options) *Lessor {
	l := &Lessor{
		leases:          make(map[int64]*lease),
		keys:            make(map[string]int64),
		minTTL:          max(opts.MinTTL, 1),
		now:             opts.Now,
		lg:              opts.Logger,
		expiredRetry:    opts.ExpiredRetry,
		checkpointDelta: opts.CheckpointDelta,
	}
	if l.now == nil {
		l.now = time.Now
	}
	if l.lg == nil {
		l.lg = slog.New(slog.DiscardHandler)
	}
	if l.expiredRetry <= 0 {
		l.expiredRetry = DefaultExpiredRetry
	}
	if l.checkpointDelta <= 0 {
		l.checkpointDelta = DefaultCheckpointDelta
	}
	return l
}

// ---- apply path: deterministic, called in raft log order on every member ----

// Grant creates lease id with ttl seconds, raised to the minimum TTL. On the
// primary the lease expires ttl seconds from now; elsewhere expiry is not
// tracked.
func (l *Lessor) Grant(id, ttl int64) (Info, error) {
	if id == 0 {
		// etcd's answer too: 0 means "no lease"; the server picks an ID
		// before proposing a grant.
		return Info{}, fmt.Errorf("lease ID 0 is reserved for \"no lease\"; pick a non-zero ID: %w", ErrLeaseNotFound)
	}
	if ttl > MaxTTL {
		return Info{}, fmt.Errorf("TTL %d s exceeds the maximum of %d s; ask for a smaller TTL: %w", ttl, int64(MaxTTL), ErrLeaseTTLTooLarge)
	}
	ttl = max(ttl, l.minTTL)

	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.leases[id]; ok {
		return Info{}, fmt.Errorf("lease %016x: %w", uint64(id), ErrLeaseExists)
	}
	ls := &lease{id: id, granted: ttl, keys: make(map[string]struct{})}
	if l.primary {
		ls.expiry = l.now().Add(seconds(ttl))
	}
	l.leases[id] = ls
	return l.infoLocked(ls, l.now(), false), nil
}

// Revoke forgets lease id and returns its attached keys, sorted so that
// every member deletes them in the same order.
func (l *Lessor) Revoke(id int64) ([][]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ls, ok := l.leases[id]
	if !ok {
		return nil, fmt.Errorf("lease %016x: %w", uint64(id), ErrLeaseNotFound)
	}
	delete(l.leases, id)
	for k := range ls.keys {
		delete(l.keys, k)
	}
	return sortedKeys(ls.keys), nil
}

// Checkpoint records lease id's replicated remaining TTL; 0 or less clears
// it. It does not move the primary's expiry: a checkpoint only matters to
// the next primary (Promote), as in etcd.
func (l *Lessor) Checkpoint(id int64, remaining int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	ls, ok := l.leases[id]
	if !ok {
		return fmt.Errorf("lease %016x: %w", uint64(id), ErrLeaseNotFound)
	}
	ls.checkpoint = max(remaining, 0)
	ls.cpSent = 0 // applied: the replicated value is the reference again
	return nil
}

// Attach attaches key to lease id. A key attached to another lease is moved,
// so that a revoke of the old lease cannot delete a key it no longer owns.
func (l *Lessor) Attach(id int64, key []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	ls, ok := l.leases[id]
	if !ok {
		return fmt.Errorf("attaching key to lease %016x: %w", uint64(id), ErrLeaseNotFound)
	}
	k := string(key)
	if old, ok := l.keys[k]; ok && old != id {
		if o := l.leases[old]; o != nil {
			delete(o.keys, k)
		}
	}
	ls.keys[k] = struct{}{}
	l.keys[k] = id
	return nil
}

// Detach detaches key from lease id; it does nothing if the key is not
// attached to that lease.
func (l *Lessor) Detach(id int64, key []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := string(key)
	if l.keys[k] != id {
		return
	}
	delete(l.keys, k)
	if ls := l.leases[id]; ls != nil {
		delete(ls.keys, k)
	}
}

// LeaseOf returns the lease key is attached to, or 0.
func (l *Lessor) LeaseOf(key []byte) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.keys[string(key)]
}

// Lookup describes lease id, without its keys (Keys lists them).
func (l *Lessor) Lookup(id int64) (Info, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ls, ok := l.leases[id]
	if !ok {
		return Info{}, false
	}
	return l.infoLocked(ls, l.now(), false), true
}

// Exists reports whether lease id exists (cheap: no key list is built).
func (l *Lessor) Exists(id int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.leases[id]
	return ok
}

// Granted returns lease id's granted TTL.
func (l *Lessor) Granted(id int64) (int64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ls, ok := l.leases[id]
	if !ok {
		return 0, false
	}
	return ls.granted, true
}

// Keys returns the keys attached to lease id, sorted.
func (l *Lessor) Keys(id int64) [][]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ls, ok := l.leases[id]; ok {
		return sortedKeys(ls.keys)
	}
	return nil
}

// IDs lists the lease IDs, sorted.
func (l *Lessor) IDs() []int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]int64, 0, len(l.leases))
	for id := range l.leases {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// Leases describes every lease, sorted by ID.
func (l *Lessor) Leases() []Info {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	out := make([]Info, 0, len(l.leases))
	for _, ls := range l.leases {
		out = append(out, l.infoLocked(ls, now, true))
	}
	slices.SortFunc(out, func(a, b Info) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// Recover replaces all state, keys included (after a restart or a snapshot
// install). The lessor is left non-primary; the caller promotes it again if
// this member leads. Granted TTLs below the minimum are raised, as etcd.
func (l *Lessor) Recover(leases []Info) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.leases = make(map[int64]*lease, len(leases))
	l.keys = make(map[string]int64)
	l.primary = false
	for _, in := range leases {
		ls := &lease{
			id:         in.ID,
			granted:    max(in.GrantedTTL, l.minTTL),
			checkpoint: max(in.RemainingTTL, 0),
			keys:       make(map[string]struct{}, len(in.Keys)),
		}
		l.leases[in.ID] = ls
		for _, k := range in.Keys {
			ls.keys[string(k)] = struct{}{}
			l.keys[string(k)] = in.ID
		}
	}
}

// ---- leader only ----

// Promote makes this lessor the primary. Every lease expires after its
// checkpointed remaining TTL (or its granted TTL if it has none) plus
// extend, the election timeout, so that a lease is not lost merely because
// leadership moved while its holder was renewing it.
func (l *Lessor) Promote(extend time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.primary = true
	for _, ls := range l.leases {
		rem := ls.granted
		if ls.checkpoint > 0 {
			rem = ls.checkpoint
		}
		ls.expiry = now.Add(seconds(rem) + extend)
		ls.reportedAt, ls.cpSent, ls.cpSentAt = time.Time{}, 0, time.Time{}
	}
	l.lg.Info("lessor promoted: tracking lease expiry", "leases", len(l.leases), "extend", extend.String())
}

// Demote stops tracking expiry.
func (l *Lessor) Demote() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.primary {
		return
	}
	l.primary = false
	for _, ls := range l.leases {
		ls.expiry, ls.reportedAt, ls.cpSent, ls.cpSentAt = time.Time{}, time.Time{}, 0, time.Time{}
	}
	l.lg.Info("lessor demoted: no longer tracking lease expiry", "leases", len(l.leases))
}

// IsPrimary reports whether this lessor tracks expiry.
func (l *Lessor) IsPrimary() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.primary
}

// Renew is one keep-alive: the lease expires its granted TTL from now. It
// returns the granted TTL. A lease past its expiry cannot be renewed: its
// revoke is on its way (etcd waits for it and then answers not-found).
//
// Unlike etcd, Renew does not clear the checkpoint locally: the replicated
// checkpoint still holds the old value on the other members, and leaving
// it in place here makes Checkpoints report the renewed remaining TTL on
// its next call, so that a new leader does not expire the lease early.
func (l *Lessor) Renew(id int64) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.primary {
		return -1, ErrNotPrimary
	}
	ls, ok := l.leases[id]
	if !ok {
		return -1, fmt.Errorf("lease %016x: %w", uint64(id), ErrLeaseNotFound)
	}
	now := l.now()
	if !now.Before(ls.expiry) {
		return -1, fmt.Errorf("lease %016x expired and is being revoked: %w", uint64(id), ErrLeaseNotFound)
	}
	ls.expiry = now.Add(seconds(ls.granted))
	ls.reportedAt = time.Time{}
	return ls.granted, nil
}

// Expired returns up to limit (all if limit <= 0) IDs of leases past their
// expiry, the earliest expiry first. A lease stays expired until Revoke, but
// once returned it is not returned again for the ExpiredRetry interval, so
// the caller proposes its revoke once per interval, not once per tick.
// Returns nil when not primary.
func (l *Lessor) Expired(limit int) []int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.primary {
		return nil
	}
	now := l.now()
	var due []*lease
	for _, ls := range l.leases {
		if now.Before(ls.expiry) {
			continue
		}
		if !ls.reportedAt.IsZero() && now.Before(ls.reportedAt.Add(l.expiredRetry)) {
			continue
		}
		due = append(due, ls)
	}
	slices.SortFunc(due, func(a, b *lease) int {
		return cmp.Or(a.expiry.Compare(b.expiry), cmp.Compare(a.id, b.id))
	})
	if limit > 0 && len(due) > limit {
		due = due[:limit]
	}
	ids := make([]int64, len(due))
	for i, ls := range due {
		ls.reportedAt = now
		ids[i] = ls.id
	}
	return ids
}

// Checkpoints returns up to limit (all if limit <= 0) remaining TTLs worth
// replicating now: live leases whose remaining TTL (rounded up, so a new
// leader never expires a lease early) is at least CheckpointDelta seconds
// away from the value last replicated or last returned. Leases that were
// checkpointed longest ago come first, so a limit cannot starve any lease.
// Returns nil when not primary.
func (l *Lessor) Checkpoints(limit int) []Checkpoint {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.primary {
		return nil
	}
	now := l.now()
	type cand struct {
		ls  *lease
		rem int64
	}
	var cs []cand
	for _, ls := range l.leases {
		if !now.Before(ls.expiry) {
			continue // expired: its revoke matters, not its TTL
		}
		rem := int64(math.Ceil(ls.expiry.Sub(now).Seconds()))
		ref := ls.granted
		switch {
		case ls.cpSent > 0:
			ref = ls.cpSent
		case ls.checkpoint > 0:
			ref = ls.checkpoint
		}
		if d := rem - ref; d >= l.checkpointDelta || -d >= l.checkpointDelta {
			cs = append(cs, cand{ls, rem})
		}
	}
	slices.SortFunc(cs, func(a, b cand) int {
		return cmp.Or(a.ls.cpSentAt.Compare(b.ls.cpSentAt), a.ls.expiry.Compare(b.ls.expiry), cmp.Compare(a.ls.id, b.ls.id))
	})
	if limit > 0 && len(cs) > limit {
		cs = cs[:limit]
	}
	out := make([]Checkpoint, len(cs))
	for i, c := range cs {
		c.ls.cpSent, c.ls.cpSentAt = c.rem, now
		out[i] = Checkpoint{ID: c.ls.id, RemainingTTL: c.rem}
	}
	return out
}

// ---- helpers ----

// infoLocked describes ls; sorting its keys costs O(k log k), so only
// callers that want them (withKeys) pay it.
func (l *Lessor) infoLocked(ls *lease, now time.Time, withKeys bool) Info {
	in := Info{ID: ls.id, GrantedTTL: ls.granted}
	if withKeys {
		in.Keys = sortedKeys(ls.keys)
	}
	switch {
	case l.primary && !now.Before(ls.expiry):
		in.RemainingTTL = -1
	case l.primary:
		in.RemainingTTL = int64(ls.expiry.Sub(now) / time.Second)
	case ls.checkpoint > 0:
		in.RemainingTTL = ls.checkpoint
	default:
		in.RemainingTTL = ls.granted
	}
	return in
}

func sortedKeys(m map[string]struct{}) [][]byte {
	if len(m) == 0 {
		return nil
	}
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	out := make([][]byte, len(ks))
	for i, k := range ks {
		out[i] = []byte(k)
	}
	return out
}

// seconds converts a TTL to a Duration. TTLs are capped at MaxTTL (about
// 285 years, within a Duration) so that a bad value given to Recover cannot
// overflow.
func seconds(s int64) time.Duration {
	return time.Duration(min(s, MaxTTL)) * time.Second
}
