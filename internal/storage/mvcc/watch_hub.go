package mvcc

import (
	"bytes"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
)

const (
	// defaultProgressInterval is etcd's default progress notify interval.
	defaultProgressInterval = 10 * time.Minute
	// maxWatchersPerSync and maxEventsPerSync bound one catch-up round, so
	// that slow watchers share the loop and a round never holds memory or a
	// read transaction for long.
	maxWatchersPerSync = 512
	maxEventsPerSync   = 1000
	maxBytesPerSync    = 4 << 20
	// unsyncedRetry is how soon a round is retried while watchers are behind
	// (their streams may have been full).
	unsyncedRetry = 10 * time.Millisecond
)

// hub tracks every watcher of a Store. Synced watchers are sent events by
// Commit (never blocking: a full stream moves the watcher to unsynced);
// unsynced watchers are caught up from the kv bucket by loop.
//
// Lock order: hub.mu before Store.mu. Commit takes hub.mu only after it has
// released Store.mu.
type hub struct {
	s *Store

	mu       sync.Mutex
	lastRev  int64 // every event <= lastRev was offered to the synced watchers
	synced   watcherSet
	unsynced map[*watcher]struct{}
	streams  map[*WatchStream]struct{}
	closed   bool

	// Read by Begin without mu to decide what a batch must record.
	watchers atomic.Int64 // registered watchers
	prevKV   atomic.Int64 // registered watchers with PrevKV

	progressEvery time.Duration
	kick          chan struct{}
	stop          chan struct{}
	done          chan struct{}
}

// watcherSet indexes synced watchers for event matching: single-key
// watchers by key, range watchers sorted by start key with the furthest
// end reached so far (byStart, reach), so an event looks only at the range
// watchers that start at or before its key and stops as soon as none of
// the earlier ones can reach it. Kubernetes-style prefix watchers on
// distinct prefixes cost a binary search per event instead of a scan.
type watcherSet struct {
	keys   map[string]map[*watcher]struct{}
	ranges map[*watcher]struct{}
	// byStart and reach are rebuilt on the first match after a change:
	// watchers change far less often than events arrive.
	byStart []*watcher
	reach   []rangeEnd // reach[i]: the furthest end among byStart[:i+1]
	stale   bool
}

// rangeEnd is a range's exclusive end; open means no end (from-key).
type rangeEnd struct {
	end  []byte
	open bool
}

func (e rangeEnd) after(key []byte) bool { return e.open || bytes.Compare(key, e.end) < 0 }

func newWatcherSet() watcherSet {
	return watcherSet{keys: map[string]map[*watcher]struct{}{}, ranges: map[*watcher]struct{}{}}
}

func (ws *watcherSet) add(w *watcher) {
	if len(w.end) > 0 {
		ws.ranges[w] = struct{}{}
		ws.stale = true
		return
	}
	m := ws.keys[string(w.key)]
	if m == nil {
		m = map[*watcher]struct{}{}
		ws.keys[string(w.key)] = m
	}
	m[w] = struct{}{}
}

func (ws *watcherSet) delete(w *watcher) {
	if len(w.end) > 0 {
		delete(ws.ranges, w)
		ws.stale = true
		return
	}
	if m := ws.keys[string(w.key)]; m != nil {
		delete(m, w)
		if len(m) == 0 {
			delete(ws.keys, string(w.key))
		}
	}
}

func (ws *watcherSet) each(fn func(*watcher)) {
	for _, m := range ws.keys {
		for w := range m {
			fn(w)
		}
	}
	for w := range ws.ranges {
		fn(w)
	}
}

// rebuild sorts the range watchers by start and computes their reach.
func (ws *watcherSet) rebuild() {
	ws.byStart = ws.byStart[:0]
	for w := range ws.ranges {
		ws.byStart = append(ws.byStart, w)
	}
	slices.SortFunc(ws.byStart, func(a, b *watcher) int { return bytes.Compare(a.key, b.key) })
	ws.reach = ws.reach[:0]
	var r rangeEnd
	for _, w := range ws.byStart {
		switch {
		case r.open:
		case isGteEnd(w.end):
			r = rangeEnd{open: true}
		case bytes.Compare(w.end, r.end) > 0:
			r = rangeEnd{end: w.end}
		}
		ws.reach = append(ws.reach, r)
	}
	ws.stale = false
}

// match calls fn for every watcher whose range holds key.
func (ws *watcherSet) match(key []byte, fn func(*watcher)) {
	for w := range ws.keys[string(key)] {
		fn(w)
	}
	if len(ws.ranges) == 0 {
		return
	}
	if ws.stale {
		ws.rebuild()
	}
	// The last range starting at or before key, then back while an
	// earlier range can still reach it.
	i := sort.Search(len(ws.byStart), func(i int) bool { return bytes.Compare(ws.byStart[i].key, key) > 0 }) - 1
	for ; i >= 0 && ws.reach[i].after(key); i-- {
		if w := ws.byStart[i]; w.matches(key) {
			fn(w)
		}
	}
}

func newHub(s *Store, progressEvery time.Duration, rev int64) *hub {
	if progressEvery <= 0 {
		progressEvery = defaultProgressInterval
	}
	h := &hub{
		s: s, lastRev: rev, synced: newWatcherSet(), unsynced: map[*watcher]struct{}{},
		streams: map[*WatchStream]struct{}{}, progressEvery: progressEvery,
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
	go h.loop()
	return h
}

// shutdown stops the loop and closes every stream.
func (h *hub) shutdown() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.closed = true
	for ws := range h.streams {
		h.closeStream(ws)
	}
	h.mu.Unlock()
	close(h.stop)
	<-h.done
}

