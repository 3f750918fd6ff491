package lease

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"
)

// clock is a fake, settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newTestLessor(c *clock) *Lessor {
	return New(Options{MinTTL: 5, Now: c.Now})
}

func mustGrant(t *testing.T, l *Lessor, id, ttl int64) {
	t.Helper()
	if _, err := l.Grant(id, ttl); err != nil {
		t.Fatalf("Grant(%d, %d): %v", id, ttl, err)
	}
}

func TestGrant(t *testing.T) {
	tests := []struct {
		name        string
		id, ttl     int64
		wantTTL     int64
		wantErr     error
		grantBefore bool
	}{
		{name: "plain", id: 1, ttl: 10, wantTTL: 10},
		{name: "raised to min TTL", id: 2, ttl: 2, wantTTL: 5},
		{name: "zero TTL raised", id: 3, ttl: 0, wantTTL: 5},
		{name: "negative TTL raised", id: 4, ttl: -7, wantTTL: 5},
		{name: "max TTL ok", id: 5, ttl: MaxTTL, wantTTL: MaxTTL},
		{name: "over max TTL", id: 6, ttl: MaxTTL + 1, wantErr: ErrLeaseTTLTooLarge},
		{name: "duplicate", id: 7, ttl: 10, grantBefore: true, wantErr: ErrLeaseExists},
		{name: "ID 0 refused", id: 0, ttl: 10, wantErr: ErrLeaseNotFound},
		{name: "negative ID ok", id: -9, ttl: 10, wantTTL: 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newTestLessor(newClock())
			if tt.grantBefore {
				mustGrant(t, l, tt.id, 30)
			}
			info, err := l.Grant(tt.id, tt.ttl)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Grant error = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr != nil {
				if _, ok := l.Lookup(tt.id); ok != tt.grantBefore {
					t.Fatalf("after a failed grant Lookup found=%v, want %v", ok, tt.grantBefore)
				}
				return
			}
			if info.ID != tt.id || info.GrantedTTL != tt.wantTTL {
				t.Fatalf("Grant = %+v, want ID %d TTL %d", info, tt.id, tt.wantTTL)
			}
			got, ok := l.Lookup(tt.id)
			if !ok || got.GrantedTTL != tt.wantTTL || got.RemainingTTL != tt.wantTTL {
				t.Fatalf("Lookup = %+v %v, want granted and remaining %d on a non-primary", got, ok, tt.wantTTL)
			}
		})
	}
}

func TestMinTTLBelowOne(t *testing.T) {
	l := New(Options{Now: newClock().Now})
	info, err := l.Grant(1, 0)
	if err != nil || info.GrantedTTL != 1 {
		t.Fatalf("Grant(1, 0) with no MinTTL = %+v, %v; want TTL 1", info, err)
	}
}

