package server

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/cadrekv/cadre/internal/membership"
	"github.com/cadrekv/cadre/internal/storage/wal"
)

// --force-new-cluster: recovery after a permanent loss of quorum. The
// surviving member keeps every committed entry, drops what was never
// committed, and removes every other member through its own log — so the
// change survives a restart, and the old members are refused as removed if
// they ever come back.

// forceNewCluster rewrites the replayed log of this member: entries after
// the commit index are dropped and configuration changes removing every
// other member are appended and marked committed, then saved to the WAL.
func (s *Server) forceNewCluster(w *wal.WAL, rep *wal.Replay, applied uint64, lg *slog.Logger) error {
	hs := proto.Clone(rep.HardState).(*raftpb.HardState)
	commit := max(hs.GetCommit(), applied)
	var snapIndex uint64
	var cs *raftpb.ConfState
	if rep.Snapshot != nil {
		snapIndex = rep.Snapshot.GetIndex()
		cs = rep.Snapshot.GetConfState()
	}
	commit = max(commit, snapIndex)

	// Members as of the commit index: the snapshot's configuration, then
	// the committed configuration changes after it.
	ids := map[uint64]bool{}
	for _, id := range cs.GetVoters() {
		ids[id] = true
	}
	for _, id := range cs.GetLearners() {
		ids[id] = true
	}
	// A joint configuration (a replace in progress) must be left before
	// the removals: raft refuses simple changes while it is joint.
	joint := len(cs.GetVotersOutgoing()) > 0
	var kept []*raftpb.Entry
	for _, e := range rep.Entries {
		if e.GetIndex() > commit {
			break
		}
		kept = append(kept, e)
		if e.GetType() == raftpb.EntryConfChangeV2 {
			_, cc, err := membership.DecodeConfChangeV2(e.GetData())
			switch {
			case err != nil:
				// Refused at apply (a no-op for raft too).
			case cc.LeaveJoint:
				joint = false
			default:
				joint = true
				ids[cc.NodeID] = true
				delete(ids, cc.Old)
			}
			continue
		}
		if e.GetType() != raftpb.EntryConfChange {
			continue
		}
		_, cc, err := membership.DecodeConfChange(e.GetData())
		if err != nil {
			return fmt.Errorf("--force-new-cluster: decoding conf change at %d: %w", e.GetIndex(), err)
		}
		switch cc.Type {
		case raftpb.ConfChangeAddNode, raftpb.ConfChangeAddLearnerNode:
			ids[cc.NodeID] = true
		case raftpb.ConfChangeRemoveNode:
			delete(ids, cc.NodeID)
		}
	}
	for _, m := range s.cluster.Members() {
		ids[m.ID] = true // the applied membership, in case the log was compacted past an add
	}
	if !ids[s.id] {
		return fmt.Errorf("--force-new-cluster: this member (%s) is not in its own last configuration; it cannot become a one-member cluster — restore a snapshot into a fresh data dir instead", membership.IDString(s.id))
	}
	var others []uint64
	for id := range ids {
		if id != s.id && !s.cluster.IsRemoved(id) {
			others = append(others, id)
		}
	}
	sort.Slice(others, func(i, j int) bool { return others[i] < others[j] })

	term := hs.GetTerm()
	if len(kept) > 0 {
		term = max(term, kept[len(kept)-1].GetTerm())
	}
	next := commit + 1
	var added []*raftpb.Entry
	if joint {
		added = append(added, &raftpb.Entry{Type: new(raftpb.EntryConfChangeV2), Term: new(term), Index: new(next)})
		next++
	}
	for _, id := range others {
		audit := &membership.Audit{By: "force-new-cluster (on " + membership.IDString(s.id) + ")", At: time.Now().UnixMilli(), Keep: s.cfg.MembershipHistory}
		added = append(added, &raftpb.Entry{Type: new(raftpb.EntryConfChange), Term: new(term), Index: new(next), Data: membership.RemoveEntryData(id, audit)})
		next++
	}
	newCommit := commit + uint64(len(added))
	hs.Commit = new(newCommit)
	hs.Term = new(term)
	// Entries after the old commit are overwritten by the removals, which
	// the WAL records as a truncation of the log at commit+1.
	if err := w.Save(hs, added); err != nil {
		return fmt.Errorf("--force-new-cluster: saving the new configuration: %w", err)
	}
	dropped := len(rep.Entries) - len(kept)
	rep.HardState = hs
	rep.Entries = append(kept, added...)
	names := make([]string, 0, len(others))
	for _, id := range others {
		names = append(names, membership.IDString(id))
	}
	b, _ := json.Marshal(names)
	lg.Warn("FORCING A NEW CLUSTER: this member continues alone with every committed entry; the other members are removed and will be refused if they return. Add members back one at a time with `member add`.",
		"member-id", membership.IDString(s.id), "removed-members", string(b), "commit-index", newCommit, "dropped-uncommitted-entries", dropped)
	return nil
}
