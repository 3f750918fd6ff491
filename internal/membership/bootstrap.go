package membership

import (
	"fmt"
	"sort"
)

// Bootstrap computes the members of a new cluster from --initial-cluster
// (name -> peer URLs) and the token. Every member derives the same IDs, so
// the cluster ID agrees without any exchange.
func Bootstrap(initial map[string][]string, token string) (clusterID uint64, members []*Member, err error) {
	seen := map[uint64]string{}
	var ids []uint64
	names := make([]string, 0, len(initial))
	for n := range initial {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		urls := append([]string(nil), initial[name]...)
		sort.Strings(urls)
		id := ComputeMemberID(urls, token, nil)
		if id == 0 {
			return 0, nil, fmt.Errorf("member %q has ID 0, which raft reserves; change its peer URL or --initial-cluster-token", name)
		}
		if other, dup := seen[id]; dup {
			return 0, nil, fmt.Errorf("members %q and %q have the same peer URLs in --initial-cluster; give each member its own URL", other, name)
		}
		seen[id] = name
		ids = append(ids, id)
		// Initial members carry their names from the start (as in etcd),
		// so they count as started; runtime-added members get theirs only
		// when they publish.
		members = append(members, &Member{ID: id, Name: name, PeerURLs: urls})
	}
	sort.Slice(members, func(i, j int) bool { return members[i].ID < members[j].ID })
	return ComputeClusterID(ids), members, nil
}
