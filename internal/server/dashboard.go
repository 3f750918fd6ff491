package server

import (
	"context"
	"sort"
	"time"

	"github.com/cadrekv/cadre/internal/membership"
	"github.com/cadrekv/cadre/internal/ui"
)

// dashboardTimeout bounds the questions a follower asks the leader for
// the dashboard: the page polls every second and must not pile up.
const dashboardTimeout = 2 * time.Second

// Dashboard gathers what the /ui page shows. Any member answers. Health,
// last contact, match, lag and snapshots are the leader's view: a follower
// asks the leader for a dry-run verdict of a change that changes nothing
// (it lists every member as the leader judges it, the same judgement the
// strict reconfiguration check makes) and for MembersProgress (snapshot
// bytes). Without a leader the page still gets the membership, db size and
// alarms, and HealthError says why the rest is missing.
func (s *Server) Dashboard(ctx context.Context) (*ui.Dashboard, error) {
	st, err := s.Status(ctx)
	if err != nil {
		return nil, err
	}
	lead := s.node.Leader()
	members := s.cluster.Members()
	d := &ui.Dashboard{
		Time:      time.Now().UTC().Format(time.RFC3339),
		ClusterID: membership.IDString(s.ClusterID()),
		Member:    membership.IDString(s.id),
		Term:      st.RaftTerm,
		Commit:    st.RaftIndex,
		Members:   []ui.Member{},
		Removed:   []string{},
		Alarms:    []ui.Alarm{},
		DB:        ui.DB{Size: st.DbSize, SizeInUse: st.DbSizeInUse, Quota: st.DbSizeQuota},
	}
	if lead != 0 {
		d.Leader = membership.IDString(lead)
	}
	names := map[uint64]string{}
	voters := 0
	for _, m := range members {
		names[m.ID] = m.Name
		if !m.IsLearner {
			voters++
		}
	}
	d.MemberName, d.LeaderName = names[s.id], names[lead]
	d.Quorum = voters/2 + 1

	health, progress, herr := s.leaderView(ctx, lead)
	if herr != nil {
		d.HealthError = herr.Error()
	}
	if health != nil {
		ft := health.FailureToleranceBefore
		d.FailureTolerance = &ft
	}
	if progress != nil {
		d.Commit = progress.Commit
	}
	for _, m := range members {
		um := ui.Member{
			ID:         membership.IDString(m.ID),
			Name:       m.Name,
			PeerURLs:   nonNil(m.PeerURLs),
			ClientURLs: nonNil(m.ClientURLs),
			Role:       "voter",
			Started:    m.Started(),
			IsLeader:   m.ID == lead,
		}
		if m.IsLearner {
			um.Role = "learner"
		}
		if m.AddedAt > 0 {
			um.AddedAt = time.Unix(m.AddedAt, 0).UTC().Format(time.RFC3339)
		}
		if health != nil {
			for _, h := range health.Members {
				if h.ID != m.ID {
					continue
				}
				um.Activity, um.ConnectedSince, um.Match, um.Lag = h.Activity, h.ActiveSince, h.Match, h.Lag
				switch {
				case h.Active:
					um.Health = "healthy"
				case h.ActiveSince != "":
					um.Health = "connecting" // connected, but not yet for the strict check's 5 s
				default:
					um.Health = "unreachable"
				}
			}
		}
		if progress != nil {
			for _, p := range progress.Members {
				if p.ID != m.ID {
					continue
				}
				um.Match, um.Lag = p.Match, p.Lag
				if p.SnapshotInFlight {
					um.Snapshot = &ui.Snapshot{BytesSent: p.SnapshotBytesSent, BytesTotal: p.SnapshotBytesTotal}
				}
			}
		}
		d.Members = append(d.Members, um)
	}
	sort.Slice(d.Members, func(i, k int) bool { return d.Members[i].ID < d.Members[k].ID })

	var removed []uint64
	for id := range s.cluster.RemovedIDs() {
		removed = append(removed, id)
	}
	sort.Slice(removed, func(i, k int) bool { return removed[i] < removed[k] })
	for _, id := range removed {
		d.Removed = append(d.Removed, membership.IDString(id))
	}
	for _, a := range s.alarms.List() {
		d.Alarms = append(d.Alarms, ui.Alarm{Member: membership.IDString(a.MemberID), MemberName: names[a.MemberID], Alarm: a.Alarm.String()})
	}
	return d, nil
}

// leaderView returns the leader's judgement of every member and its
// replication progress, asking the leader when this member is not it.
func (s *Server) leaderView(ctx context.Context, lead uint64) (*membership.Verdict, *membership.Progress, error) {
	if lead == 0 {
		return nil, nil, errNoLeaderView
	}
	ctx, cancel := context.WithTimeout(ctx, dashboardTimeout)
	defer cancel()
	// A no-op: updating the leader to the peer URLs it has. Only its
	// verdict's member list is used; nothing is proposed (dry run).
	probe := membership.Change{Kind: membership.ChangeUpdate, ID: lead}
	if m := s.cluster.Member(lead); m != nil {
		probe.PeerURLs = m.PeerURLs
	}
	var verdict *membership.Verdict
	if s.node.IsLeader() {
		v := membership.Evaluate(s.view(), probe)
		verdict = &v
	} else {
		// forwardChange, not ChangeMembers: a learner may ask too.
		res, err := s.forwardChange(ctx, probe, true)
		if err != nil {
			return nil, nil, err
		}
		verdict = res.Verdict
	}
	progress, err := s.MembersProgress(ctx)
	if err != nil {
		return verdict, nil, err
	}
	return verdict, progress, nil
}

type dashboardError string

func (e dashboardError) Error() string { return string(e) }

const errNoLeaderView = dashboardError("no leader: health, match and lag are the leader's view and there is no leader to ask")

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