func (h *hub) wake() {
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// The methods below require h.mu.

func (h *hub) addSynced(w *watcher) {
	w.synced = true
	h.synced.add(w)
}

func (h *hub) addUnsynced(w *watcher) {
	w.synced = false
	h.unsynced[w] = struct{}{}
	h.wake()
}

// unsync moves a synced watcher to unsynced. Everything up to lastRev was
// offered to it, so history is replayed only from there.
func (h *hub) unsync(w *watcher) {
	h.synced.delete(w)
	w.minRev = max(w.minRev, h.lastRev+1)
	h.addUnsynced(w)
}

func (h *hub) remove(w *watcher) {
	if w.removed {
		return
	}
	w.removed = true
	if w.synced {
		h.synced.delete(w)
	} else {
		delete(h.unsynced, w)
	}
	w.synced = false
	if w.opts.PrevKV {
		h.prevKV.Add(-1)
	}
	h.watchers.Add(-1)
}

func (h *hub) closeStream(ws *WatchStream) {
	if ws.closed {
		return
	}
	ws.closed = true
	for _, w := range ws.watchers {
		h.remove(w)
	}
	ws.watchers = nil
	delete(h.streams, ws)
	close(ws.ch)
}

// answerProgress sends ws's requested progress response if every watcher
// of ws is synced and past its start revision, as etcd does.
func (h *hub) answerProgress(ws *WatchStream) {
	if !ws.pendingProgress || ws.closed {
		return
	}
	for _, w := range ws.watchers {
		if !w.synced || h.lastRev < w.startRev {
			return
		}
	}
	if len(ws.watchers) == 0 {
		ws.pendingProgress = false // etcd answers nothing without watchers
		return
	}
	select {
	case ws.ch <- WatchResponse{WatchID: ProgressWatchID, Revision: h.lastRev}:
		ws.pendingProgress = false
	default: // stream full: retried by loop
	}
}

// batchEvents is what a committed Batch hands to notify.
type batchEvents struct {
	rev      int64 // revision after the batch
	events   []recEvent
	recorded bool // events were recorded (some watcher existed at Begin)
	withPrev bool // previous kvs were read
}

// recEvent is one write; withPrev is the same event with PrevKv set (ev
// itself when there was no previous version).
type recEvent struct {
	ev, withPrev *mvccpb.Event
}

// notify offers a committed batch's events to the synced watchers. It never
// blocks: a watcher whose stream is full is moved to unsynced.
func (h *hub) notify(be batchEvents) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if be.rev <= h.lastRev {
		return
	}
	// Cheap checks first: with many watchers and none of them new or
	// wanting prev_kv, this scan must not run on every commit.
	if (!be.recorded && h.watchers.Load() > 0) || (!be.withPrev && h.prevKV.Load() > 0) {
		// Watchers registered while the batch was open need what it did not
		// record: serve them from history.
		var behind []*watcher
		h.synced.each(func(w *watcher) {
			if w.minRev <= be.rev && (!be.recorded || w.opts.PrevKV) {
				behind = append(behind, w)
			}
		})
		for _, w := range behind {
			h.unsync(w)
		}
	}
	var perW map[*watcher][]*mvccpb.Event
	for _, re := range be.events {
		rev := re.ev.Kv.ModRevision
		h.synced.match(re.ev.Kv.Key, func(w *watcher) {
			if rev < w.minRev {
				return
			}
			if perW == nil {
				perW = map[*watcher][]*mvccpb.Event{}
			}
			ev := re.ev
			if w.opts.PrevKV {
				ev = re.withPrev
			}
			perW[w] = append(perW[w], ev)
		})
	}
	for w, evs := range perW {
		if w.send(WatchResponse{WatchID: w.id, Events: evs, Revision: be.rev}) {
			w.minRev = be.rev + 1
			continue
		}
		h.unsync(w) // minRev: the first revision of this batch it missed
	}
	h.lastRev = be.rev
}

// resync is called after the store's data was replaced (snapshot
// install): every watcher catches up from the new history.
func (h *hub) resync(rev int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var all []*watcher
	h.synced.each(func(w *watcher) { all = append(all, w) })
	for _, w := range all {
		h.unsync(w)
	}
	h.lastRev = rev
}

// loop catches up unsynced watchers and sends progress notifications.
func (h *hub) loop() {
	defer close(h.done)
	progress := time.NewTicker(h.progressEvery)
	defer progress.Stop()
	retry := time.NewTimer(time.Hour)
	defer retry.Stop()
	for {
		pending, progressed := h.syncRound()
		h.answerPendingProgress()
		var retryc <-chan time.Time
		if pending > 0 {
			if progressed {
				// More to do: go again, letting writers run first.
				select {
				case <-h.stop:
					return
				default:
				}
				continue
			}
			retry.Reset(unsyncedRetry)
			retryc = retry.C
		}
		select {
		case <-h.stop:
			return
		case <-h.kick:
		case <-retryc:
		case <-progress.C:
			h.progressTick()
		}
	}
}

func (h *hub) answerPendingProgress() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ws := range h.streams {
		h.answerProgress(ws)
	}
}

// progressTick sends each synced progress-notify watcher that got no
// events since the last tick an empty response with the revision it is
// synced to (etcd's progress notify).
func (h *hub) progressTick() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.synced.each(func(w *watcher) {
		if !w.opts.ProgressNotify {
			return
		}
		if !w.active && h.lastRev >= w.startRev {
			w.send(WatchResponse{WatchID: w.id, Revision: h.lastRev})
		}
		w.active = false
	})
}