func TestAttachDetachRevoke(t *testing.T) {
	l := newTestLessor(newClock())
	mustGrant(t, l, 1, 10)
	mustGrant(t, l, 2, 10)
	for _, k := range []string{"c", "a", "b"} {
		if err := l.Attach(1, []byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Attach(1, []byte("a")); err != nil { // twice: no duplicate
		t.Fatal(err)
	}
	if err := l.Attach(3, []byte("x")); !errors.Is(err, ErrLeaseNotFound) {
		t.Fatalf("Attach to missing lease: %v, want ErrLeaseNotFound", err)
	}
	if err := l.Attach(2, []byte("z")); err != nil {
		t.Fatal(err)
	}
	// Moving "c" to lease 2 takes it away from lease 1.
	if err := l.Attach(2, []byte("c")); err != nil {
		t.Fatal(err)
	}
	if got := l.LeaseOf([]byte("c")); got != 2 {
		t.Fatalf("LeaseOf(c) = %d, want 2", got)
	}
	l.Detach(1, []byte("b"))
	l.Detach(1, []byte("z"))       // attached to 2: untouched
	l.Detach(1, []byte("missing")) // no-op
	l.Detach(9, []byte("a"))       // no such lease: no-op

	if want, got := keys("a"), l.Keys(1); !reflect.DeepEqual(got, want) {
		t.Fatalf("lease 1 keys = %q, want %q", got, want)
	}
	got, err := l.Revoke(2)
	if err != nil {
		t.Fatal(err)
	}
	if want := keys("c", "z"); !reflect.DeepEqual(got, want) {
		t.Fatalf("Revoke(2) keys = %q, want %q", got, want)
	}
	if _, ok := l.Lookup(2); ok {
		t.Fatal("lease 2 still found after Revoke")
	}
	if l.LeaseOf([]byte("z")) != 0 {
		t.Fatal("key z still attached after its lease was revoked")
	}
	if _, err := l.Revoke(2); !errors.Is(err, ErrLeaseNotFound) {
		t.Fatalf("second Revoke: %v, want ErrLeaseNotFound", err)
	}
	got, err = l.Revoke(1)
	if err != nil || !reflect.DeepEqual(got, keys("a")) {
		t.Fatalf("Revoke(1) = %q, %v; want [a]", got, err)
	}
	if ls := l.Leases(); len(ls) != 0 {
		t.Fatalf("Leases after revoking all = %+v", ls)
	}
}

func TestRenew(t *testing.T) {
	c := newClock()
	l := newTestLessor(c)
	mustGrant(t, l, 1, 10)
	if _, err := l.Renew(1); !errors.Is(err, ErrNotPrimary) {
		t.Fatalf("Renew on non-primary: %v, want ErrNotPrimary", err)
	}
	l.Promote(0)
	c.Advance(8 * time.Second)
	if info, _ := l.Lookup(1); info.RemainingTTL != 2 {
		t.Fatalf("remaining after 8 s of 10 = %d, want 2", info.RemainingTTL)
	}
	ttl, err := l.Renew(1)
	if err != nil || ttl != 10 {
		t.Fatalf("Renew = %d, %v; want 10", ttl, err)
	}
	c.Advance(9 * time.Second) // 17 s after grant: alive only thanks to renew
	if ids := l.Expired(0); len(ids) != 0 {
		t.Fatalf("Expired after renew = %v, want none", ids)
	}
	if info, _ := l.Lookup(1); info.RemainingTTL != 1 {
		t.Fatalf("remaining 9 s after renew = %d, want 1", info.RemainingTTL)
	}
	if _, err := l.Renew(2); !errors.Is(err, ErrLeaseNotFound) {
		t.Fatalf("Renew missing: %v, want ErrLeaseNotFound", err)
	}
	c.Advance(time.Second) // exactly at expiry
	if _, err := l.Renew(1); !errors.Is(err, ErrLeaseNotFound) {
		t.Fatalf("Renew of expired lease: %v, want ErrLeaseNotFound", err)
	}
	if info, _ := l.Lookup(1); info.RemainingTTL != -1 {
		t.Fatalf("remaining of expired lease = %d, want -1", info.RemainingTTL)
	}
	l.Demote()
	if _, err := l.Renew(1); !errors.Is(err, ErrNotPrimary) {
		t.Fatalf("Renew after Demote: %v, want ErrNotPrimary", err)
	}
}

func TestRemainingTTLTruncates(t *testing.T) {
	for _, tc := range []struct {
		after time.Duration
		want  int64
	}{
		{0, 10},
		{time.Millisecond, 9}, // etcd: int64(Remaining().Seconds())
		{999 * time.Millisecond, 9},
		{time.Second, 9},
		{9*time.Second + 500*time.Millisecond, 0},
		{10 * time.Second, -1},
		{time.Hour, -1},
	} {
		c := newClock()
		l := newTestLessor(c)
		l.Promote(0)
		mustGrant(t, l, 1, 10)
		c.Advance(tc.after)
		if info, _ := l.Lookup(1); info.RemainingTTL != tc.want {
			t.Errorf("remaining after %v = %d, want %d", tc.after, info.RemainingTTL, tc.want)
		}
	}
}

func TestExpiredOrderAndSuppression(t *testing.T) {
	c := newClock()
	l := New(Options{MinTTL: 1, Now: c.Now})
	if ids := l.Expired(0); ids != nil {
		t.Fatalf("Expired on non-primary = %v", ids)
	}
	l.Promote(0)
	// Grant in an order different from expiry order.
	mustGrant(t, l, 30, 3)
	mustGrant(t, l, 10, 1)
	mustGrant(t, l, 20, 2)
	mustGrant(t, l, 40, 100)
	mustGrant(t, l, 5, 3) // same expiry as 30: ID breaks the tie

	c.Advance(500 * time.Millisecond)
	if ids := l.Expired(0); len(ids) != 0 {
		t.Fatalf("Expired before any expiry = %v", ids)
	}
	c.Advance(3 * time.Second) // t=3.5: 10, 20, 5, 30 expired
	if got, want := l.Expired(2), []int64{10, 20}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Expired(2) = %v, want %v", got, want)
	}
	if got, want := l.Expired(0), []int64{5, 30}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Expired(0) = %v, want the rest %v", got, want)
	}
	if got := l.Expired(0); len(got) != 0 {
		t.Fatalf("Expired again at once = %v, want none (suppressed)", got)
	}
	// 10 is revoked meanwhile; the others are reported again 3 s later.
	if _, err := l.Revoke(10); err != nil {
		t.Fatal(err)
	}
	c.Advance(2900 * time.Millisecond)
	if got := l.Expired(0); len(got) != 0 {
		t.Fatalf("Expired within 3 s = %v, want none", got)
	}
	c.Advance(100 * time.Millisecond)
	if got, want := l.Expired(0), []int64{20, 5, 30}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Expired after 3 s = %v, want %v", got, want)
	}
	// A new leader reports afresh: suppression is the old leader's memory.
	l.Demote()
	if ids := l.Expired(0); ids != nil {
		t.Fatalf("Expired after Demote = %v", ids)
	}
}

