package mvcc

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// Range reads committed state. The revision it reads at, the index and the
// bbolt read transaction are taken together, so the result is a consistent
// snapshot even while a Batch commits.
func (s *Store) Range(req *pb.RangeRequest) (*pb.RangeResponse, error) {
	probe := &keyIndex{}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return nil, ErrClosed
	}
	plan, err := planRange(s.tree, probe, s.rev, s.compacted, req)
	src := kvSource{ov: s.ov}
	var tx *bolt.Tx
	if err == nil && needsTx(src.ov, plan.revs) {
		// Opened under mu: no Batch can publish (and no compaction can be
		// published) between the index walk and this transaction.
		tx, err = s.db.Begin(false)
	}
	s.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	if tx != nil {
		defer tx.Rollback()
		src.kvb = tx.Bucket(bucketKV)
	}
	return finishRange(src, plan, req)
}

// rangePlan is the index half of a Range: which revisions to read.
type rangePlan struct {
	revs  []revision
	count int64 // every key in range at the read revision, before limit and filters
	rev   int64 // header revision: the store's current revision
}

// checkRev resolves a requested read revision as etcd does: 0 means the
// current one; newer than current or older than compacted is an error.
func checkRev(req, cur, compacted int64) (int64, error) {
	switch {
	case req > cur:
		return 0, fmt.Errorf("%w: requested %d, current %d", ErrFutureRev, req, cur)
	case req <= 0:
		return cur, nil
	case req < compacted:
		return 0, fmt.Errorf("%w: requested %d, compacted %d", ErrCompacted, req, compacted)
	}
	return req, nil
}

// defaultOrder reports whether the index order (key ascending) already is
// the requested order. etcd sorts ascending when a target other than KEY is
// given with order NONE.
func defaultOrder(r *pb.RangeRequest) bool {
	return (r.SortOrder == pb.RangeRequest_NONE && r.SortTarget == pb.RangeRequest_KEY) ||
		(r.SortOrder == pb.RangeRequest_ASCEND && r.SortTarget == pb.RangeRequest_KEY)
}

func hasRevFilters(r *pb.RangeRequest) bool {
	return r.MinModRevision != 0 || r.MaxModRevision != 0 ||
		r.MinCreateRevision != 0 || r.MaxCreateRevision != 0
}

func planRange(t *index, probe *keyIndex, cur, compacted int64, r *pb.RangeRequest) (rangePlan, error) {
	at, err := checkRev(r.Revision, cur, compacted)
	if err != nil {
		return rangePlan{}, err
	}
	plan := rangePlan{rev: cur}
	// Like etcd: with a custom order or revision filters every key must be
	// read before the limit applies; otherwise one extra row tells "more".
	limit := int64(0)
	if r.Limit > 0 && defaultOrder(r) && !hasRevFilters(r) {
		limit = r.Limit + 1
	}
	visit(t, probe, r.Key, r.RangeEnd, func(ki *keyIndex) bool {
		e, ok := ki.at(at)
		if !ok {
			return true
		}
		plan.count++
		if !r.CountOnly && (limit == 0 || int64(len(plan.revs)) < limit) {
			plan.revs = append(plan.revs, e.revision)
		}
		return true
	})
	return plan, nil
}

// finishRange reads the planned revisions from kv and applies etcd's
// post-processing in its order: revision filters, sort, limit, keys_only.
func finishRange(src kvSource, plan rangePlan, r *pb.RangeRequest) (*pb.RangeResponse, error) {
	resp := &pb.RangeResponse{Header: &pb.ResponseHeader{Revision: plan.rev}, Count: plan.count}
	if len(plan.revs) == 0 {
		return resp, nil
	}
	withValue := !r.KeysOnly || r.SortTarget == pb.RangeRequest_VALUE
	kvs := make([]*mvccpb.KeyValue, 0, len(plan.revs))
	var kbuf [revKeyLen + 1]byte
	for _, rv := range plan.revs {
		kv, err := src.get(kbuf[:0], rv, withValue)
		if err != nil {
			return nil, err
		}
		if keep(kv, r) {
			kvs = append(kvs, kv)
		}
	}
	sortKVs(kvs, r)
	if r.Limit > 0 && int64(len(kvs)) > r.Limit {
		kvs = kvs[:r.Limit]
		resp.More = true
	}
	if r.KeysOnly {
		for _, kv := range kvs {
			kv.Value = nil
		}
	}
	resp.Kvs = kvs
	return resp, nil
}

// getKV reads the live write at r. A missing revision means a compaction
// committed after the reader took its index view.
func getKV(kvb *bolt.Bucket, kbuf []byte, r revision, withValue bool) (*mvccpb.KeyValue, error) {
	v := kvb.Get(appendRevKey(kbuf, r, false))
	if v == nil {
		return nil, fmt.Errorf("%w: revision %d/%d is no longer stored", ErrCompacted, r.main, r.sub)
	}
	kv, err := decodeKV(v, withValue)
	if err != nil {
		return nil, fmt.Errorf("revision %d/%d: %w", r.main, r.sub, err)
	}
	return kv, nil
}

func keep(kv *mvccpb.KeyValue, r *pb.RangeRequest) bool {
	return (r.MaxModRevision == 0 || kv.ModRevision <= r.MaxModRevision) &&
		(r.MinModRevision == 0 || kv.ModRevision >= r.MinModRevision) &&
		(r.MaxCreateRevision == 0 || kv.CreateRevision <= r.MaxCreateRevision) &&
		(r.MinCreateRevision == 0 || kv.CreateRevision >= r.MinCreateRevision)
}

func sortKVs(kvs []*mvccpb.KeyValue, r *pb.RangeRequest) {
	if defaultOrder(r) {
		return
	}
	var f func(a, b *mvccpb.KeyValue) int
	switch r.SortTarget {
	case pb.RangeRequest_VERSION:
		f = func(a, b *mvccpb.KeyValue) int { return cmp.Compare(a.Version, b.Version) }
	case pb.RangeRequest_CREATE:
		f = func(a, b *mvccpb.KeyValue) int { return cmp.Compare(a.CreateRevision, b.CreateRevision) }
	case pb.RangeRequest_MOD:
		f = func(a, b *mvccpb.KeyValue) int { return cmp.Compare(a.ModRevision, b.ModRevision) }
	case pb.RangeRequest_VALUE:
		f = func(a, b *mvccpb.KeyValue) int { return bytes.Compare(a.Value, b.Value) }
	default:
		f = func(a, b *mvccpb.KeyValue) int { return bytes.Compare(a.Key, b.Key) }
	}
	if r.SortOrder == pb.RangeRequest_DESCEND {
		asc := f
		f = func(a, b *mvccpb.KeyValue) int { return asc(b, a) }
	}
	// Stable: equal elements keep key order, so results are deterministic.
	slices.SortStableFunc(kvs, f)
}
