package mvcc

import (
	"math"
	"sort"

	"go.etcd.io/etcd/api/v3/mvccpb"
)

// syncRound serves up to maxWatchersPerSync unsynced watchers from the kv
// bucket, reading a bounded window of history without holding hub.mu (so
// Commit's notify never waits for a read). It returns how many watchers are
// still unsynced and whether the round changed anything.
func (h *hub) syncRound() (pending int, progressed bool) {
	type pick struct {
		w      *watcher
		minRev int64
	}
	h.mu.Lock()
	if len(h.unsynced) == 0 {
		h.mu.Unlock()
		return 0, false
	}
	picks := make([]pick, 0, min(len(h.unsynced), maxWatchersPerSync))
	from, wantPrev := int64(math.MaxInt64), false
	for w := range h.unsynced {
		picks = append(picks, pick{w, w.minRev})
		from = min(from, w.minRev)
		wantPrev = wantPrev || w.opts.PrevKV
		if len(picks) == maxWatchersPerSync {
			break
		}
	}
	h.mu.Unlock()

	hist, err := h.s.history(from, wantPrev)
	if err != nil {
		// The store is closing or swapping its file (ReplaceWith): retry.
		h.s.log.Debug("watch catch-up could not read history; will retry", "error", err)
		h.mu.Lock()
		defer h.mu.Unlock()
		return len(h.unsynced), false
	}

	h.mu.Lock()
	defer h.mu.Unlock()
	for _, p := range picks {
		w := p.w
		// Canceled, or moved by notify/resync while we read: next round.
		if w.removed || w.synced || w.minRev != p.minRev {
			continue
		}
		if w.minRev < hist.compacted {
			// As etcd: one response with the compacted revision, and the
			// watcher stops (it stays registered until canceled).
			if w.send(WatchResponse{WatchID: w.id, CompactRevision: hist.compacted}) {
				h.remove(w)
				progressed = true
			}
			continue
		}
		if w.minRev <= hist.end {
			evs := hist.eventsFor(w)
			if len(evs) > 0 && !w.send(WatchResponse{WatchID: w.id, Events: evs, Revision: hist.end}) {
				continue // stream still full
			}
			w.minRev = hist.end + 1
			progressed = true
		}
		// Everything after lastRev will be offered by notify.
		if w.minRev > h.lastRev {
			delete(h.unsynced, w)
			h.addSynced(w)
			progressed = true
		}
	}
	return len(h.unsynced), progressed
}

// history is a window of committed events, whole revisions only.
type history struct {
	events    []recEvent // revision order
	end       int64      // the window covers revisions up to end
	compacted int64
}

// eventsFor returns w's events in the window from w.minRev.
func (hs *history) eventsFor(w *watcher) []*mvccpb.Event {
	i := sort.Search(len(hs.events), func(i int) bool { return hs.events[i].ev.Kv.ModRevision >= w.minRev })
	var out []*mvccpb.Event
	for _, re := range hs.events[i:] {
		if !w.matches(re.ev.Kv.Key) {
			continue
		}
		if w.opts.PrevKV {
			out = append(out, re.withPrev)
		} else {
			out = append(out, re.ev)
		}
	}
	return out
}

// history reads events from revision from on, stopping at a revision
// boundary once maxEventsPerSync events or maxBytesPerSync bytes are read.
func (s *Store) history(from int64, wantPrev bool) (history, error) {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return history{}, ErrClosed
	}
	cur, tree, ov := s.rev, s.tree, s.ov
	tx, err := s.db.Begin(false)
	s.mu.RUnlock()
	if err != nil {
		return history{}, err
	}
	defer tx.Rollback()
	// The transaction may already hold a batch that is committed but not
	// yet published (revisions > cur, or a compaction): the compacted
	// revision is read from it so a compacted gap is never read as "no
	// events", and revisions > cur are left for the next round.
	hs := history{end: cur, compacted: int64(getUint(tx.Bucket(bucketMVCC), keyCompactedRev))}
	from = max(from, hs.compacted, 1)
	src := kvSource{kvb: tx.Bucket(bucketKV), ov: ov}
	size, last := 0, int64(0)
	probe := &keyIndex{}
	// add takes one write; it reports false once the window is full.
	add := func(r revision, tomb bool, v []byte) (bool, error) {
		if r.main != last && (len(hs.events) >= maxEventsPerSync || size >= maxBytesPerSync) {
			hs.end = last
			return false, nil
		}
		last = r.main
		kv, err := decodeKV(v, true)
		if err != nil {
			return false, err
		}
		size += len(kv.Key) + len(kv.Value)
		ev := &mvccpb.Event{Type: mvccpb.PUT, Kv: kv}
		if tomb {
			ev.Type = mvccpb.DELETE
		}
		re := recEvent{ev: ev, withPrev: ev}
		if wantPrev {
			if prev := prevKV(tree, probe, src, kv.Key, r, hs.compacted); prev != nil {
				re.withPrev = &mvccpb.Event{Type: ev.Type, Kv: kv, PrevKv: prev}
			}
		}
		hs.events = append(hs.events, re)
		return true, nil
	}
	// Committed revisions from bbolt, then the uncommitted ones from the
	// overlay (the transaction may hold some of those too: read them once).
	c := src.kvb.Cursor()
	for k, v := c.Seek(appendRevKey(nil, revision{main: from}, false)); k != nil; k, v = c.Next() {
		r, tomb, err := parseRevKey(k)
		if err != nil {
			return history{}, err
		}
		if r.main > cur || inOverlay(ov, r) {
			break
		}
		if more, err := add(r, tomb, v); err != nil || !more {
			return hs, err
		}
	}
	for _, p := range ov {
		if p.rev.main < from {
			continue
		}
		if p.rev.main > cur {
			break
		}
		if more, err := add(p.rev, p.tomb, p.val); err != nil || !more {
			return hs, err
		}
	}
	return hs, nil
}

// prevKV returns the version of key before the write at r, or nil if the
// key did not exist then or that version is compacted. Like etcd (a range
// at r.main-1), nothing is returned when r.main-1 is below compacted.
func prevKV(tree *index, probe *keyIndex, src kvSource, key []byte, r revision, compacted int64) *mvccpb.KeyValue {
	if r.main-1 < compacted {
		return nil
	}
	probe.key = key
	ki, ok := tree.Get(probe)
	probe.key = nil
	if !ok {
		return nil
	}
	i := sort.Search(len(ki.revs), func(i int) bool { return !ki.revs[i].less(r) })
	if i == 0 || ki.revs[i-1].tomb {
		return nil
	}
	kv, err := src.get(nil, ki.revs[i-1].revision, true)
	if err != nil {
		return nil
	}
	return kv
}