func TestExpiredRetryConfigurable(t *testing.T) {
	c := newClock()
	l := New(Options{MinTTL: 1, Now: c.Now, ExpiredRetry: 10 * time.Second})
	l.Promote(0)
	mustGrant(t, l, 1, 1)
	c.Advance(time.Second)
	if got := l.Expired(0); len(got) != 1 {
		t.Fatalf("Expired = %v, want [1]", got)
	}
	c.Advance(9 * time.Second)
	if got := l.Expired(0); len(got) != 0 {
		t.Fatalf("Expired 9 s later with 10 s retry = %v, want none", got)
	}
	c.Advance(time.Second)
	if got := l.Expired(0); len(got) != 1 {
		t.Fatalf("Expired 10 s later = %v, want [1]", got)
	}
}

func TestPromote(t *testing.T) {
	tests := []struct {
		name       string
		granted    int64
		checkpoint int64 // 0: none
		extend     time.Duration
		wantLife   time.Duration // expires exactly this long after Promote
	}{
		{"no checkpoint: full TTL + extend", 60, 0, 2 * time.Second, 62 * time.Second},
		{"checkpoint used, not full TTL", 60, 7, 2 * time.Second, 9 * time.Second},
		{"checkpoint, no extend", 60, 7, 0, 7 * time.Second},
		{"checkpoint cleared by 0", 60, -1, time.Second, 61 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClock()
			l := newTestLessor(c)
			mustGrant(t, l, 1, tt.granted)
			switch {
			case tt.checkpoint > 0:
				if err := l.Checkpoint(1, tt.checkpoint); err != nil {
					t.Fatal(err)
				}
			case tt.checkpoint < 0: // set, then cleared
				_ = l.Checkpoint(1, 5)
				_ = l.Checkpoint(1, 0)
			}
			l.Promote(tt.extend)
			if !l.IsPrimary() {
				t.Fatal("not primary after Promote")
			}
			c.Advance(tt.wantLife - time.Millisecond)
			if ids := l.Expired(0); len(ids) != 0 {
				t.Fatalf("expired %v before %v", ids, tt.wantLife)
			}
			c.Advance(time.Millisecond)
			if ids := l.Expired(0); !reflect.DeepEqual(ids, []int64{1}) {
				t.Fatalf("Expired at %v = %v, want [1]", tt.wantLife, ids)
			}
		})
	}
}

