package raftnode

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/cadrekv/cadre/internal/logutil"
)

// memLog is a Log that keeps records in memory and can be told to fail.
type memLog struct {
	mu      sync.Mutex
	saves   int
	failOn  func(ents []*raftpb.Entry) bool
	onSave  func(ents []*raftpb.Entry) // if set, called first by every Save
	entries []*raftpb.Entry
	snaps   []uint64
}

var errDisk = errors.New("injected fsync failure")

func (l *memLog) Save(hs *raftpb.HardState, ents []*raftpb.Entry) error {
	if l.onSave != nil {
		l.onSave(ents)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.saves++
	if l.failOn != nil && l.failOn(ents) {
		return errDisk
	}
	l.entries = append(l.entries, ents...)
	return nil
}

func (l *memLog) SaveSnapshot(meta *raftpb.SnapshotMetadata) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.snaps = append(l.snaps, meta.GetIndex())
	return nil
}

func (l *memLog) ReleaseTo(uint64) error { return nil }

type nopTransport struct{}

// recTransport records every message sent.
type recTransport struct {
	mu   sync.Mutex
	msgs []*raftpb.Message
}

func (r *recTransport) Send(msgs []*raftpb.Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, msgs...)
}
func (r *recTransport) SendSnapshot(*raftpb.Message, io.ReadCloser, int64) {}

func (r *recTransport) ofType(t raftpb.MessageType) []*raftpb.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*raftpb.Message
	for _, m := range r.msgs {
		if m.GetType() == t {
			out = append(out, m)
		}
	}
	return out
}

func (nopTransport) Send([]*raftpb.Message)                             {}
func (nopTransport) SendSnapshot(*raftpb.Message, io.ReadCloser, int64) {}

func startSingle(t *testing.T, log *memLog, snapCount uint64) *Node {
	t.Helper()
	n := Start(Config{
		ID:             1,
		TickInterval:   10 * time.Millisecond,
		ElectionTicks:  10,
		SnapshotCount:  snapCount,
		CatchUpEntries: 5,
		Storage:        raft.NewMemoryStorage(),
		Log:            log,
		Transport:      nopTransport{},
		Logger:         logutil.Discard(),
	}, []raft.Peer{{ID: 1}})
	t.Cleanup(n.Stop)
	return n
}

// applier applies batches like the server would: conf changes to raft,
// and reports the applied index. It records normal entries' data.
func applier(t *testing.T, n *Node) (got func() [][]byte) {
	var mu sync.Mutex
	var data [][]byte
	go func() {
		for {
			select {
			case ap := <-n.Applyc():
				var last uint64
				for _, e := range ap.Entries {
					last = e.GetIndex()
					switch e.GetType() {
					case raftpb.EntryConfChange:
						var cc raftpb.ConfChange
						if err := proto.Unmarshal(e.GetData(), &cc); err == nil {
							n.ApplyConfChange(&cc)
						}
					case raftpb.EntryNormal:
						if len(e.GetData()) > 0 {
							mu.Lock()
							data = append(data, e.GetData())
							mu.Unlock()
						}
					}
				}
				ap.Done()
				if last > 0 {
					n.Applied(last)
				}
			case <-n.Done():
				return
			}
		}
	}()
	return func() [][]byte {
		mu.Lock()
		defer mu.Unlock()
		return append([][]byte(nil), data...)
	}
}

