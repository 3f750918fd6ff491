package raftnode

import (
	"context"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// Proposals queued while the loop persists a Ready are stepped together,
// as one MsgProp: the leader appends them at once and sends one MsgApp per
// follower for all of them (a follower forwards one MsgProp), instead of a
// message and its answer per proposal. A batch is capped so one MsgApp
// stays within raft's MaxSizePerMsg.
const (
	maxProposalBatch      = 512
	maxProposalBatchBytes = 1 << 20
)

// proposal is one local proposal waiting for raft to take it.
type proposal struct {
	data []byte
	errc chan error // buffered: the loop never waits for the proposer
}

// Propose proposes data; it returns once raft took it for replication (the
// leader appended it, or a follower forwarded it). raft.ErrProposalDropped
// means it was appended nowhere, so proposing it again is safe.
func (n *Node) Propose(ctx context.Context, data []byte) error {
	p := &proposal{data: data, errc: make(chan error, 1)}
	select {
	case n.propc <- p:
	case <-ctx.Done():
		return ctx.Err()
	case <-n.donec:
		return ErrStopped
	}
	select {
	case err := <-p.errc:
		return err
	case <-ctx.Done():
		// The loop may still step it; like any proposal whose proposer
		// gave up, it may commit.
		return ctx.Err()
	case <-n.donec:
		return ErrStopped
	}
}

// stepProposals steps first and the proposals queued behind it as one
// message, up to the batch cap; the loop's drain steps any left over as the
// next batch.
func (n *Node) stepProposals(first *proposal) {
	batch := []*proposal{first}
	size := len(first.data)
	for len(batch) < maxProposalBatch && size < maxProposalBatchBytes {
		select {
		case p := <-n.propc:
			batch = append(batch, p)
			size += len(p.data)
			continue
		default:
		}
		break
	}
	n.stepBatch(batch)
}

func (n *Node) stepBatch(batch []*proposal) {
	ents := make([]*raftpb.Entry, len(batch))
	boxes := make([]raftpb.Entry, len(batch)) // one allocation for all entries
	for i, p := range batch {
		boxes[i].Data = p.data
		ents[i] = &boxes[i]
	}
	id := n.cfg.ID
	err := n.rn.Step(&raftpb.Message{Type: raftpb.MsgProp.Enum(), From: &id, Entries: ents})
	for _, p := range batch {
		p.errc <- err
	}
}

// stepPeer steps a message from a peer. A proposal forwarded to this member
// that raft drops (no leader here, or leadership being handed over) would
// be dropped without a word: its proposer is told instead, and proposes it
// again.
func (n *Node) stepPeer(m *raftpb.Message) {
	err := n.rn.Step(m)
	if m.GetType() == raftpb.MsgProp && err == raft.ErrProposalDropped && n.cfg.OnProposalDropped != nil {
		n.cfg.OnProposalDropped(m)
	}
}
