package apply

import (
	"sort"
	"sync"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/cadrekv/cadre/internal/storage/schema"
)

// Alarms is the set of active alarms, changed only by the apply path and
// read by the server (NOSPACE and CORRUPT refuse writes). Safe for
// concurrent use.
type Alarms struct {
	mu     sync.RWMutex
	active map[string]*pb.AlarmMember // key: schema.AlarmKey
}

// NewAlarms returns an empty set.
func NewAlarms() *Alarms { return &Alarms{active: map[string]*pb.AlarmMember{}} }

// List returns the active alarms sorted by member, then type.
func (a *Alarms) List() []*pb.AlarmMember {
	a.mu.RLock()
	defer a.mu.RUnlock()
	out := make([]*pb.AlarmMember, 0, len(a.active))
	for _, m := range a.active {
		out = append(out, &pb.AlarmMember{MemberID: m.MemberID, Alarm: m.Alarm})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].MemberID != out[j].MemberID {
			return out[i].MemberID < out[j].MemberID
		}
		return out[i].Alarm < out[j].Alarm
	})
	return out
}

// Has reports whether an alarm of type t is active on any member.
func (a *Alarms) Has(t pb.AlarmType) bool {
	a.mu.RLock()
	defer a.mu.RUnlock()
	for _, m := range a.active {
		if m.Alarm == t {
			return true
		}
	}
	return false
}

// load replaces the set with the records of the meta bucket.
func (a *Alarms) load(meta map[string][]byte) error {
	active := make(map[string]*pb.AlarmMember, len(meta))
	for k := range meta {
		member, t, err := schema.ParseAlarmKey(k)
		if err != nil {
			return err
		}
		active[k] = &pb.AlarmMember{MemberID: member, Alarm: pb.AlarmType(t)}
	}
	a.mu.Lock()
	a.active = active
	a.mu.Unlock()
	return nil
}

// apply raises or clears one alarm; it reports whether the set changed.
func (a *Alarms) apply(b Batch, r *pb.AlarmRequest) bool {
	k := schema.AlarmKey(r.MemberID, int32(r.Alarm))
	a.mu.Lock()
	defer a.mu.Unlock()
	_, on := a.active[k]
	switch {
	case r.Action == pb.AlarmRequest_ACTIVATE && !on:
		a.active[k] = &pb.AlarmMember{MemberID: r.MemberID, Alarm: r.Alarm}
		b.SetMeta(k, schema.AlarmValue)
		return true
	case r.Action == pb.AlarmRequest_DEACTIVATE && on:
		delete(a.active, k)
		b.SetMeta(k, nil)
		return true
	}
	return false
}
