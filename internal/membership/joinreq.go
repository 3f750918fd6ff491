package membership

// The requests of `cadre --join` and `cadrectl member replace`, as they
// travel from the client port to the leader. Only the leader judges them:
// it alone knows every member's progress and can probe a new peer URL
// from where the cluster's traffic will come.

// JoinRequest is what a member started with --join asks of the cluster.
type JoinRequest struct {
	Name     string   `json:"name"`
	ID       string   `json:"id"` // the member ID the joiner recorded in its data dir before asking
	PeerURLs []string `json:"peerURLs"`
	// Token is the joiner's --initial-cluster-token, when it was given:
	// an assertion of which cluster it means.
	Token    string `json:"token,omitempty"`
	Nonce    string `json:"nonce"` // the joiner's peer listener echoes it to the leader's probe
	Replaces string `json:"replaces,omitempty"`
	// Preflight asks for the checks only: nothing is proposed.
	Preflight bool   `json:"preflight,omitempty"`
	By        string `json:"by,omitempty"`
}

// JoinAnswer is the cluster's answer to a JoinRequest.
type JoinAnswer struct {
	ClusterID string    `json:"clusterID"`
	Member    *Member   `json:"member,omitempty"` // the joiner's entry (nil for a preflight)
	Members   []*Member `json:"members"`
	// Reused: the cluster already had the joiner's entry (a retry, or a
	// member added with `member add` at this peer URL); nothing was added.
	Reused bool     `json:"reused,omitempty"`
	Checks []string `json:"checks"` // what the leader verified, in words
}

// ReplaceRequest is `cadrectl member replace`.
type ReplaceRequest struct {
	Old      string   `json:"old"`
	Name     string   `json:"name"`
	PeerURLs []string `json:"peerURLs"`
	DryRun   bool     `json:"dryRun,omitempty"`
	By       string   `json:"by,omitempty"`
}

// ReplaceAnswer is the answer to a ReplaceRequest: the plan of a dry run,
// or the learner added and the members after the add.
type ReplaceAnswer struct {
	ClusterID string       `json:"clusterID"`
	Plan      *ReplacePlan `json:"plan,omitempty"`
	Member    *Member      `json:"member,omitempty"`
	Members   []*Member    `json:"members"`
}

// JoinProbe is what a joiner's peer listener answers the leader's probe.
type JoinProbe struct {
	Name  string `json:"name"`
	Nonce string `json:"nonce"`
}

// JoinProbePath is where a joiner's peer listener answers the probe.
const JoinProbePath = "/cadre/join/probe"
