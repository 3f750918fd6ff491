package raftnode

import (
	"fmt"
	"runtime"
	"time"

	"google.golang.org/protobuf/proto"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// run is the Ready loop. Its order is the one go.etcd.io/raft documents,
// and every step's error stops the member rather than acknowledge anything
// that is not durable. It is the only goroutine that touches rn.
func (n *Node) run() {
	defer close(n.donec)
	tickc := n.cfg.tickc
	if tickc == nil {
		ticker := time.NewTicker(n.cfg.TickInterval)
		defer ticker.Stop()
		tickc = ticker.C
	}
	// Fast-forward to one tick before an election: a fresh or restarted
	// member need not wait a whole election timeout before it can lead.
	// PreVote keeps this from disturbing a live leader, whose followers
	// refuse pre-votes while they hear from it.
	for i := 0; i < n.cfg.ElectionTicks-1; i++ {
		n.rn.Tick()
	}

	for {
		// Advance itself can make more work ready (a single member commits
		// its own entries once they are persisted), so drain it all before
		// waiting for the next event.
		for n.rn.HasReady() {
			if err := n.handleReady(n.rn.Ready()); err != nil {
				n.fail(err)
				return
			}
			select {
			case <-n.stopc:
				return
			default:
			}
		}
		select {
		case <-tickc:
			n.rn.Tick()
		case p := <-n.propc:
			n.stepProposals(p)
		case m := <-n.recvc:
			n.stepPeer(m)
		case f := <-n.ctlc:
			f()
		case index := <-n.snapc:
			if err := n.snapshot(index); err != nil {
				n.fail(err)
				return
			}
		case <-n.stopc:
			return
		}
		// Take in what else is queued, so one Ready (one fsync, one
		// message per peer) covers all of it. Bounded: a flood of messages
		// cannot keep the loop from persisting what it has.
	drain:
		for i := 0; i < 256; i++ {
			select {
			case m := <-n.recvc:
				n.stepPeer(m)
			case p := <-n.propc:
				n.stepProposals(p)
			default:
				break drain
			}
		}
	}
}

// waitFor blocks until c is closed (or the node stops), running control
// calls meanwhile: the applier it waits on may need one (ApplyConfChange).
func (n *Node) waitFor(c <-chan struct{}) bool {
	for {
		select {
		case <-c:
			return true
		case f := <-n.ctlc:
			f()
		case <-n.stopc:
			return false
		}
	}
}

func (n *Node) handleReady(rd raft.Ready) error {
	if rd.SoftState != nil {
		n.updateLeader(rd.SoftState)
	}
	if rd.HardState != nil && rd.HardState.GetTerm() > 0 {
		n.term.Store(rd.HardState.GetTerm())
	}
	for _, rs := range rd.ReadStates {
		select {
		case n.readStates <- rs:
		default:
			// The reader gave up or is slow; it retries with a new request.
		}
	}

	// A leader may send its appends before persisting them (raft thesis
	// 10.2.1): a quorum still needs its own fsync to commit. Followers must
	// persist first because their messages acknowledge durable entries.
	isLeader := n.isLeader.Load()
	if isLeader {
		n.send(rd.Messages)
	}

	// 1. A snapshot from the leader is recorded before the entries that
	// follow it, so a crash never leaves entries without their base.
	if !raft.IsEmptySnap(rd.Snapshot) {
		if err := n.cfg.Log.SaveSnapshot(rd.Snapshot.GetMetadata()); err != nil {
			return fmt.Errorf("saving snapshot record at index %d: %w", rd.Snapshot.GetMetadata().GetIndex(), err)
		}
	}
	// 2. HardState and entries: one write, one fsync.
	if err := n.cfg.Log.Save(rd.HardState, rd.Entries); err != nil {
		return fmt.Errorf("saving raft hard state and %d entries: %w", len(rd.Entries), err)
	}
	if !raft.IsEmptySnap(rd.Snapshot) {
		if err := n.store.ApplySnapshot(rd.Snapshot); err != nil {
			return fmt.Errorf("loading received snapshot into raft storage: %w", err)
		}
		n.snapMu.Lock()
		n.snapIndex = rd.Snapshot.GetMetadata().GetIndex()
		n.memIndex = n.snapIndex
		n.confState = rd.Snapshot.GetMetadata().GetConfState()
		n.snapMu.Unlock()
	}
	if rd.HardState != nil && !raft.IsEmptyHardState(rd.HardState) {
		if err := n.store.SetHardState(rd.HardState); err != nil {
			return fmt.Errorf("updating raft hard state: %w", err)
		}
	}
	if err := n.store.Append(rd.Entries); err != nil {
		return fmt.Errorf("appending %d entries to raft storage: %w", len(rd.Entries), err)
	}

	// 3. Send (followers, now that their entries are durable).
	if !isLeader {
		n.send(rd.Messages)
	}

	// 4. Hand committed work to the applier. Apply runs in its own
	// goroutine so the next Ready can be persisted meanwhile; only batches
	// that change raft's configuration (or install a snapshot) are waited
	// for, because raft must see the new configuration before it goes on.
	if !raft.IsEmptySnap(rd.Snapshot) || len(rd.CommittedEntries) > 0 {
		ap := &Apply{Entries: rd.CommittedEntries, done: make(chan struct{})}
		if !raft.IsEmptySnap(rd.Snapshot) {
			ap.Snapshot = rd.Snapshot
		}
		if n.cfg.Metrics.Committed != nil && len(rd.CommittedEntries) > 0 {
			n.cfg.Metrics.Committed(len(rd.CommittedEntries))
		}
	send:
		for {
			select {
			case n.applyc <- ap:
				break send
			case f := <-n.ctlc:
				f()
			case <-n.stopc:
				return nil
			}
		}
		if ap.Snapshot != nil || hasConfChange(rd.CommittedEntries) {
			if !n.waitFor(ap.done) {
				return nil
			}
		}
	}

	// 5. Advance.
	n.rn.Advance(rd)
	if k := len(rd.CommittedEntries); k > 0 {
		n.advanced.Trigger(rd.CommittedEntries[k-1].GetIndex())
	}
	return nil
}

func hasConfChange(ents []*raftpb.Entry) bool {
	for _, e := range ents {
		if e.GetType() == raftpb.EntryConfChange || e.GetType() == raftpb.EntryConfChangeV2 {
			return true
		}
	}
	return false
}

func (n *Node) updateLeader(ss *raft.SoftState) {
	old := n.lead.Swap(ss.Lead)
	leader := ss.RaftState == raft.StateLeader
	n.isLeader.Store(leader)
	if old != ss.Lead {
		n.lg.Info("leader changed", "leader", fmt.Sprintf("%016x", ss.Lead), "previous-leader", fmt.Sprintf("%016x", old), "is-leader", leader)
		if n.cfg.Metrics.LeaderChanged != nil {
			n.cfg.Metrics.LeaderChanged(ss.Lead != raft.None, leader)
		}
		if ss.Lead == raft.None {
			n.failPendingReads(ErrNoLeader)
		}
		select {
		case n.leaderc <- struct{}{}:
		default:
		}
	}
}

// send hands messages to the transport; snapshots are streamed separately
// from a consistent copy of the backend.
func (n *Node) send(msgs []*raftpb.Message) {
	if len(msgs) == 0 {
		return
	}
	plain := msgs[:0:0]
	for _, m := range msgs {
		if m.GetType() == raftpb.MsgSnap {
			go n.sendSnapshot(m)
			continue
		}
		plain = append(plain, m)
	}
	n.cfg.Transport.Send(plain)
	// The peer writers just woken wait in this P's run queue. Left there,
	// they run only when this goroutine blocks: on the leader after the
	// fsync that follows, so the followers' fsyncs came after the leader's
	// instead of overlapping it; on a follower after the applier it wakes
	// next. An execution trace of 1-client puts showed ~0.5 ms per put.
	runtime.Gosched()
}

// sendSnapshot streams the backend to a follower. The message describes
// the copy it carries: the index and term applied in it, and the
// configuration read after the copy was taken (so it includes every change
// the copy holds; a later one is re-applied harmlessly from the log). Raft's
// own snapshot metadata would describe an older local snapshot, whose
// configuration may not even contain the follower (a learner added since).
func (n *Node) sendSnapshot(m *raftpb.Message) {
	body, size, index, term, err := n.cfg.Snapshots.OpenSnapshot()
	if err != nil {
		n.lg.Warn("cannot open a snapshot to send", "to", fmt.Sprintf("%016x", m.GetTo()), "error", err.Error())
		n.ReportSnapshot(m.GetTo(), raft.SnapshotFailure)
		return
	}
	n.snapMu.Lock()
	cs := proto.Clone(n.confState).(*raftpb.ConfState)
	n.snapMu.Unlock()
	msg := proto.Clone(m).(*raftpb.Message)
	if index > msg.GetSnapshot().GetMetadata().GetIndex() {
		msg.Snapshot = &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{Index: new(index), Term: new(term), ConfState: cs}}
	}
	n.cfg.Transport.SendSnapshot(msg, body, size)
}

