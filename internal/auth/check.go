package auth

import (
	"bytes"
	"slices"
	"sort"

	"go.etcd.io/etcd/api/v3/authpb"
)

// Access is what a request needs on a key range.
type Access int

const (
	Read Access = iota
	Write
)

// Range is a key range as the API gives it: End empty means the one key;
// End "\x00" means every key from Key on; Key "\x00" with End "\x00" means
// every key.
type Range struct {
	Key, End []byte
}

// interval turns a Range into [from, to) with to nil meaning no end.
func (r Range) interval() (from, to []byte) {
	switch {
	case len(r.End) == 0:
		return r.Key, append(slices.Clone(r.Key), 0)
	case len(r.End) == 1 && r.End[0] == 0:
		if len(r.Key) == 1 && r.Key[0] == 0 {
			return []byte{}, nil
		}
		return r.Key, nil
	}
	return r.Key, r.End
}

func permits(p *authpb.Permission, a Access) bool {
	switch p.PermType {
	case authpb.READWRITE:
		return true
	case authpb.READ:
		return a == Read
	case authpb.WRITE:
		return a == Write
	}
	return false
}

// IsRoot reports whether user has the root role.
func (s *Store) IsRoot(user string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	u, ok := s.users[user]
	return ok && slices.Contains(u.Roles, rootRole)
}

// Allowed reports whether user may access every key of every range: the
// union of its roles' matching permissions must cover each whole range
// (a prefix or from-key request is checked on its full extent, never on
// its first key alone). Root may do anything.
func (s *Store) Allowed(user string, a Access, ranges ...Range) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	u, ok := s.users[user]
	if !ok {
		return false
	}
	if slices.Contains(u.Roles, rootRole) {
		return true
	}
	var have []interval
	for _, rn := range u.Roles {
		role, ok := s.roles[rn]
		if !ok {
			continue
		}
		for _, p := range role.KeyPermission {
			if !permits(p, a) {
				continue
			}
			f, t := Range{Key: p.Key, End: p.RangeEnd}.interval()
			have = append(have, interval{f, t})
		}
	}
	sort.Slice(have, func(i, j int) bool { return bytes.Compare(have[i].from, have[j].from) < 0 })
	for _, r := range ranges {
		from, to := r.interval()
		if !covered(from, to, have) {
			return false
		}
	}
	return true
}

// interval is [from, to); to nil means no end.
type interval struct{ from, to []byte }

// covered reports whether [from, to) (to nil: unbounded) lies in the union
// of the sorted intervals.
func covered(from, to []byte, have []interval) bool {
	cur := from
	for _, iv := range have {
		if bytes.Compare(iv.from, cur) > 0 {
			break // a gap before this interval
		}
		if iv.to == nil {
			return true
		}
		if bytes.Compare(iv.to, cur) > 0 {
			cur = iv.to
		}
		if to != nil && bytes.Compare(cur, to) >= 0 {
			return true
		}
	}
	return to != nil && bytes.Compare(cur, to) >= 0
}

// HasExactGrant reports whether one of user's roles holds write (or
// readwrite) on exactly key: Cadre's membership grants, which a range
// permission that merely covers the key does not confer.
func (s *Store) HasExactGrant(user, key string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	u, ok := s.users[user]
	if !ok {
		return false
	}
	for _, rn := range u.Roles {
		role, ok := s.roles[rn]
		if !ok {
			continue
		}
		for _, p := range role.KeyPermission {
			if string(p.Key) == key && len(p.RangeEnd) == 0 && permits(p, Write) {
				return true
			}
		}
	}
	return false
}