// TestLeadershipMoveKeepsRemainingTTL is the scenario: a lease with
// 7 s left moves to a new leader through a checkpoint; it must then expire
// after about 7 s + extend: not its full TTL, and never before 7 s.
func TestLeadershipMoveKeepsRemainingTTL(t *testing.T) {
	const extend = time.Second
	c := newClock()
	old, nu := newTestLessor(c), newTestLessor(c) // two members, one clock
	old.Promote(extend)
	for _, l := range []*Lessor{old, nu} { // applied on both
		mustGrant(t, l, 1, 30)
	}
	c.Advance(23 * time.Second) // 7 s left on the old leader
	cps := old.Checkpoints(0)
	if want := []Checkpoint{{1, 7}}; !reflect.DeepEqual(cps, want) {
		t.Fatalf("old leader Checkpoints = %v, want %v", cps, want)
	}
	for _, l := range []*Lessor{old, nu} {
		if err := l.Checkpoint(1, cps[0].RemainingTTL); err != nil {
			t.Fatal(err)
		}
	}
	if info, _ := nu.Lookup(1); info.RemainingTTL != 7 {
		t.Fatalf("follower RemainingTTL = %d, want the checkpointed 7", info.RemainingTTL)
	}
	old.Demote()
	nu.Promote(extend)
	for elapsed := time.Duration(0); elapsed < 7*time.Second+extend; elapsed += 250 * time.Millisecond {
		if ids := nu.Expired(0); len(ids) != 0 {
			t.Fatalf("new leader expired the lease %v after the move, before 7 s + extend", elapsed)
		}
		c.Advance(250 * time.Millisecond)
	}
	if ids := nu.Expired(0); !reflect.DeepEqual(ids, []int64{1}) {
		t.Fatalf("new leader did not expire the lease at 7 s + extend (got %v); it must not get the full 30 s", ids)
	}
}

func TestCheckpoints(t *testing.T) {
	c := newClock()
	l := New(Options{MinTTL: 1, Now: c.Now})
	mustGrant(t, l, 1, 10)
	if cps := l.Checkpoints(0); cps != nil {
		t.Fatalf("Checkpoints on non-primary = %v", cps)
	}
	l.Promote(0)
	mustGrant(t, l, 2, 10)
	mustGrant(t, l, 3, 100)
	if cps := l.Checkpoints(0); len(cps) != 0 {
		t.Fatalf("Checkpoints with nothing changed = %v", cps)
	}
	c.Advance(500 * time.Millisecond) // remaining rounds up to the full TTL
	if cps := l.Checkpoints(0); len(cps) != 0 {
		t.Fatalf("Checkpoints after 0.5 s = %v, want none", cps)
	}
	c.Advance(600 * time.Millisecond) // 1.1 s: every lease moved by a second
	cps := l.Checkpoints(2)
	if want := []Checkpoint{{1, 9}, {2, 9}}; !reflect.DeepEqual(cps, want) {
		t.Fatalf("Checkpoints(2) = %v, want %v (earliest expiry first)", cps, want)
	}
	// Lease 3 was left out by the limit; it comes first next time, and the
	// two just returned are not returned again before they change.
	if cps := l.Checkpoints(0); !reflect.DeepEqual(cps, []Checkpoint{{3, 99}}) {
		t.Fatalf("Checkpoints = %v, want only [{3 99}]", cps)
	}
	for _, cp := range []Checkpoint{{1, 9}, {2, 9}, {3, 99}} {
		if err := l.Checkpoint(cp.ID, cp.RemainingTTL); err != nil {
			t.Fatal(err)
		}
	}
	if cps := l.Checkpoints(0); len(cps) != 0 {
		t.Fatalf("Checkpoints right after applying = %v, want none", cps)
	}
	// A renew sets lease 2 back to 10 s: the stale replicated 9 must be
	// replaced, or a new leader would cut the lease short.
	if _, err := l.Renew(2); err != nil {
		t.Fatal(err)
	}
	if cps := l.Checkpoints(0); !reflect.DeepEqual(cps, []Checkpoint{{2, 10}}) {
		t.Fatalf("Checkpoints after renew = %v, want [{2 10}]", cps)
	}
	if err := l.Checkpoint(9, 3); !errors.Is(err, ErrLeaseNotFound) {
		t.Fatalf("Checkpoint of missing lease: %v", err)
	}
	// Expired leases are not checkpointed.
	c.Advance(20 * time.Second)
	for _, cp := range l.Checkpoints(0) {
		if cp.ID != 3 {
			t.Fatalf("expired lease %d checkpointed", cp.ID)
		}
	}
}

