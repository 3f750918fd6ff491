// Package metrics holds one member's Prometheus collectors. They use etcd's
// metric names where the meaning is the same, so existing etcd dashboards
// and alerts work on Cadre. Everything is registered on a registry owned by
// the member (never the global one), so several members can live in one
// process in tests.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is the set of collectors of one member.
type Metrics struct {
	Registry *prometheus.Registry

	HasLeader          prometheus.Gauge
	IsLeader           prometheus.Gauge
	IsLearner          prometheus.Gauge
	LeaderChanges      prometheus.Counter
	ProposalsCommitted prometheus.Gauge
	ProposalsApplied   prometheus.Gauge
	ProposalsPending   prometheus.Gauge
	ProposalsFailed    prometheus.Counter
	WALFsync           prometheus.Histogram
	BackendCommit      prometheus.Histogram
	DBTotalSize        prometheus.Gauge
	SnapshotsSaved     prometheus.Counter

	// Membership (Cadre's names; docs/grafana-membership.json uses them).
	MembershipChanges   *prometheus.CounterVec // action, outcome: applied | rejected | refused
	LearnerLag          *prometheus.GaugeVec   // member: entries behind the leader's commit (leader only)
	UnstartedMembers    prometheus.Gauge
	LastMembershipIndex prometheus.Gauge

	// ServerVersion is etcd's etcd_server_version{server_version} 1: the
	// etcd API version served (tools and etcd's tests read it).
	ServerVersion *prometheus.GaugeVec
}

// New creates and registers the collectors on a fresh registry.
func New() *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{
		Registry: r,
		HasLeader: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "etcd", Subsystem: "server", Name: "has_leader",
			Help: "Whether or not a leader exists. 1 is existence, 0 is not."}),
		IsLeader: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "etcd", Subsystem: "server", Name: "is_leader",
			Help: "Whether or not this member is a leader. 1 if is, 0 otherwise."}),
		IsLearner: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "etcd", Subsystem: "server", Name: "is_learner",
			Help: "Whether or not this member is a learner. 1 if is, 0 otherwise."}),
		LeaderChanges: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "etcd", Subsystem: "server", Name: "leader_changes_seen_total",
			Help: "The number of leader changes seen."}),
		ProposalsCommitted: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "etcd", Subsystem: "server", Name: "proposals_committed_total",
			Help: "The total number of consensus proposals committed."}),
		ProposalsApplied: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "etcd", Subsystem: "server", Name: "proposals_applied_total",
			Help: "The total number of consensus proposals applied."}),
		ProposalsPending: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "etcd", Subsystem: "server", Name: "proposals_pending",
			Help: "The current number of pending proposals to commit."}),
		ProposalsFailed: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "etcd", Subsystem: "server", Name: "proposals_failed_total",
			Help: "The total number of failed proposals seen."}),
		WALFsync: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "etcd", Subsystem: "disk", Name: "wal_fsync_duration_seconds",
			Help:    "The latency distributions of fsync called by WAL.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
		BackendCommit: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "etcd", Subsystem: "disk", Name: "backend_commit_duration_seconds",
			Help:    "The latency distributions of commit called by backend.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
		DBTotalSize: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "etcd", Subsystem: "mvcc", Name: "db_total_size_in_bytes",
			Help: "Total size of the underlying database physically allocated in bytes."}),
		SnapshotsSaved: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "cadre", Subsystem: "server", Name: "snapshots_saved_total",
			Help: "The number of local raft snapshots saved (after which old WAL segments are released)."}),
	}
	m.MembershipChanges = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "cadre", Subsystem: "membership", Name: "changes_total",
		Help: "Membership changes by action (add, add-learner, promote, update, remove) and outcome (applied; rejected at apply; refused by this member)."},
		[]string{"action", "outcome"})
	m.LearnerLag = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "cadre", Subsystem: "membership", Name: "learner_lag_entries",
		Help: "How many entries each learner is behind the leader's commit index (reported by the leader only)."}, []string{"member"})
	m.UnstartedMembers = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "cadre", Subsystem: "membership", Name: "unstarted_members",
		Help: "Members added but not yet started (each unstarted voter still counts toward the quorum)."})
	m.LastMembershipIndex = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "cadre", Subsystem: "membership", Name: "last_change_index",
		Help: "The raft index of the last membership change applied."})
	m.ServerVersion = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "etcd", Subsystem: "server", Name: "version",
		Help: "Which version is running. 1 for 'server_version' label with current version."}, []string{"server_version"})
	r.MustRegister(m.ServerVersion)
	r.MustRegister(m.HasLeader, m.IsLeader, m.IsLearner, m.LeaderChanges, m.ProposalsCommitted, m.ProposalsApplied,
		m.ProposalsPending, m.ProposalsFailed, m.WALFsync, m.BackendCommit, m.DBTotalSize, m.SnapshotsSaved,
		m.MembershipChanges, m.LearnerLag, m.UnstartedMembers, m.LastMembershipIndex,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// ObserveWALFsync records one WAL fsync.
func (m *Metrics) ObserveWALFsync(d time.Duration) { m.WALFsync.Observe(d.Seconds()) }

// ObserveBackendCommit records one backend commit.
func (m *Metrics) ObserveBackendCommit(d time.Duration) { m.BackendCommit.Observe(d.Seconds()) }

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}
