// Package ui is the live dashboard every member serves at /ui/ on its
// client URLs: static HTML, CSS and JavaScript embedded in the binary
// (nothing fetched from elsewhere, so it works offline and behind a
// firewall), polling GET /cadre/v1/dashboard for the data (Dashboard).
package ui

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed assets
var assets embed.FS

// Handler serves the dashboard's files under /ui/. It carries no data: the
// page asks for it with the user's token when auth is on, so serving the
// files themselves needs no login.
func Handler() http.Handler {
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.StripPrefix("/ui/", http.FileServer(http.FS(sub)))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The page is small and changes with the binary: always revalidate,
		// so an upgraded member never runs a stale script against new data.
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
		files.ServeHTTP(w, r)
	})
}

// Dashboard is everything the page shows, in one answer of
// GET /cadre/v1/dashboard. IDs are 16 hex digits, as etcdctl prints them.
// Health, match, lag and snapshots are the leader's view, whichever member
// answers (followers ask the leader); db size and quota are the answering
// member's.
type Dashboard struct {
	Time       string `json:"time"`       // the answering member's clock, RFC3339
	ClusterID  string `json:"clusterID"`  // hex
	Member     string `json:"member"`     // the answering member, hex
	MemberName string `json:"memberName"` // its name
	Leader     string `json:"leader"`     // hex, "" when there is none
	LeaderName string `json:"leaderName"`
	Term       uint64 `json:"term"`
	Commit     uint64 `json:"commit"` // the leader's commit index (this member's when the leader could not be asked)

	// HealthError says why the leader's view (health, match, lag,
	// snapshots) is missing, e.g. no leader; "" when it is there.
	HealthError string `json:"healthError,omitempty"`
	// FailureTolerance is how many more healthy voters may fail before the
	// cluster loses quorum (healthy voters - quorum); null without the
	// leader's view.
	FailureTolerance *int `json:"failureTolerance"`
	Quorum           int  `json:"quorum"`

	Members []Member `json:"members"` // sorted by ID
	Removed []string `json:"removed"` // IDs removed from the cluster, sorted

	DB     DB      `json:"db"`
	Alarms []Alarm `json:"alarms"`
}

// Member is one member of the cluster.
type Member struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"` // "" until it has started and published
	PeerURLs   []string `json:"peerURLs"`
	ClientURLs []string `json:"clientURLs"`
	Role       string   `json:"role"`    // "voter" or "learner"
	Started    bool     `json:"started"` // false: added, never started (unstarted)
	IsLeader   bool     `json:"isLeader"`
	AddedAt    string   `json:"addedAt,omitempty"` // RFC3339, when added at runtime

	// The leader's view; Health is "" when it is unknown.
	Health         string `json:"health"`                   // "healthy" (counts for the strict check) or "unhealthy"
	Activity       string `json:"activity"`                 // in words, e.g. "connected for 2m0s"
	ConnectedSince string `json:"connectedSince,omitempty"` // RFC3339: the leader's last contact began then and is unbroken
	Match          uint64 `json:"match"`
	Lag            uint64 `json:"lag"`

	Snapshot *Snapshot `json:"snapshot,omitempty"` // a snapshot being sent to it
}

// Snapshot is a snapshot in flight from the leader to a member. The page
// computes the rate and ETA from successive answers.
type Snapshot struct {
	BytesSent  int64 `json:"bytesSent"`
	BytesTotal int64 `json:"bytesTotal"` // 0 while unknown
}

// DB is the answering member's backend size against its quota.
type DB struct {
	Size      int64 `json:"size"`
	SizeInUse int64 `json:"sizeInUse"`
	Quota     int64 `json:"quota"`
}

// Alarm is an active alarm.
type Alarm struct {
	Member     string `json:"member"` // hex
	MemberName string `json:"memberName"`
	Alarm      string `json:"alarm"` // NOSPACE, CORRUPT
}
