package api

import (
	"context"
	"errors"
	"io"
	"sync"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/cadrekv/cadre/internal/storage/mvcc"
)

// WatchBackend is what the Watch service needs from a member.
type WatchBackend interface {
	NewWatchStream() *mvcc.WatchStream
	Header(rev int64) *pb.ResponseHeader
}

// defaultMaxWatchResponseBytes is etcd's default --max-request-bytes, the
// size above which a fragmenting watcher's response is split.
const defaultMaxWatchResponseBytes = 1572864

// RegisterWatch installs the etcd v3 Watch service. maxRequestBytes is the
// member's --max-request-bytes (0: etcd's default): responses of watchers
// that asked for fragments are split above it, as etcd does.
func RegisterWatch(g *grpc.Server, b WatchBackend, maxRequestBytes uint) {
	if maxRequestBytes == 0 {
		maxRequestBytes = defaultMaxWatchResponseBytes
	}
	pb.RegisterWatchServer(g, &watchServer{b: b, maxBytes: maxRequestBytes})
}

type watchServer struct {
	pb.UnimplementedWatchServer
	b        WatchBackend
	maxBytes uint
}

// watchSession serves one gRPC watch stream: a receive goroutine turns
// requests into mvcc calls and control responses; the handler goroutine is
// the only sender.
type watchSession struct {
	b        WatchBackend
	maxBytes uint
	stream   pb.Watch_WatchServer
	ws       *mvcc.WatchStream
	ctrl     chan *pb.WatchResponse // created / canceled responses
	stop     chan struct{}
	check    func(*pb.WatchCreateRequest) error // nil: every watch allowed

	// mu makes "register in mvcc" and "mark live" one step, so the sender
	// never sees an event of a watcher it does not know yet.
	mu   sync.Mutex
	live map[int64]bool // watch ID -> fragment requested
}

func (s *watchServer) Watch(stream pb.Watch_WatchServer) error {
	ss := &watchSession{
		b: s.b, maxBytes: s.maxBytes, stream: stream, ws: s.b.NewWatchStream(), check: watchCheck(stream.Context()),
		ctrl: make(chan *pb.WatchResponse, 16), stop: make(chan struct{}), live: map[int64]bool{},
	}
	defer ss.ws.Close()
	defer close(ss.stop)
	errc := make(chan error, 1)
	go func() {
		if err := ss.recvLoop(); err != nil {
			errc <- err
		}
	}()
	return ss.sendLoop(errc)
}

func (ss *watchSession) header() *pb.ResponseHeader { return ss.b.Header(ss.ws.Rev()) }

func (ss *watchSession) control(r *pb.WatchResponse) bool {
	select {
	case ss.ctrl <- r:
		return true
	case <-ss.stop:
		return false
	}
}

func (ss *watchSession) recvLoop() error {
	for {
		req, err := ss.stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil // the client closed its side; keep sending until it goes
		}
		if err != nil {
			return err
		}
		var resp *pb.WatchResponse
		switch u := req.RequestUnion.(type) {
		case *pb.WatchRequest_CreateRequest:
			if u.CreateRequest != nil {
				resp = ss.create(u.CreateRequest)
			}
		case *pb.WatchRequest_CancelRequest:
			if u.CancelRequest != nil {
				resp = ss.cancel(u.CancelRequest.WatchId)
			}
		case *pb.WatchRequest_ProgressRequest:
			if u.ProgressRequest != nil {
				ss.ws.RequestProgress()
			}
		}
		// Unknown requests are ignored rather than ending the stream (etcd).
		if resp != nil && !ss.control(resp) {
			return nil
		}
	}
}

func (ss *watchSession) create(c *pb.WatchCreateRequest) *pb.WatchResponse {
	key, end := c.Key, c.RangeEnd
	if len(key) == 0 {
		key = []byte{0} // the smallest key
	}
	if len(end) == 0 {
		end = nil
	}
	if c.StartRevision < 0 {
		return &pb.WatchResponse{Header: ss.header(), WatchId: clientInvalidWatchID, Created: true,
			Canceled: true, CancelReason: rpctypes.ErrCompacted.Error()}
	}
	if ss.check != nil {
		if err := ss.check(&pb.WatchCreateRequest{Key: key, RangeEnd: c.RangeEnd}); err != nil {
			// etcd's reason is the whole gRPC error text ("rpc error:
			// code = PermissionDenied desc = etcdserver: permission denied").
			return &pb.WatchResponse{Header: ss.header(), WatchId: clientInvalidWatchID, Created: true,
				Canceled: true, CancelReason: err.Error()}
		}
	}
	opts := mvcc.WatchOptions{PrevKV: c.PrevKv, ProgressNotify: c.ProgressNotify, Fragment: c.Fragment}
	for _, f := range c.Filters {
		switch f {
		case pb.WatchCreateRequest_NOPUT:
			opts.FilterPut = true
		case pb.WatchCreateRequest_NODELETE:
			opts.FilterDelete = true
		}
	}
	ss.mu.Lock()
	id, err := ss.ws.Watch(c.WatchId, key, end, c.StartRevision, opts)
	if err == nil {
		ss.live[id] = c.Fragment
	}
	ss.mu.Unlock()
	resp := &pb.WatchResponse{Header: ss.header(), WatchId: id, Created: true}
	if err != nil {
		resp.WatchId, resp.Canceled, resp.CancelReason = clientInvalidWatchID, true, err.Error()
	}
	return resp
}

