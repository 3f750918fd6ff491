package apply

import (
	"fmt"
	"math/rand/v2"

	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/membershippb"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/cadrekv/cadre/internal/membership"
)

// history generates random committed entries of every request kind. It
// keeps a reference replica that applies each entry as it is made (one
// entry per batch: path (a)), so requests can aim at state that exists:
// live keys, live leases, a revision worth compacting, learners to promote.
type history struct {
	rng   *rand.Rand
	ref   *replica
	ents  []*raftpb.Entry
	term  uint64
	reqID uint64
	port  int
}

func newHistory(seed uint64, ref *replica) *history {
	h := &history{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), ref: ref, term: 1, port: 20000}
	// Bootstrap: raft turns the initial members into conf change entries
	// whose context is the member (membership.MemberContext).
	for i := 1; i <= 3; i++ {
		m := &membership.Member{ID: uint64(i), Name: fmt.Sprintf("m%d", i), PeerURLs: []string{fmt.Sprintf("http://127.0.0.1:%d", 10000+i)}}
		data, _ := proto.Marshal(&raftpb.ConfChange{Type: new(raftpb.ConfChangeAddNode), NodeId: new(m.ID), Context: membership.MemberContext(m)})
		h.add(raftpb.EntryConfChange, data)
	}
	return h
}

func (h *history) add(t raftpb.EntryType, data []byte) {
	e := &raftpb.Entry{Type: new(t), Term: new(h.term), Index: new(uint64(len(h.ents) + 1)), Data: data}
	h.ents = append(h.ents, e)
	h.ref.apply([]*raftpb.Entry{e})
}

func (h *history) request(r *pb.InternalRaftRequest) {
	h.reqID++
	r.Header = &pb.RequestHeader{ID: h.reqID}
	data, err := proto.Marshal(r)
	if err != nil {
		panic(err)
	}
	h.add(raftpb.EntryNormal, data)
}

func (h *history) pick(n int) int { return h.rng.IntN(n) }
func (h *history) chance(p float64) bool {
	return h.rng.Float64() < p
}

func (h *history) key() []byte {
	prefixes := []string{"k/", "k/", "lk/", "z/"}
	return fmt.Appendf(nil, "%s%02d", prefixes[h.pick(len(prefixes))], h.pick(12))
}

func (h *history) value() []byte { return fmt.Appendf(nil, "v%d", h.pick(1000)) }

// lease returns a live lease ID (or, rarely, one that does not exist).
func (h *history) lease() int64 {
	ids := h.ref.lessor.IDs()
	if len(ids) == 0 || h.chance(0.05) {
		return int64(900 + h.pick(5))
	}
	return ids[h.pick(len(ids))]
}

func (h *history) put() *pb.PutRequest {
	p := &pb.PutRequest{Key: h.key(), Value: h.value(), PrevKv: h.chance(0.3)}
	switch {
	case h.chance(0.35):
		p.Lease = h.lease()
	case h.chance(0.05):
		p.IgnoreValue = true
	case h.chance(0.05):
		p.IgnoreLease = true
	}
	return p
}

func (h *history) ops(depth int) []*pb.RequestOp {
	var ops []*pb.RequestOp
	for range 1 + h.pick(3) {
		switch n := h.pick(10); {
		case n < 5:
			ops = append(ops, &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: h.put()}})
		case n < 7:
			ops = append(ops, &pb.RequestOp{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: &pb.DeleteRangeRequest{Key: h.key(), PrevKv: h.chance(0.5)}}})
		case n < 9 || depth > 1:
			ops = append(ops, &pb.RequestOp{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte("k/"), RangeEnd: []byte("k0")}}})
		default:
			ops = append(ops, &pb.RequestOp{Request: &pb.RequestOp_RequestTxn{RequestTxn: h.txn(depth + 1)}})
		}
	}
	return ops
}

func (h *history) txn(depth int) *pb.TxnRequest {
	rev, _ := h.ref.store.Rev()
	t := &pb.TxnRequest{Success: h.ops(depth), Failure: h.ops(depth)}
	for range h.pick(3) {
		c := &pb.Compare{Key: h.key()}
		switch h.pick(4) {
		case 0:
			c.Target, c.TargetUnion = pb.Compare_VALUE, &pb.Compare_Value{Value: h.value()}
		case 1:
			c.Target, c.TargetUnion = pb.Compare_MOD, &pb.Compare_ModRevision{ModRevision: int64(h.pick(int(rev) + 2))}
		case 2:
			c.Target, c.TargetUnion = pb.Compare_VERSION, &pb.Compare_Version{Version: int64(h.pick(3))}
		default:
			c.Target, c.TargetUnion = pb.Compare_LEASE, &pb.Compare_Lease{Lease: h.lease()}
		}
		c.Result = pb.Compare_CompareResult(h.pick(4))
		t.Compare = append(t.Compare, c)
	}
	return t
}

func (h *history) member() *membership.Member {
	ms := h.ref.members.Members()
	if len(ms) == 0 {
		return nil
	}
	return ms[h.pick(len(ms))]
}

