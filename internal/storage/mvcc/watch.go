package mvcc

import (
	"bytes"
	"errors"
	"fmt"

	"go.etcd.io/etcd/api/v3/mvccpb"
)

// Watch errors, with etcd's texts: the API layer puts
// them into a watch response's cancel_reason, which clients show.
var (
	ErrEmptyWatcherRange = errors.New("mvcc: watcher range is empty")
	ErrWatcherIDInUse    = errors.New("mvcc: duplicate watch ID provided on the WatchStream")
	ErrWatcherNotExist   = errors.New("mvcc: watcher does not exist")
	ErrBadStartRev       = errors.New("mvcc: watch start revision must be >= 0")
)

// ProgressWatchID is the watch ID of a stream-wide progress response (etcd's
// InvalidWatchID): the client hands it to every watcher of the stream.
const ProgressWatchID int64 = -1

// WatchOptions are the per-watcher options of an etcd watch create request.
type WatchOptions struct {
	PrevKV         bool // attach the previous version of the key to each event
	FilterPut      bool // drop PUT events (etcd's NOPUT filter)
	FilterDelete   bool // drop DELETE events (etcd's NODELETE filter)
	ProgressNotify bool // periodic empty responses while there are no events
	Fragment       bool // the API layer may split a large response; stored for it
}

// WatchResponse is what a WatchStream delivers. Events hold whole revisions
// in revision order. An empty response with Revision set is a progress
// notification; CompactRevision != 0 means the watcher's start revision was
// compacted and the watcher is dead (cancel it to free its ID).
// Events are shared between watchers: do not modify them.
type WatchResponse struct {
	WatchID         int64
	Events          []*mvccpb.Event
	Revision        int64
	CompactRevision int64
}

// watcher is one watch on a stream. All fields after opts are guarded by
// hub.mu.
type watcher struct {
	id       int64
	key, end []byte
	startRev int64
	opts     WatchOptions
	ws       *WatchStream

	minRev  int64 // next revision this watcher has not been offered yet
	synced  bool  // in hub.synced (else in hub.unsynced, or removed)
	removed bool  // canceled, closed or compacted: in no hub set
	active  bool  // delivered events since the last progress tick
}

func (w *watcher) matches(key []byte) bool { return inRange(key, w.key, w.end) }

// send offers resp to the stream without blocking, after the watcher's
// filters; a response whose events were all filtered counts as delivered.
func (w *watcher) send(resp WatchResponse) bool {
	progress := len(resp.Events) == 0
	if w.opts.FilterPut || w.opts.FilterDelete {
		kept := make([]*mvccpb.Event, 0, len(resp.Events))
		for _, ev := range resp.Events {
			if (ev.Type == mvccpb.PUT && w.opts.FilterPut) || (ev.Type == mvccpb.DELETE && w.opts.FilterDelete) {
				continue
			}
			kept = append(kept, ev)
		}
		resp.Events = kept
	}
	if !progress && len(resp.Events) == 0 {
		return true
	}
	select {
	case w.ws.ch <- resp:
		if !progress {
			w.active = true
		}
		return true
	default:
		return false
	}
}

// chanBufLen bounds the responses buffered per stream; a watcher whose
// stream is full is moved to the unsynced set and served from history
// later, so a slow reader costs this buffer and nothing more.
const chanBufLen = 128

// WatchStream is a set of watchers sharing one response channel, like one
// etcd gRPC watch stream. Its methods are safe for concurrent use.
type WatchStream struct {
	h  *hub
	ch chan WatchResponse

	// guarded by h.mu
	watchers        map[int64]*watcher
	nextID          int64
	closed          bool
	pendingProgress bool // RequestProgress not answered yet
}

// NewWatchStream returns an empty stream. Close it when done.
func (s *Store) NewWatchStream() *WatchStream {
	ws := &WatchStream{h: s.hub, ch: make(chan WatchResponse, chanBufLen), watchers: map[int64]*watcher{}}
	s.hub.mu.Lock()
	if s.hub.closed {
		ws.closed = true
		close(ws.ch)
	} else {
		s.hub.streams[ws] = struct{}{}
	}
	s.hub.mu.Unlock()
	return ws
}

// Chan delivers the stream's responses; it is closed by Close (or when the
// store closes).
func (ws *WatchStream) Chan() <-chan WatchResponse { return ws.ch }

// Rev returns the store's current revision (for response headers).
func (ws *WatchStream) Rev() int64 {
	cur, _ := ws.h.s.Rev()
	return cur
}

// Watch adds a watcher on etcd's range [key, end) (end empty: the single
// key; end "\x00": every key >= key) from startRev (0: from the next
// revision; older revisions are replayed from history first). id 0 picks a
// free ID, counting from 0 as etcd does. It returns the watcher's ID.
func (ws *WatchStream) Watch(id int64, key, end []byte, startRev int64, opts WatchOptions) (int64, error) {
	if len(end) > 0 && !isGteEnd(end) && bytes.Compare(key, end) >= 0 {
		return -1, ErrEmptyWatcherRange
	}
	if startRev < 0 {
		return -1, fmt.Errorf("%w: got %d", ErrBadStartRev, startRev)
	}
	h := ws.h
	h.mu.Lock()
	defer h.mu.Unlock()
	if ws.closed || h.closed {
		return -1, ErrClosed
	}
	if id == 0 {
		// etcd's auto IDs count from 0 (a client cannot choose 0 itself).
		for ws.watchers[ws.nextID] != nil {
			ws.nextID++
		}
		id = ws.nextID
		ws.nextID++
	} else if ws.watchers[id] != nil {
		return -1, ErrWatcherIDInUse // unwrapped: clients show etcd's text
	}
	w := &watcher{id: id, key: bytes.Clone(key), end: bytes.Clone(end), startRev: startRev, opts: opts, ws: ws}
	ws.watchers[id] = w
	// Reading the revision under h.mu orders this against Commit's notify:
	// a batch published after this read is notified after we are synced.
	cur, _ := h.s.Rev()
	if startRev == 0 || startRev > cur {
		w.minRev = max(cur+1, startRev)
		h.addSynced(w)
	} else {
		w.minRev = startRev
		h.addUnsynced(w)
	}
	if opts.PrevKV {
		h.prevKV.Add(1)
	}
	h.watchers.Add(1)
	return id, nil
}

// Cancel removes a watcher. A compacted watcher stays registered (its ID in
// use) until it is canceled, as in etcd.
func (ws *WatchStream) Cancel(id int64) error {
	h := ws.h
	h.mu.Lock()
	defer h.mu.Unlock()
	w := ws.watchers[id]
	if w == nil {
		return fmt.Errorf("%w: watch ID %d", ErrWatcherNotExist, id)
	}
	delete(ws.watchers, id)
	h.remove(w)
	return nil
}

// RequestProgress asks for a stream-wide progress response (WatchID
// ProgressWatchID) carrying the revision every watcher of the stream has
// been brought up to. It is sent once all watchers are synced.
func (ws *WatchStream) RequestProgress() {
	h := ws.h
	h.mu.Lock()
	defer h.mu.Unlock()
	if ws.closed {
		return
	}
	ws.pendingProgress = true
	h.answerProgress(ws)
}

// Close cancels every watcher and closes Chan.
func (ws *WatchStream) Close() {
	h := ws.h
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closeStream(ws)
}