func (ss *watchSession) cancel(id int64) *pb.WatchResponse {
	ss.mu.Lock()
	err := ss.ws.Cancel(id)
	if err == nil {
		delete(ss.live, id)
	}
	ss.mu.Unlock()
	if err != nil {
		return nil // etcd answers nothing for an unknown ID
	}
	return &pb.WatchResponse{Header: ss.header(), WatchId: id, Canceled: true}
}

// clientInvalidWatchID is etcd's watch ID for "no watcher": failed creates
// and stream-wide progress responses.
const clientInvalidWatchID = mvcc.ProgressWatchID

func (ss *watchSession) sendLoop(errc <-chan error) error {
	ctx := ss.stream.Context()
	announced := map[int64]bool{}
	// Responses of a watcher whose created response is not sent yet.
	pending := map[int64][]*pb.WatchResponse{}
	for {
		select {
		case r, ok := <-ss.ws.Chan():
			if !ok {
				return rpctypes.ErrGRPCStopped // the store closed; the client resumes elsewhere
			}
			wr := &pb.WatchResponse{
				Header: ss.b.Header(r.Revision), WatchId: r.WatchID, Events: r.Events,
				CompactRevision: r.CompactRevision, Canceled: r.CompactRevision != 0,
			}
			if r.WatchID == clientInvalidWatchID {
				if err := ss.stream.Send(wr); err != nil {
					return err
				}
				continue
			}
			ss.mu.Lock()
			frag, live := ss.live[r.WatchID]
			ss.mu.Unlock()
			switch {
			case !live: // canceled meanwhile
			case !announced[r.WatchID]:
				pending[r.WatchID] = append(pending[r.WatchID], wr)
			default:
				if err := ss.send(wr, frag); err != nil {
					return err
				}
			}
		case c := <-ss.ctrl:
			if err := ss.stream.Send(c); err != nil {
				return err
			}
			if c.WatchId == clientInvalidWatchID {
				continue
			}
			if c.Canceled {
				delete(announced, c.WatchId)
				delete(pending, c.WatchId)
				continue
			}
			announced[c.WatchId] = true
			ss.mu.Lock()
			frag := ss.live[c.WatchId]
			ss.mu.Unlock()
			for _, wr := range pending[c.WatchId] {
				if err := ss.send(wr, frag); err != nil {
					return err
				}
			}
			delete(pending, c.WatchId)
		case err := <-errc:
			if errors.Is(err, context.Canceled) {
				return rpctypes.ErrGRPCWatchCanceled
			}
			return err
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.Canceled) {
				return rpctypes.ErrGRPCWatchCanceled
			}
			return ctx.Err()
		}
	}
}

func (ss *watchSession) send(wr *pb.WatchResponse, fragment bool) error {
	if !fragment {
		return ss.stream.Send(wr)
	}
	return sendFragments(wr, ss.maxBytes, ss.stream.Send)
}

// sendFragments splits wr as etcd does: a response of at least maxBytes
// with two or more events is sent as several responses with Fragment set on
// all but the last, each holding as many events as fit under maxBytes (at
// least one). The client joins them back into one response.
func sendFragments(wr *pb.WatchResponse, maxBytes uint, send func(*pb.WatchResponse) error) error {
	if uint(proto.Size(wr)) < maxBytes || len(wr.Events) < 2 {
		return send(wr)
	}
	base := &pb.WatchResponse{
		Header: wr.Header, WatchId: wr.WatchId, Created: wr.Created, Canceled: wr.Canceled,
		CompactRevision: wr.CompactRevision, CancelReason: wr.CancelReason, Fragment: true,
	}
	baseSize := uint(proto.Size(base))
	evs := wr.Events
	for len(evs) > 0 {
		size, n := baseSize, 0
		for n < len(evs) {
			size += eventFieldSize(evs[n])
			if n > 0 && size >= maxBytes {
				break
			}
			n++
		}
		cur := &pb.WatchResponse{
			Header: base.Header, WatchId: base.WatchId, Created: base.Created, Canceled: base.Canceled,
			CompactRevision: base.CompactRevision, CancelReason: base.CancelReason,
			Fragment: n < len(evs), Events: evs[:n:n],
		}
		if err := send(cur); err != nil {
			return err
		}
		evs = evs[n:]
	}
	return nil
}

// eventFieldSize is the encoded size of ev as an element of
// WatchResponse.events (field 11: one tag byte, a length, the message).
func eventFieldSize(ev *mvccpb.Event) uint {
	return uint(1 + protowire.SizeBytes(proto.Size(ev)))
}