// snapshot records a local snapshot at index and releases the log before
// it. The backend already holds everything up to index (the applier commits
// before it reports), so the WAL no longer needs those entries. Between
// two such snapshots it only trims raft's in-memory log (trimMemory).
func (n *Node) snapshot(index uint64) error {
	n.snapMu.Lock()
	if index <= n.snapIndex {
		n.snapMu.Unlock()
		return nil
	}
	full := index-n.snapIndex >= n.cfg.SnapshotCount
	cs := n.confState
	n.snapMu.Unlock()
	if !full {
		return n.trimMemory(index, cs)
	}

	snap, err := n.store.CreateSnapshot(index, cs, nil)
	if err == raft.ErrSnapOutOfDate {
		return nil
	}
	if err != nil {
		return fmt.Errorf("creating snapshot at %d: %w", index, err)
	}
	if err := n.cfg.Log.SaveSnapshot(snap.GetMetadata()); err != nil {
		return fmt.Errorf("saving snapshot record at %d: %w", index, err)
	}
	n.snapMu.Lock()
	n.snapIndex = index
	n.memIndex = index
	n.snapMu.Unlock()
	// Keep some entries so a slightly slow follower catches up from the
	// log instead of needing a whole snapshot.
	if index > n.cfg.CatchUpEntries {
		if err := n.store.Compact(index - n.cfg.CatchUpEntries); err != nil && err != raft.ErrCompacted {
			return fmt.Errorf("compacting raft log to %d: %w", index-n.cfg.CatchUpEntries, err)
		}
	}
	if err := n.cfg.Log.ReleaseTo(index); err != nil {
		return fmt.Errorf("releasing WAL before %d: %w", index, err)
	}
	n.lg.Info("saved snapshot", "index", index, "term", snap.GetMetadata().GetTerm())
	if n.cfg.Metrics.SnapshotSaved != nil {
		n.cfg.Metrics.SnapshotSaved(index)
	}
	return nil
}

// trimMemory drops raft's in-memory entries up to CatchUpEntries before
// index, without a WAL snapshot: raft.MemoryStorage otherwise holds up to
// SnapshotCount + CatchUpEntries entries (15,000 by default; about 16 MiB
// of 1 KiB puts), and how full it happens to be decided RSS after a load.
// The WAL is untouched, so a restart replays exactly as before; a follower
// that needs a trimmed entry gets a snapshot of the backend, which holds
// everything applied.
func (n *Node) trimMemory(index uint64, cs *raftpb.ConfState) error {
	if _, err := n.store.CreateSnapshot(index, cs, nil); err == raft.ErrSnapOutOfDate {
		return nil
	} else if err != nil {
		return fmt.Errorf("creating in-memory snapshot at %d: %w", index, err)
	}
	n.snapMu.Lock()
	n.memIndex = index
	n.snapMu.Unlock()
	if index > n.cfg.CatchUpEntries {
		if err := n.store.Compact(index - n.cfg.CatchUpEntries); err != nil && err != raft.ErrCompacted {
			return fmt.Errorf("trimming in-memory raft log to %d: %w", index-n.cfg.CatchUpEntries, err)
		}
	}
	return nil
}