func waitLeader(t *testing.T, n *Node) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !n.IsLeader() {
		if time.Now().After(deadline) {
			t.Fatal("no leader within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestProposeApplyAndReadBarrier(t *testing.T) {
	log := &memLog{}
	n := startSingle(t, log, 1000)
	got := applier(t, n)
	waitLeader(t, n)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n.Propose(ctx, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if err := n.ReadBarrier(ctx); err != nil {
		t.Fatalf("read barrier: %v", err)
	}
	// The barrier waited for the apply of everything committed before it.
	deadline := time.Now().Add(5 * time.Second)
	for len(got()) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if d := got(); len(d) != 1 || !bytes.Equal(d[0], []byte("hello")) {
		t.Fatalf("applied %q, want [hello]", d)
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	var persisted bool
	for _, e := range log.entries {
		persisted = persisted || bytes.Equal(e.GetData(), []byte("hello"))
	}
	if !persisted {
		t.Fatal("an applied entry was never written to the log")
	}
}

// A failed WAL write must stop the member before the entry it covers is
// applied (and so acknowledged).
func TestFailedSaveStopsWithoutApplying(t *testing.T) {
	log := &memLog{failOn: func(ents []*raftpb.Entry) bool {
		for _, e := range ents {
			if bytes.Equal(e.GetData(), []byte("doomed")) {
				return true
			}
		}
		return false
	}}
	n := startSingle(t, log, 1000)
	got := applier(t, n)
	waitLeader(t, n)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n.Propose(ctx, []byte("doomed")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-n.Errc():
		if !errors.Is(err, errDisk) {
			t.Fatalf("fatal error %v does not wrap the disk error", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a failed save did not stop the loop")
	}
	select {
	case <-n.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("loop still running after a fatal error")
	}
	for _, d := range got() {
		if bytes.Equal(d, []byte("doomed")) {
			t.Fatal("an entry whose save failed was applied")
		}
	}
}

func TestSnapshotEverySnapshotCount(t *testing.T) {
	log := &memLog{}
	n := startSingle(t, log, 10)
	applier(t, n)
	waitLeader(t, n)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	snaps := func() int {
		log.mu.Lock()
		defer log.mu.Unlock()
		return len(log.snaps)
	}
	// Two rounds of more than snapshot-count entries, each waited for: a
	// snapshot is taken per applied batch, so entries applied in one batch
	// can only ever make one.
	for round := 1; round <= 2; round++ {
		for i := 0; i < 12; i++ {
			if err := n.Propose(ctx, []byte{byte(round), byte(i)}); err != nil {
				t.Fatal(err)
			}
		}
		deadline := time.Now().Add(5 * time.Second)
		for snaps() < round {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: %d snapshots after %d entries with snapshot-count 10, want >= %d", round, snaps(), 12*round, round)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// startFollower starts member 1 of the voters {1, 2}, with no leader.
func startFollower(t *testing.T, log *memLog, tr Transport) *Node {
	t.Helper()
	n := Start(Config{
		ID:            1,
		TickInterval:  time.Hour, // no elections of its own
		ElectionTicks: 10,
		Storage:       raft.NewMemoryStorage(),
		Log:           log,
		Transport:     tr,
		Logger:        logutil.Discard(),
		SnapshotCount: 1000,
	}, []raft.Peer{{ID: 1}, {ID: 2}})
	t.Cleanup(n.Stop)
	return n
}

// Proposals that queue up while the loop persists are stepped together:
// a follower forwards them to its leader as one message, not one each.
func TestQueuedProposalsSteppedAsOneMessage(t *testing.T) {
	held, release := make(chan struct{}), make(chan struct{})
	var saves int
	log := &memLog{onSave: func([]*raftpb.Entry) {
		// Save 1 is the bootstrap; save 2 the heartbeat's new term: the
		// loop is held there while the proposals queue up.
		if saves++; saves == 2 {
			close(held)
			<-release
		}
	}}
	tr := &recTransport{}
	n := startFollower(t, log, tr)
	applier(t, n)
	var once sync.Once
	unhold := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unhold) // before n.Stop, which waits for the loop
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// A heartbeat from 2 at a new term makes 2 the leader.
	if err := n.Process(ctx, &raftpb.Message{Type: raftpb.MsgHeartbeat.Enum(), From: new(uint64(2)), To: new(uint64(1)), Term: new(uint64(2))}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-held:
	case <-ctx.Done():
		t.Fatal("the heartbeat's Ready was never saved")
	}
	const k = 20
	errs := make(chan error, k)
	for i := 0; i < k; i++ {
		go func() { errs <- n.Propose(ctx, []byte{byte(i)}) }()
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(n.propc) < k {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d proposals queued", len(n.propc), k)
		}
		time.Sleep(time.Millisecond)
	}
	unhold()
	for i := 0; i < k; i++ {
		if err := <-errs; err != nil {
			t.Fatalf("proposal %d: %v", i, err)
		}
	}
	props := tr.ofType(raftpb.MsgProp)
	entries := 0
	for _, m := range props {
		if m.GetTo() != 2 {
			t.Fatalf("proposal forwarded to %d, want the leader 2", m.GetTo())
		}
		entries += len(m.GetEntries())
	}
	if entries != k || len(props) != 1 {
		t.Fatalf("forwarded %d entries in %d messages, want %d in 1", entries, len(props), k)
	}
}

// Without a leader raft takes no proposal: every proposer of the batch is
// told at once, so it can propose again, instead of waiting out its
// timeout.
func TestProposalsWithoutLeaderAreDropped(t *testing.T) {
	n := startFollower(t, &memLog{}, nopTransport{})
	applier(t, n)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	errs := make(chan error, 10)
	for i := 0; i < 10; i++ {
		go func() { errs <- n.Propose(ctx, []byte{byte(i)}) }()
	}
	for i := 0; i < 10; i++ {
		if err := <-errs; !errors.Is(err, raft.ErrProposalDropped) {
			t.Fatalf("proposal without a leader: %v, want %v", err, raft.ErrProposalDropped)
		}
	}
	if ctx.Err() != nil {
		t.Fatal("the proposers waited out their timeout")
	}
}

// A single member commits its own entry when it has persisted it, inside
// the Ready loop: the entry must be applied without waiting for another
// event (before, it waited for the next tick: 100 ms per put).
func TestSingleMemberAppliesWithoutATick(t *testing.T) {
	tickc := make(chan time.Time)
	n := Start(Config{
		ID:            1,
		TickInterval:  time.Hour,
		ElectionTicks: 10,
		SnapshotCount: 1000,
		Storage:       raft.NewMemoryStorage(),
		Log:           &memLog{},
		Transport:     nopTransport{},
		Logger:        logutil.Discard(),
		tickc:         tickc,
	}, []raft.Peer{{ID: 1}})
	t.Cleanup(n.Stop)
	got := applier(t, n)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for i := 0; !n.IsLeader(); i++ {
		if i > 100 {
			t.Fatal("no leader after 100 ticks")
		}
		select {
		case tickc <- time.Now():
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
		time.Sleep(time.Millisecond)
	}
	// From here on no tick comes.
	for i := 0; i < 3; i++ {
		if err := n.Propose(ctx, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		for len(got()) < i+1 {
			if ctx.Err() != nil {
				t.Fatalf("entry %d not applied without a tick (%d applied)", i, len(got()))
			}
			time.Sleep(time.Millisecond)
		}
	}
}

// Between WAL snapshots, raft's in-memory log is trimmed every
// memTrimEvery applied entries, down to CatchUpEntries, with no WAL
// snapshot record (the WAL and a restart are unaffected).
func TestInMemoryLogTrimmedBetweenSnapshots(t *testing.T) {
	log := &memLog{}
	n := startSingle(t, log, 100000)
	applier(t, n)
	waitLeader(t, n)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const k = memTrimEvery + 200
	for i := 0; i < k; i++ {
		if err := n.Propose(ctx, []byte{byte(i), byte(i >> 8)}); err != nil {
			t.Fatal(err)
		}
	}
	for n.AppliedIndex() < k {
		if ctx.Err() != nil {
			t.Fatalf("applied %d of %d", n.AppliedIndex(), k)
		}
		time.Sleep(time.Millisecond)
	}
	for {
		first, _ := n.store.FirstIndex()
		last, _ := n.store.LastIndex()
		if first > memTrimEvery-n.cfg.CatchUpEntries {
			if last < uint64(k) {
				t.Fatalf("trimmed past the end: entries %d..%d, %d proposed", first, last, k)
			}
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("in-memory log still starts at %d after %d entries applied (trim every %d, keep %d)", first, n.AppliedIndex(), memTrimEvery, n.cfg.CatchUpEntries)
		}
		time.Sleep(time.Millisecond)
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	if len(log.snaps) != 0 {
		t.Fatalf("WAL snapshot records %v written below --snapshot-count", log.snaps)
	}
}
