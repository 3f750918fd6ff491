// Package raftnode runs go.etcd.io/raft's RawNode in one goroutine: it owns
// the Ready loop (persist, send, hand committed entries to the applier,
// advance), ticks, batched proposals, batched ReadIndex and local raft
// snapshots. It knows nothing of keys or members: entries leave it as bytes.
//
// Why RawNode and not raft.Node: raft.Node adds a goroutine hop to every
// proposal and every received message, and steps each proposal as its own
// message, so under load every put cost its own MsgApp to each follower and
// its own MsgAppResp back. Here proposals queued while the loop persists
// are stepped as one message: one MsgApp per follower per batch.
package raftnode

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/cadrekv/cadre/internal/wait"
)

// memTrimEvery is how many applied entries apart raft's in-memory log is
// trimmed between snapshots (trimMemory).
const memTrimEvery = 1000

// ErrStopped is returned once the node has stopped.
var ErrStopped = errors.New("raftnode: stopped")

// ErrLogBehind means the leader counts entries as held by this member that
// its log does not have: the data dir lost entries it acknowledged (it was
// restored from an older copy). Raft itself would panic on it.
var ErrLogBehind = errors.New("raftnode: this member's log lacks entries it acknowledged")

// Log is the durable raft log (the WAL).
type Log interface {
	Save(hs *raftpb.HardState, ents []*raftpb.Entry) error
	SaveSnapshot(meta *raftpb.SnapshotMetadata) error
	ReleaseTo(index uint64) error
}

// Transport sends messages to peers; it must never block.
type Transport interface {
	Send(msgs []*raftpb.Message)
	SendSnapshot(m *raftpb.Message, body io.ReadCloser, size int64)
}

// SnapshotSource opens a consistent copy of the state machine to stream
// to a follower that fell behind the log, with the raft index and term of
// the last entry applied in that copy.
type SnapshotSource interface {
	OpenSnapshot() (body io.ReadCloser, size int64, index, term uint64, err error)
}

// Metrics receives the loop's events; nil fields are skipped.
type Metrics struct {
	LeaderChanged  func(hasLeader, isLeader bool)
	Committed      func(n int)
	SnapshotSaved  func(index uint64)
	ProposalFailed func()
}

// Config configures a Node.
type Config struct {
	ID             uint64
	TickInterval   time.Duration // heartbeat interval
	ElectionTicks  int
	SnapshotCount  uint64 // take a local snapshot every this many applied entries
	CatchUpEntries uint64 // entries kept in memory after a snapshot for slow followers
	Storage        *raft.MemoryStorage
	Log            Log
	Transport      Transport
	Snapshots      SnapshotSource
	Applied        uint64 // index already applied to the state machine (restart)
	SnapshotIndex  uint64 // index of the latest local snapshot (restart)
	ConfState      *raftpb.ConfState
	Logger         *slog.Logger
	Metrics        Metrics
	// OnProposalDropped is told of a proposal forwarded by a peer that this
	// node drops without appending (no leader known, or leadership being
	// handed over): raft would drop it silently, and the proposer would
	// wait out its whole timeout. Optional.
	OnProposalDropped func(m *raftpb.Message)

	tickc <-chan time.Time // tests: ticks by hand instead of every TickInterval
}

// Apply is one batch of committed work for the applier, in log order. If
// Snapshot is set it must be installed before Entries are applied. The
// applier calls Done when finished.
type Apply struct {
	Snapshot *raftpb.Snapshot
	Entries  []*raftpb.Entry
	done     chan struct{}
}

// Done tells the raft loop the batch is applied.
func (a *Apply) Done() { close(a.done) }

// Node is a running raft member.
type Node struct {
	cfg   Config
	lg    *slog.Logger
	rn    *raft.RawNode // owned by the loop goroutine (run)
	store *raft.MemoryStorage

	propc chan *proposal       // local proposals, stepped in batches
	recvc chan *raftpb.Message // messages from peers
	ctlc  chan func()          // anything else that touches rn, run in the loop

	applyc chan *Apply
	errc   chan error // fatal errors: the member must stop
	stopc  chan struct{}
	donec  chan struct{}
	stop   sync.Once

	lead     atomic.Uint64
	term     atomic.Uint64
	isLeader atomic.Bool
	applied  *wait.Index
	advanced *wait.Index // committed index raft has been told is applied (Advance)

	snapMu    sync.Mutex
	confState *raftpb.ConfState
	snapIndex uint64
	memIndex  uint64      // latest in-memory snapshot (trimMemory), >= snapIndex
	snapc     chan uint64 // applied index at which a snapshot is due

	readMu      sync.Mutex
	readWaiters []chan readResult
	readc       chan struct{}
	readStates  chan raft.ReadState
	readSeq     atomic.Uint64
	// leaderc wakes a read waiting on a lost ReadIndex when the leader
	// changes: a request sent to the old leader is never answered, and the
	// new one can answer at once.
	leaderc chan struct{}
}

type readResult struct {
	index uint64
	err   error
}

