package raftnode

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// ErrNoLeader is returned to reads while there is no leader.
var ErrNoLeader = errors.New("raftnode: no leader")

// ErrReadTimeout is returned when the leader did not confirm a read in time.
var ErrReadTimeout = errors.New("raftnode: read index timed out")

// ReadBarrier blocks until this member has applied everything that was
// committed when the call started, as confirmed by the leader (raft
// ReadIndex). After it returns, a local read is linearizable. Concurrent
// callers share one ReadIndex round trip.
func (n *Node) ReadBarrier(ctx context.Context) error {
	ch := make(chan readResult, 1)
	n.readMu.Lock()
	n.readWaiters = append(n.readWaiters, ch)
	n.readMu.Unlock()
	select {
	case n.readc <- struct{}{}:
	default:
	}
	var res readResult
	select {
	case res = <-ch:
	case <-ctx.Done():
		return ctx.Err()
	case <-n.stopc:
		return ErrStopped
	}
	if res.err != nil {
		return res.err
	}
	select {
	case <-n.applied.Wait(res.index):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-n.stopc:
		return ErrStopped
	}
}

// readLoop batches waiting readers: every reader queued before a ReadIndex
// request is sent is served by that request's answer.
func (n *Node) readLoop() {
	for {
		select {
		case <-n.readc:
		case <-n.stopc:
			n.failPendingReads(ErrStopped)
			return
		}
		n.readMu.Lock()
		batch := n.readWaiters
		n.readWaiters = nil
		n.readMu.Unlock()
		if len(batch) == 0 {
			continue
		}
		index, err := n.requestReadIndex()
		for _, ch := range batch {
			ch <- readResult{index: index, err: err}
		}
	}
}

func (n *Node) failPendingReads(err error) {
	n.readMu.Lock()
	batch := n.readWaiters
	n.readWaiters = nil
	n.readMu.Unlock()
	for _, ch := range batch {
		ch <- readResult{err: err}
	}
}

// requestReadIndex sends one ReadIndex and waits for its ReadState. A
// request lost to a leader change is sent again as soon as a leader is
// known; one lost otherwise, after half an election timeout. Both are
// bounded in attempts and time.
func (n *Node) requestReadIndex() (uint64, error) {
	timeout := 2 * n.cfg.TickInterval * time.Duration(n.cfg.ElectionTicks)
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for attempt := 0; attempt < 10; attempt++ {
		if n.Leader() == 0 {
			// Wait for an election rather than fail at once.
			select {
			case <-n.leaderc:
				continue
			case <-time.After(n.cfg.TickInterval):
				continue
			case <-deadline.C:
				return 0, ErrNoLeader
			case <-n.stopc:
				return 0, ErrStopped
			}
		}
		// A change seen before this request is already reflected in it.
		select {
		case <-n.leaderc:
		default:
		}
		id := n.readSeq.Add(1)
		rctx := make([]byte, 8)
		binary.BigEndian.PutUint64(rctx, id)
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		err := n.do(ctx, func() { n.rn.ReadIndex(rctx) })
		cancel()
		if err != nil {
			return 0, fmt.Errorf("read index: %w", err)
		}
		retry := time.NewTimer(n.cfg.TickInterval * time.Duration(n.cfg.ElectionTicks) / 2)
	wait:
		for {
			select {
			case rs := <-n.readStates:
				if bytes.Equal(rs.RequestCtx, rctx) {
					retry.Stop()
					return rs.Index, nil
				}
				// An answer to an older request that timed out: ignore.
			case <-n.leaderc:
				n.lg.Debug("leader changed while a read index request was pending; resending", slog.Uint64("attempt", uint64(attempt)))
				retry.Stop()
				break wait
			case <-retry.C:
				n.lg.Debug("read index request lost; retrying", slog.Uint64("attempt", uint64(attempt)))
				break wait
			case <-deadline.C:
				retry.Stop()
				return 0, n.readTimeoutErr()
			case <-n.stopc:
				retry.Stop()
				return 0, ErrStopped
			}
		}
	}
	return 0, n.readTimeoutErr()
}

func (n *Node) readTimeoutErr() error {
	if n.Leader() == 0 {
		return ErrNoLeader
	}
	return ErrReadTimeout
}
