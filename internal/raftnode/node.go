// Package raftnode wraps go.etcd.io/raft's Node: it owns the Ready loop
// (persist, send, hand committed entries to the applier, advance), ticks,
// proposals, batched ReadIndex and local raft snapshots. It knows nothing of
// keys or members: entries leave it as bytes.
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
	node  raft.Node
	store *raft.MemoryStorage

	applyc chan *Apply
	errc   chan error // fatal errors: the member must stop
	stopc  chan struct{}
	donec  chan struct{}
	stop   sync.Once

	lead         atomic.Uint64
	term         atomic.Uint64
	isLeader     atomic.Bool
	transferring atomic.Bool // a leadership transfer started here is under way
	applied      *wait.Index
	advanced     *wait.Index // committed index raft has been told is applied (Advance)

	snapMu    sync.Mutex
	confState *raftpb.ConfState
	snapIndex uint64
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
		snapc:      make(chan uint64, 1),
		readc:      make(chan struct{}, 1),
		readStates: make(chan raft.ReadState, 16),
		leaderc:    make(chan struct{}, 1),
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
	if len(peers) > 0 {
		n.node = raft.StartNode(rc, peers)
	} else {
		n.node = raft.RestartNode(rc)
	}
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

// Status returns raft's status (progress is filled on the leader).
func (n *Node) Status() raft.Status { return n.node.Status() }

// AppliedIndex returns the applied index.
func (n *Node) AppliedIndex() uint64 { return n.applied.Current() }

// Propose proposes data; it returns once raft accepted it for replication.
func (n *Node) Propose(ctx context.Context, data []byte) error {
	return n.node.Propose(ctx, data)
}

// ProposeConfChange proposes a configuration change.
func (n *Node) ProposeConfChange(ctx context.Context, cc raftpb.ConfChangeI) error {
	return n.node.ProposeConfChange(ctx, cc)
}

// Process steps a message received from a peer.
//
// A proposal forwarded by a follower is accepted by raft only while there
// is a leader: without one, Step would wait, and every message queued
// behind it on the same stream (the very votes that would elect a leader)
// would wait too. So forwarded proposals are dropped when there is no
// leader and never wait longer than a tick; their proposers retry.
func (n *Node) Process(ctx context.Context, m *raftpb.Message) error {
	if m.GetType() == raftpb.MsgProp {
		// Raft drops these without a word; say so to the proposer, which
		// then proposes again (nothing was appended, so nothing doubles).
		if n.Leader() == 0 || (n.IsLeader() && n.transferring.Load()) {
			if n.cfg.OnProposalDropped != nil {
				n.cfg.OnProposalDropped(m)
			}
			return raft.ErrProposalDropped
		}
		ctx, cancel := context.WithTimeout(ctx, n.cfg.TickInterval)
		defer cancel()
		// Step fails only if raft did not take the message (a busy loop
		// under load, or stopping): nothing was appended, so the proposer
		// may propose again.
		if err := n.node.Step(ctx, m); err != nil {
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
	return n.node.Step(ctx, m)
}

// ReportUnreachable tells raft a peer could not be reached.
func (n *Node) ReportUnreachable(id uint64) { n.node.ReportUnreachable(id) }

// ReportSnapshot tells raft how sending a snapshot ended.
func (n *Node) ReportSnapshot(id uint64, status raft.SnapshotStatus) {
	n.node.ReportSnapshot(id, status)
}

// ApplyConfChange applies a committed configuration change to raft; the
// applier calls it for every conf-change entry, in order.
func (n *Node) ApplyConfChange(cc raftpb.ConfChangeI) *raftpb.ConfState {
	cs := n.node.ApplyConfChange(cc)
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
	due := index-n.snapIndex >= n.cfg.SnapshotCount
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
	n.transferring.Store(true)
	defer n.transferring.Store(false)
	n.node.TransferLeadership(ctx, n.Leader(), target)
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
