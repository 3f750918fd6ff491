package membership

// The structural rules of membership changes: what must hold of the
// replicated member set alone. They are written once, here. The leader's
// judge (Validate, Evaluate) checks them before proposing, with the rules
// that need progress and connectivity on top; the apply path (Cluster.Apply)
// checks them again on every member with the same inputs everywhere: the
// replicated member set and the limits carried in the entry itself, never a
// member's local flags.

// addRefusal says why an add breaks a structural rule; err is nil when it
// does not. owner and url name a member already using a peer URL.
type addRefusal struct {
	err      error
	owner    *Member
	url      string
	learners []*Member
}

// checkAdd checks adding member id with urls. maxLearners < 0 means no
// limit (an entry proposed before the limit was carried in it).
func checkAdd(members []*Member, removed map[uint64]bool, id uint64, urls []string, learner bool, maxLearners int) addRefusal {
	if removed[id] {
		return addRefusal{err: ErrIDRemoved}
	}
	for _, m := range members {
		if m.ID == id {
			return addRefusal{err: ErrIDExists}
		}
	}
	if o, u := peerURLOwner(members, urls, 0); o != nil {
		return addRefusal{err: ErrPeerURLExists, owner: o, url: u}
	}
	if learner && maxLearners >= 0 {
		var ls []*Member
		for _, m := range members {
			if m.IsLearner {
				ls = append(ls, m)
			}
		}
		if len(ls) >= maxLearners {
			return addRefusal{err: ErrTooManyLearners, learners: ls}
		}
	}
	return addRefusal{}
}

// checkPromote checks promoting m (nil: no such member).
func checkPromote(m *Member, removed bool) error {
	switch {
	case removed:
		return ErrIDRemoved
	case m == nil:
		return ErrIDNotFound
	case !m.IsLearner:
		return ErrNotLearner
	}
	return nil
}

// peerURLOwner returns the member other than self already using one of
// urls. URLs compare equal up to case of scheme and host and a trailing
// slash, without DNS.
func peerURLOwner(members []*Member, urls []string, self uint64) (*Member, string) {
	for _, m := range members {
		if m.ID == self {
			continue
		}
		for _, u := range m.PeerURLs {
			for _, n := range urls {
				if normalizeURL(u) == normalizeURL(n) {
					return m, n
				}
			}
		}
	}
	return nil, ""
}