func TestCheckpointDelta(t *testing.T) {
	c := newClock()
	l := New(Options{MinTTL: 1, Now: c.Now, CheckpointDelta: 5})
	l.Promote(0)
	mustGrant(t, l, 1, 60)
	c.Advance(4 * time.Second)
	if cps := l.Checkpoints(0); len(cps) != 0 {
		t.Fatalf("Checkpoints after 4 s with delta 5 = %v", cps)
	}
	c.Advance(time.Second)
	if cps := l.Checkpoints(0); !reflect.DeepEqual(cps, []Checkpoint{{1, 55}}) {
		t.Fatalf("Checkpoints after 5 s = %v, want [{1 55}]", cps)
	}
}

func TestRecover(t *testing.T) {
	c := newClock()
	l := newTestLessor(c)
	mustGrant(t, l, 99, 10)
	l.Promote(0)
	l.Recover([]Info{
		{ID: 2, GrantedTTL: 60, RemainingTTL: 12, Keys: keys("k2")},
		{ID: 1, GrantedTTL: 1, Keys: keys("b", "a")}, // below MinTTL: raised
	})
	if l.IsPrimary() {
		t.Fatal("primary after Recover")
	}
	want := []Info{
		{ID: 1, GrantedTTL: 5, RemainingTTL: 5, Keys: keys("a", "b")},
		{ID: 2, GrantedTTL: 60, RemainingTTL: 12, Keys: keys("k2")},
	}
	if got := l.Leases(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Leases after Recover = %+v, want %+v", got, want)
	}
	if l.LeaseOf([]byte("a")) != 1 {
		t.Fatal("key index not rebuilt")
	}
	l.Promote(0)
	c.Advance(12*time.Second - time.Millisecond)
	if ids := l.Expired(0); !reflect.DeepEqual(ids, []int64{1}) {
		t.Fatalf("Expired just before 12 s = %v, want [1]", ids)
	}
	c.Advance(time.Millisecond)
	if ids := l.Expired(0); !reflect.DeepEqual(ids, []int64{2}) {
		t.Fatalf("Expired 12 s after promote = %v, want [2] (recovered checkpoint)", ids)
	}
}

func TestDeterministicApply(t *testing.T) {
	// The same apply sequence on a primary and a follower yields the same
	// replicated state.
	c := newClock()
	a, b := newTestLessor(c), newTestLessor(c)
	a.Promote(time.Second)
	for _, l := range []*Lessor{a, b} {
		mustGrant(t, l, 1, 10)
		mustGrant(t, l, 2, 20)
		_ = l.Attach(1, []byte("x"))
		_ = l.Attach(2, []byte("y"))
		_ = l.Attach(2, []byte("x"))
		_ = l.Checkpoint(2, 15)
		_, _ = l.Revoke(1)
	}
	strip := func(in []Info) []Info {
		for i := range in {
			in[i].RemainingTTL = 0 // expiry is not replicated
		}
		return in
	}
	if ga, gb := strip(a.Leases()), strip(b.Leases()); !reflect.DeepEqual(ga, gb) {
		t.Fatalf("primary %+v != follower %+v", ga, gb)
	}
}

func TestConcurrentUse(t *testing.T) {
	c := newClock()
	l := newTestLessor(c)
	l.Promote(time.Second)
	const workers, perWorker = 8, 200
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				id := int64(w*perWorker + i + 1)
				if _, err := l.Grant(id, 10); err != nil {
					t.Errorf("Grant(%d): %v", id, err)
					return
				}
				key := []byte(fmt.Sprintf("k%d", id))
				if err := l.Attach(id, key); err != nil {
					t.Errorf("Attach: %v", err)
					return
				}
				_, _ = l.Renew(id)
				_ = l.Checkpoint(id, 5)
				_, _ = l.Lookup(id)
				if i%2 == 0 {
					if ks, err := l.Revoke(id); err != nil || len(ks) != 1 {
						t.Errorf("Revoke(%d) = %q, %v", id, ks, err)
						return
					}
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 200 {
			c.Advance(100 * time.Millisecond)
			l.Expired(10)
			l.Checkpoints(10)
			l.Leases()
			if !l.IsPrimary() {
				l.Promote(0)
			}
		}
	}()
	wg.Wait()
	if got, want := len(l.Leases()), workers*perWorker/2; got != want {
		t.Fatalf("%d leases left, want %d", got, want)
	}
}

func keys(ks ...string) [][]byte {
	out := make([][]byte, len(ks))
	for i, k := range ks {
		out[i] = []byte(k)
	}
	return out
}