func (h *history) confChange() {
	var cc *raftpb.ConfChange
	var err error
	switch h.pick(5) {
	case 0, 1: // add, mostly learners
		h.port++
		m := &membership.Member{ID: uint64(100 + h.port), PeerURLs: []string{fmt.Sprintf("http://127.0.0.1:%d", h.port)}, IsLearner: h.chance(0.8)}
		if h.chance(0.1) { // a URL in use: refused at apply
			if o := h.member(); o != nil {
				m.PeerURLs = o.PeerURLs
			}
		}
		cc, err = membership.NewConfChange(membership.ChangeAdd, m, m.ID, 1+h.pick(2))
	case 2:
		m := h.member()
		if m == nil {
			return
		}
		cc, err = membership.NewConfChange(membership.ChangePromote, m, m.ID, 0)
	case 3:
		m := h.member()
		if m == nil {
			return
		}
		h.port++
		u := *m
		u.PeerURLs = []string{fmt.Sprintf("http://127.0.0.1:%d", h.port)}
		cc, err = membership.NewConfChange(membership.ChangeUpdate, &u, m.ID, 0)
	default:
		m := h.member()
		if m == nil || len(h.ref.members.Members()) <= 3 {
			return
		}
		cc, err = membership.NewConfChange(membership.ChangeRemove, nil, m.ID, 0)
	}
	if err != nil {
		panic(err)
	}
	h.reqID++
	cc.Id = new(h.reqID)
	data, _ := proto.Marshal(cc)
	h.add(raftpb.EntryConfChange, data)
}

func (h *history) authChange() {
	users := []string{"root", "alice", "bob"}
	roles := []string{"root", "reader", "writer"}
	u, r := users[h.pick(len(users))], roles[h.pick(len(roles))]
	var req pb.InternalRaftRequest
	switch h.pick(9) {
	case 0:
		// The proposer hashes passwords; the log holds only the hash.
		req.AuthUserAdd = &pb.AuthUserAddRequest{Name: u, HashedPassword: "$2a$04$abcdefghijklmnopqrstuuH8u7wE3rN5yY0Y7hK3q5n5mZ0w6e1mS"}
		if h.chance(0.5) {
			req.AuthUserAdd = &pb.AuthUserAddRequest{Name: u, Options: &authpb.UserAddOptions{NoPassword: true}}
		}
	case 1:
		req.AuthRoleAdd = &pb.AuthRoleAddRequest{Name: r}
	case 2:
		req.AuthUserGrantRole = &pb.AuthUserGrantRoleRequest{User: u, Role: r}
	case 3:
		req.AuthRoleGrantPermission = &pb.AuthRoleGrantPermissionRequest{Name: r, Perm: &authpb.Permission{
			PermType: authpb.Permission_Type(h.pick(3)), Key: []byte("k/"), RangeEnd: []byte("k0")}}
	case 4:
		req.AuthUserRevokeRole = &pb.AuthUserRevokeRoleRequest{Name: u, Role: r}
	case 5:
		req.AuthEnable = &pb.AuthEnableRequest{}
	case 6:
		req.AuthDisable = &pb.AuthDisableRequest{}
	case 7:
		req.Authenticate = &pb.InternalAuthenticateRequest{Name: u, SimpleToken: fmt.Sprintf("hash-%d", h.pick(1<<20))}
	default:
		req.AuthUserDelete = &pb.AuthUserDeleteRequest{Name: u}
	}
	h.request(&req)
}

// step appends one random entry.
func (h *history) step() {
	if h.chance(0.02) {
		h.term++ // a new leader: entries carry a higher term
	}
	switch n := h.pick(100); {
	case n < 25:
		h.request(&pb.InternalRaftRequest{Put: h.put()})
	case n < 31:
		h.request(&pb.InternalRaftRequest{DeleteRange: &pb.DeleteRangeRequest{Key: h.key(), PrevKv: h.chance(0.5)}})
	case n < 35:
		k := h.key()
		end := append([]byte(nil), k...)
		end[len(end)-1] += byte(1 + h.pick(5))
		h.request(&pb.InternalRaftRequest{DeleteRange: &pb.DeleteRangeRequest{Key: k, RangeEnd: end}})
	case n < 45:
		h.request(&pb.InternalRaftRequest{Txn: h.txn(0)})
	case n < 48:
		rev, comp := h.ref.store.Rev()
		target := comp + 1 + int64(h.pick(int(max(rev-comp, 1))))
		if h.chance(0.1) {
			target = rev + 5 // a future revision: refused everywhere
		}
		h.request(&pb.InternalRaftRequest{Compaction: &pb.CompactionRequest{Revision: target}})
	case n < 58:
		h.request(&pb.InternalRaftRequest{LeaseGrant: &pb.LeaseGrantRequest{ID: int64(1 + h.pick(20)), TTL: int64(1 + h.pick(30))}})
	case n < 68:
		// A revoke: by a client, or the leader's expiry (the same entry).
		h.request(&pb.InternalRaftRequest{LeaseRevoke: &pb.LeaseRevokeRequest{ID: h.lease()}})
	case n < 72:
		req := &pb.LeaseCheckpointRequest{}
		for range 1 + h.pick(3) {
			req.Checkpoints = append(req.Checkpoints, &pb.LeaseCheckpoint{ID: h.lease(), Remaining_TTL: int64(h.pick(40) - 5)})
		}
		h.request(&pb.InternalRaftRequest{LeaseCheckpoint: req})
	case n < 82:
		h.authChange()
	case n < 86:
		act := pb.AlarmRequest_ACTIVATE
		if h.chance(0.5) {
			act = pb.AlarmRequest_DEACTIVATE
		}
		h.request(&pb.InternalRaftRequest{Alarm: &pb.AlarmRequest{Action: act, MemberID: uint64(1 + h.pick(3)), Alarm: pb.AlarmType(1 + h.pick(2))}})
	case n < 94:
		h.confChange()
	default:
		if m := h.member(); m != nil {
			h.request(&pb.InternalRaftRequest{ClusterMemberAttrSet: &membershippb.ClusterMemberAttrSetRequest{Member_ID: m.ID,
				MemberAttributes: &membershippb.Attributes{Name: fmt.Sprintf("n%d", h.pick(100)), ClientUrls: []string{fmt.Sprintf("http://127.0.0.1:%d", 30000+h.pick(100))}}}})
		}
	}
}
