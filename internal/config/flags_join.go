package config

import (
	"flag"
	"net/url"
	"strconv"
	"strings"
)

// Join is `cadre --join`: a new member that adds itself to a running
// cluster through any member's client URLs, instead of the two-phase
// `member add` plus --initial-cluster-state=existing.
type Join struct {
	// URLs are client URLs of running members (--join, CADRE_JOIN).
	URLs []string
	// Replace, if not 0, is the voter this member replaces (--replace).
	Replace uint64
	// User is "name:password" of a root user when the cluster has auth
	// on (--join-user); a client certificate whose CN is root works too.
	User string
	// TokenSet records whether --initial-cluster-token was given: with
	// --join it is an assertion of which cluster is meant.
	TokenSet bool
	// stateSet records whether --initial-cluster-state was given.
	stateSet bool
}

// Enabled reports whether the member joins with --join.
func (j *Join) Enabled() bool { return len(j.URLs) > 0 }

type joinRaw struct {
	urls, replace string
}

func defineJoinFlags(fs *flag.FlagSet, j *Join, r *joinRaw) {
	fs.StringVar(&r.urls, "join", "", "Cadre: join a running cluster through these client `URLs` of its members (comma-separated): checks first, then adds this member as a learner and promotes it once caught up. Not with --initial-cluster, --initial-cluster-state or discovery.")
	fs.StringVar(&r.replace, "replace", "", "Cadre, with --join: the `member ID` (hex) of the voter this member replaces; it is swapped out in one joint-consensus change once this member has caught up.")
	fs.StringVar(&j.User, "join-user", "", "Cadre, with --join on a cluster with auth on: a root user as `name:password`.")
}

func (j *Join) finish(r *joinRaw, set map[string]bool) error {
	j.URLs = splitList(r.urls)
	j.TokenSet, j.stateSet = set["initial-cluster-token"], set["initial-cluster-state"]
	if r.replace == "" {
		return nil
	}
	id, err := strconv.ParseUint(strings.TrimPrefix(r.replace, "0x"), 16, 64)
	if err != nil || id == 0 {
		return invalidf("invalid --replace %q: give the hex member ID of the voter to replace, as `member list` shows it, like --replace=8e9e05c52164694d", r.replace)
	}
	j.Replace = id
	return nil
}

// validateJoin refuses --join mixed with the other ways to bootstrap.
func (c *Config) validateJoin() error {
	j := &c.Join
	if !j.Enabled() {
		switch {
		case j.Replace != 0:
			return invalidf("--replace is set without --join; to replace a member, start this one with --join=<client URLs of the cluster> --replace=%016x, or run `cadrectl member replace` first", j.Replace)
		case j.User != "":
			return invalidf("--join-user is set without --join; it is the root user a joining member adds itself with")
		}
		return nil
	}
	switch {
	case c.InitialClusterSet:
		return invalidf("--join and --initial-cluster are both set; --join learns the members from the cluster: drop --initial-cluster (or drop --join and use `member add`)")
	case j.stateSet:
		return invalidf("--join and --initial-cluster-state are both set; a member started with --join always joins a running cluster: drop --initial-cluster-state")
	case c.Discovery.Enabled():
		return invalidf("--join and discovery (--discovery-token or --discovery-srv) are both set; discovery bootstraps a new cluster, --join joins a running one: use one")
	case c.ForceNewCluster:
		return invalidf("--join and --force-new-cluster are both set; --force-new-cluster recovers an existing member alone: use one")
	}
	if j.User != "" && !strings.Contains(j.User, ":") {
		return invalidf("invalid --join-user: expected name:password of a root user, like --join-user=root:secret")
	}
	for _, u := range j.URLs {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return invalidf("invalid --join entry %q: give client URLs of running members as http(s)://host:port, comma-separated, like --join=http://10.0.0.1:2379,http://10.0.0.2:2379", u)
		}
	}
	return nil
}
