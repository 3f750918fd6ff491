package membership

import (
	"errors"
	"strings"
	"testing"
)

// parseRemote reads "name=url url;name=url;..." (name may be empty:
// unstarted; a leading "~" marks a learner). Member i gets ID i+1.
func parseRemote(s string) []*Member {
	var out []*Member
	for i, e := range strings.Split(s, ";") {
		if i >= 16 {
			break
		}
		n, us, _ := strings.Cut(e, "=")
		m := &Member{ID: uint64(i + 1), Name: strings.TrimPrefix(n, "~"), IsLearner: strings.HasPrefix(n, "~")}
		m.PeerURLs = strings.Fields(us)
		out = append(out, m)
	}
	return out
}

// wellFormed: a member list a real cluster could have, written with
// characters that survive the name=url,... syntax.
func wellFormed(name string, remote []*Member) bool {
	if name == "" || !validEntryName(name) {
		return false
	}
	seen := map[string]bool{}
	for _, m := range remote {
		if len(m.PeerURLs) == 0 {
			return false
		}
		for _, u := range m.PeerURLs {
			n := normalizeURL(u)
			if u == "" || strings.ContainsAny(u, ",=") || seen[n] || u != strings.TrimSpace(u) {
				return false
			}
			seen[n] = true
		}
	}
	return true
}

func FuzzCheckJoin(f *testing.F) {
	article := "infra1=http://127.0.0.1:12380;infra2=http://127.0.0.1:22380;infra3=http://127.0.0.1:32380;=http://localhost:2380"
	three := "infra1=http://127.0.0.1:12380,infra2=http://127.0.0.1:22380,infra3=http://127.0.0.1:32380"
	f.Add("infra4", three+",infra4=http://127.0.0.1:2380", "http://127.0.0.1:2380", article)
	f.Add("infra4", three+",infra4=http://localhost:2380", "http://localhost:2380", article)
	f.Add("infra4", three+",infra4=HTTP://LOCALHOST:2380/", "http://localhost:2380", article)
	f.Add("infra4", three+",infra4=http://127.0.0.1:2380", "http://127.0.0.1:2380", "infra1=http://127.0.0.1:12380;infra2=http://127.0.0.1:22380")
	f.Add("a", "a=http://x:1,a=http://y:1,b=http://z:1", "http://y:1,http://x:1", "~=http://x:1 http://y:1;b=http://z:1")
	f.Add("a", "a=http://x:1", "", "a=http://x:1;a=http://x:1")
	f.Add("", "=", "", ";;")
	f.Fuzz(func(t *testing.T, name, local, adv, remoteSpec string) {
		initialCluster := parseInitialCluster(local)
		remote := parseRemote(remoteSpec)
		self, err := CheckJoin(name, initialCluster, splitURLs(adv), remote)
		if err == nil {
			if self == nil {
				t.Fatal("no error and no self")
			}
			var in *Member
			for _, m := range remote {
				if m.ID == self.ID {
					in = m
				}
			}
			if in == nil || urlSet(in.PeerURLs) != urlSet(self.PeerURLs) {
				t.Fatalf("self %+v is not in remote", self)
			}
			if urlSet(self.PeerURLs) != urlSet(initialCluster[name]) {
				t.Fatalf("self %v differs from the local entry %v", self.PeerURLs, initialCluster[name])
			}
			return
		}
		var je *JoinMismatchError
		if self != nil || !errors.As(err, &je) || err.Error() == "" {
			t.Fatalf("self %v err %#v", self, err)
		}
		if !errors.Is(err, ErrJoinMismatch) && !errors.Is(err, ErrNotAdded) {
			t.Fatalf("unknown reason %v", je.Reason)
		}
		// The printed flags must work, whenever they can be written down.
		if je.Self != nil && wellFormed(name, remote) {
			back, err := CheckJoin(name, parseInitialCluster(je.InitialCluster), splitURLs(je.AdvertisePeerURLs), remote)
			if err != nil || back.ID != je.Self.ID {
				t.Fatalf("printed flags %q / %q refused: %v", je.InitialCluster, je.AdvertisePeerURLs, err)
			}
		}
	})
}