// Start starts a new member (peers non-empty: a new cluster) or restarts
// one from its persisted state (peers empty).
func Start(cfg Config, peers []raft.Peer) *Node {
	n := &Node{
		cfg:        cfg,
		lg:         cfg.Logger,
		store:      cfg.Storage,
		applyc:     make(chan *Apply, 64),
		errc:       make(chan error, 1),
		stopc:      make(chan struct{}),
		donec:      make(chan struct{}),
		applied:    wait.NewIndex(cfg.Applied),
		advanced:   wait.NewIndex(0),
		confState:  cfg.ConfState,
		snapIndex:  cfg.SnapshotIndex,
		memIndex:   cfg.SnapshotIndex,
		snapc:      make(chan uint64, 1),
		readc:      make(chan struct{}, 1),
		readStates: make(chan raft.ReadState, 16),
		leaderc:    make(chan struct{}, 1),
		propc:      make(chan *proposal, 4096),
		recvc:      make(chan *raftpb.Message, 4096),
		ctlc:       make(chan func(), 256),
	}
	if n.confState == nil {
		n.confState = &raftpb.ConfState{}
	}
	rc := &raft.Config{
		ID:            cfg.ID,
		ElectionTick:  cfg.ElectionTicks,
		HeartbeatTick: 1,
		Storage:       cfg.Storage,
		// Applied is deliberately left 0: after a restart raft re-delivers
		// every committed entry after the snapshot, so configuration
		// changes reach raft's tracker again; the applier skips the backend
		// work for entries the backend already holds.
		MaxSizePerMsg:   1 << 20,
		MaxInflightMsgs: 4096 / 8,
		// Bound memory when a quorum is unreachable: proposals beyond this
		// are refused instead of piling up.
		MaxUncommittedEntriesSize: 1 << 30,
		CheckQuorum:               true,
		PreVote:                   true,
		// A leader that commits its own removal steps down at once
		// instead of leading a cluster it no longer belongs to.
		StepDownOnRemoval: true,
		Logger:            &raftLogger{lg: cfg.Logger},
	}
	rn, err := raft.NewRawNode(rc)
	if err != nil {
		// Only a malformed Config or unreadable storage gets here; both are
		// programming errors (raft.StartNode panics on them too).
		panic(fmt.Sprintf("raftnode: %v", err))
	}
	if len(peers) > 0 {
		if err := rn.Bootstrap(peers); err != nil {
			n.lg.Warn("raft bootstrap", "error", err.Error())
		}
	}
	n.rn = rn
	go n.run()
	go n.readLoop()
	return n
}

// Applyc delivers committed batches to the applier, in order.
func (n *Node) Applyc() <-chan *Apply { return n.applyc }

// Errc reports a fatal error (e.g. a failed WAL write): the member must stop.
func (n *Node) Errc() <-chan error { return n.errc }

// Done is closed when the loop has exited.
func (n *Node) Done() <-chan struct{} { return n.donec }

// Leader returns the current leader ID (0 if none).
func (n *Node) Leader() uint64 { return n.lead.Load() }

// IsLeader reports whether this member leads.
func (n *Node) IsLeader() bool { return n.isLeader.Load() }

// Term returns the current term.
func (n *Node) Term() uint64 { return n.term.Load() }

// Status returns raft's status (progress is filled on the leader); the zero
// Status once the node has stopped.
func (n *Node) Status() raft.Status {
	var st raft.Status
	_ = n.do(context.Background(), func() { st = n.rn.Status() })
	return st
}

// AppliedIndex returns the applied index.
func (n *Node) AppliedIndex() uint64 { return n.applied.Current() }

// ProposeConfChange proposes a configuration change. Like raft.Node's, it
// returns once raft has seen it, not whether raft took it: a change raft
// refuses is never applied, and its proposer times out.
func (n *Node) ProposeConfChange(ctx context.Context, cc raftpb.ConfChangeI) error {
	return n.do(ctx, func() { _ = n.rn.ProposeConfChange(cc) })
}

// Process steps a message received from a peer.
//
// A proposal forwarded by a follower that raft drops (no leader here, or
// leadership being handed over) would be dropped without a word; the loop
// tells its proposer instead (stepPeer), which proposes it again: nothing
// was appended, so nothing doubles.
func (n *Node) Process(ctx context.Context, m *raftpb.Message) error {
	if m.GetType() == raftpb.MsgProp {
		ctx, cancel := context.WithTimeout(ctx, n.cfg.TickInterval)
		defer cancel()
		// Queuing fails only if the loop is busy for a whole tick, or
		// stopping: the proposal was appended nowhere either.
		if err := n.enqueue(ctx, m); err != nil {
			if n.cfg.OnProposalDropped != nil {
				n.cfg.OnProposalDropped(m)
			}
			return err
		}
		return nil
	}
	if m.GetType() == raftpb.MsgHeartbeat && m.GetCommit() > 0 {
		// A heartbeat carries the commit index only up to what the leader
		// knows this member has acknowledged (raft: min(match, commit)).
		// A log ending before it has lost acknowledged entries.
		if last, err := n.store.LastIndex(); err == nil && m.GetCommit() > last {
			err := fmt.Errorf("%w: leader %016x counts entries up to %d as acknowledged by this member, but its log ends at %d", ErrLogBehind, m.GetFrom(), m.GetCommit(), last)
			n.fail(err)
			return err
		}
	}
	return n.enqueue(ctx, m)
}

