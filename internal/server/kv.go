package server

import (
	"context"
	"errors"
	"fmt"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3"
	"google.golang.org/protobuf/proto"

	"github.com/cadrekv/cadre/internal/cerr"
	"github.com/cadrekv/cadre/internal/raftnode"
	"github.com/cadrekv/cadre/internal/storage/mvcc"
)

// Range serves a read: serializable reads from local state, linearizable
// ones after a ReadIndex barrier confirmed by the leader.
func (s *Server) Range(ctx context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error) {
	if !r.GetSerializable() {
		if err := s.linearizableBarrier(ctx); err != nil {
			return nil, err
		}
	}
	return s.store.Range(r)
}

// Put proposes a put through raft and returns its applied result.
func (s *Server) Put(ctx context.Context, r *pb.PutRequest) (*pb.PutResponse, error) {
	resp, err := s.propose(ctx, &pb.InternalRaftRequest{Put: r})
	if err != nil {
		return nil, err
	}
	return resp.(*pb.PutResponse), nil
}

// DeleteRange proposes a delete through raft.
func (s *Server) DeleteRange(ctx context.Context, r *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	resp, err := s.propose(ctx, &pb.InternalRaftRequest{DeleteRange: r})
	if err != nil {
		return nil, err
	}
	return resp.(*pb.DeleteRangeResponse), nil
}

// Txn proposes a transaction through raft. A read-only one (no put or
// delete in any branch) is a read, as in etcd: served like Range, after a
// ReadIndex barrier unless every range in it is serializable, and
// evaluated locally at one revision, with no log entry. Permissions and
// the txn limits were checked by the API layer, as for every txn.
func (s *Server) Txn(ctx context.Context, r *pb.TxnRequest) (*pb.TxnResponse, error) {
	if mvcc.TxnReadOnly(r) {
		if !txnSerializable(r) {
			if err := s.linearizableBarrier(ctx); err != nil {
				return nil, err
			}
		}
		return s.store.ReadTxn(r)
	}
	resp, err := s.propose(ctx, &pb.InternalRaftRequest{Txn: r})
	if err != nil {
		return nil, err
	}
	return resp.(*pb.TxnResponse), nil
}

// Compact proposes a compaction through raft. It takes effect when
// applied; the compacted revisions are then deleted in the background, and
// a physical compaction also waits for that on this member, as in etcd.
func (s *Server) Compact(ctx context.Context, r *pb.CompactionRequest) (*pb.CompactionResponse, error) {
	resp, err := s.propose(ctx, &pb.InternalRaftRequest{Compaction: r})
	if err != nil {
		return nil, err
	}
	if r.Physical {
		if err := s.store.WaitCompaction(ctx); err != nil {
			if ctx.Err() != nil {
				return nil, s.proposeError(ctx, err)
			}
			return nil, err
		}
	}
	return resp.(*pb.CompactionResponse), nil
}

// propose replicates r and waits until this member has applied it. The
// waiter is registered before proposing so the result cannot be missed.
func (s *Server) propose(ctx context.Context, r *pb.InternalRaftRequest) (proto.Message, error) {
	id := s.nextID()
	r.Header = &pb.RequestHeader{ID: id}
	data, err := proto.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encoding request: %w", err)
	}
	if uint(len(data)) > s.cfg.MaxRequestBytes {
		return nil, cerr.ErrRequestTooLarge
	}
	if err := s.checkCorrupt(r); err != nil {
		return nil, err
	}
	if err := s.checkQuota(r, len(data)); err != nil {
		return nil, err
	}
	return s.proposeEntry(ctx, id, data)
}

// proposeEntry replicates one normal entry carrying request id and waits
// for its result, proposing it again if raft dropped it unappended during
// a leader change (handoff.go).
func (s *Server) proposeEntry(ctx context.Context, id uint64, data []byte) (proto.Message, error) {
	ch := s.reqs.Register(id)
	ctx, cancel := context.WithTimeout(ctx, s.reqTimout)
	defer cancel()
	s.metrics.ProposalsPending.Inc()
	defer s.metrics.ProposalsPending.Dec()

	if err := s.proposeData(ctx, data); err != nil {
		s.reqs.Cancel(id)
		s.metrics.ProposalsFailed.Inc()
		return nil, s.proposeError(ctx, err)
	}
	for {
		select {
		case x := <-ch:
			res, ok := x.(result)
			if ok {
				return res.resp, res.err
			}
			if err := s.proposeData(ctx, data); err != nil {
				s.reqs.Cancel(id)
				s.metrics.ProposalsFailed.Inc()
				return nil, s.proposeError(ctx, err)
			}
		case <-ctx.Done():
			s.reqs.Cancel(id)
			s.metrics.ProposalsFailed.Inc()
			return nil, s.proposeError(ctx, ctx.Err())
		case <-s.stopping:
			s.reqs.Cancel(id)
			return nil, cerr.ErrStopped
		}
	}
}

// proposeError turns a failed proposal into the error a client should see.
func (s *Server) proposeError(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, raft.ErrProposalDropped):
		if s.node.Leader() == 0 {
			return cerr.ErrNoLeader
		}
		return cerr.ErrTimeout
	case errors.Is(err, context.Canceled):
		return err
	case errors.Is(err, context.DeadlineExceeded):
		if s.node.Leader() == 0 {
			return cerr.ErrNoLeader
		}
		return cerr.ErrTimeout
	case errors.Is(err, raft.ErrStopped):
		return cerr.ErrStopped
	}
	return err
}

// linearizableBarrier waits until local state includes every write
// committed before the call.
func (s *Server) linearizableBarrier(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.reqTimout)
	defer cancel()
	err := s.node.ReadBarrier(ctx)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raftnode.ErrNoLeader):
		return cerr.ErrNoLeader
	case errors.Is(err, raftnode.ErrReadTimeout), errors.Is(err, context.DeadlineExceeded):
		if s.node.Leader() == 0 {
			return cerr.ErrNoLeader
		}
		return cerr.ErrTimeout
	case errors.Is(err, raftnode.ErrStopped):
		return cerr.ErrStopped
	}
	return err
}

// NewWatchStream opens a watch stream on this member's store: watches are
// served locally, from the member's own applied history.
func (s *Server) NewWatchStream() *mvcc.WatchStream { return s.store.NewWatchStream() }

// txnSerializable reports whether a read-only txn may be served without a
// barrier: as etcd decides, every op of both branches is a serializable
// range (a nested txn makes it linearizable).
func txnSerializable(t *pb.TxnRequest) bool {
	for _, ops := range [][]*pb.RequestOp{t.Success, t.Failure} {
		for _, op := range ops {
			if r := op.GetRequestRange(); r == nil || !r.Serializable {
				return false
			}
		}
	}
	return true
}