// enqueue hands a peer's message to the loop.
func (n *Node) enqueue(ctx context.Context, m *raftpb.Message) error {
	select {
	case n.recvc <- m:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-n.donec:
		return ErrStopped
	}
}

// ReportUnreachable tells raft a peer could not be reached.
func (n *Node) ReportUnreachable(id uint64) {
	n.async(func() { n.rn.ReportUnreachable(id) })
}

// ReportSnapshot tells raft how sending a snapshot ended.
func (n *Node) ReportSnapshot(id uint64, status raft.SnapshotStatus) {
	n.async(func() { n.rn.ReportSnapshot(id, status) })
}

// ApplyConfChange applies a committed configuration change to raft; the
// applier calls it for every conf-change entry, in order.
func (n *Node) ApplyConfChange(cc raftpb.ConfChangeI) *raftpb.ConfState {
	var cs *raftpb.ConfState
	if err := n.do(context.Background(), func() { cs = n.rn.ApplyConfChange(cc) }); err != nil {
		return n.ConfState()
	}
	n.snapMu.Lock()
	n.confState = cs
	n.snapMu.Unlock()
	return cs
}

// ConfState returns a copy of raft's current configuration.
func (n *Node) ConfState() *raftpb.ConfState {
	n.snapMu.Lock()
	defer n.snapMu.Unlock()
	return proto.Clone(n.confState).(*raftpb.ConfState)
}

// Outgoing reports whether id is a voter of the outgoing half of a joint
// configuration: removed from the membership, but still voting until raft
// leaves the joint configuration.
func (n *Node) Outgoing(id uint64) bool {
	n.snapMu.Lock()
	defer n.snapMu.Unlock()
	return slices.Contains(n.confState.GetVotersOutgoing(), id)
}

// Applied records that everything up to index is applied (and committed to
// the backend), releasing readers and maybe scheduling a snapshot.
func (n *Node) Applied(index uint64) {
	n.applied.Trigger(index)
	n.snapMu.Lock()
	due := index-n.snapIndex >= n.cfg.SnapshotCount || index-n.memIndex >= memTrimEvery
	n.snapMu.Unlock()
	if due {
		select {
		case n.snapc <- index:
		default:
		}
	}
}

// SnapshotDue reports whether Applied(index) will schedule a local
// snapshot, which releases the log before index: the applier must have
// made the backend durable up to index first.
func (n *Node) SnapshotDue(index uint64) bool {
	n.snapMu.Lock()
	defer n.snapMu.Unlock()
	return index-n.snapIndex >= n.cfg.SnapshotCount
}

// WaitAdvanced returns a channel closed once raft itself counts index as
// applied. Raft refuses a new configuration change while an earlier one is
// not, so a caller of a conf change waits for this before replying.
func (n *Node) WaitAdvanced(index uint64) <-chan struct{} { return n.advanced.Wait(index) }

// WaitApplied returns a channel closed once index is applied.
func (n *Node) WaitApplied(index uint64) <-chan struct{} { return n.applied.Wait(index) }

// TransferLeadership asks raft to hand leadership to target and waits until
// it has moved or ctx ends.
func (n *Node) TransferLeadership(ctx context.Context, target uint64) error {
	if err := n.do(ctx, func() { n.rn.TransferLeader(target) }); err != nil {
		return err
	}
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for n.Leader() != target {
		select {
		case <-ctx.Done():
			return fmt.Errorf("leader transfer to %016x did not finish: %w", target, ctx.Err())
		case <-n.stopc:
			return ErrStopped
		case <-t.C:
		}
	}
	return nil
}

// do runs f in the loop goroutine, the only one that may touch rn, and
// waits for it. The loop runs such calls even while it waits on the applier
// (ApplyConfChange comes from there).
func (n *Node) do(ctx context.Context, f func()) error {
	done := make(chan struct{})
	select {
	case n.ctlc <- func() { f(); close(done) }:
	case <-ctx.Done():
		return ctx.Err()
	case <-n.donec:
		return ErrStopped
	}
	select {
	case <-done:
		return nil
	case <-n.donec:
		return ErrStopped
	}
}

// async runs f in the loop goroutine without waiting for it.
func (n *Node) async(f func()) {
	select {
	case n.ctlc <- f:
	case <-n.donec:
	}
}

// Stop stops the loop and raft; safe to call more than once.
func (n *Node) Stop() {
	n.stop.Do(func() { close(n.stopc) })
	<-n.donec
}

func (n *Node) fail(err error) {
	n.lg.Error("raft loop stopped on a fatal error; the member stops without acknowledging anything more", "error", err.Error())
	select {
	case n.errc <- err:
	default:
	}
}
