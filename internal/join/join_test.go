package join

import (
	"net/url"
	"strings"
	"testing"

	"github.com/cadrekv/cadre/internal/config"
	"github.com/cadrekv/cadre/internal/membership"
)

func testConfig(t *testing.T, name, peer string) *config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.Name, cfg.DataDir = name, t.TempDir()
	u, err := url.Parse(peer)
	if err != nil {
		t.Fatal(err)
	}
	cfg.InitialAdvertisePeerURLs = []url.URL{*u}
	return cfg
}

// TestApplyAnswer: the member list the cluster answers becomes the
// settings `member add` prints: every member by name (an unstarted one
// with an empty name, as etcdctl prints it), this member under its own
// name, and --initial-cluster-state existing.
func TestApplyAnswer(t *testing.T) {
	cfg := testConfig(t, "new4", "http://127.0.0.1:4380")
	st := &state{Name: "new4", PeerURLs: []string{"http://127.0.0.1:4380"}, ID: membership.IDString(4), Members: []*membership.Member{
		{ID: 1, Name: "a", PeerURLs: []string{"http://127.0.0.1:1380"}},
		{ID: 2, PeerURLs: []string{"http://127.0.0.1:2380"}}, // added, never started
		{ID: 4, PeerURLs: []string{"http://127.0.0.1:4380"}, IsLearner: true},
	}}
	if err := applyAnswer(cfg, st); err != nil {
		t.Fatal(err)
	}
	want := "a=http://127.0.0.1:1380,=http://127.0.0.1:2380,new4=http://127.0.0.1:4380"
	if cfg.InitialClusterRaw != want || cfg.InitialClusterState != "existing" || !cfg.InitialClusterSet {
		t.Fatalf("initial cluster %q, state %q; want %q, existing", cfg.InitialClusterRaw, cfg.InitialClusterState, want)
	}
}

// TestRecordedJoinBelongsToThisMember: a recorded join resumes only with
// the name and peer URLs it was recorded with; another member's record is
// refused with the flags that would finish it.
func TestRecordedJoinBelongsToThisMember(t *testing.T) {
	cfg := testConfig(t, "new4", "http://127.0.0.1:4380")
	if st, err := loadState(cfg); st != nil || err != nil {
		t.Fatalf("no record: %v, %v", st, err)
	}
	rec := &state{Name: "new4", PeerURLs: []string{"http://127.0.0.1:4380"}, ID: membership.IDString(4)}
	if err := saveState(cfg.DataDir, rec); err != nil {
		t.Fatal(err)
	}
	if st, err := loadState(cfg); err != nil || st.ID != rec.ID {
		t.Fatalf("own record: %+v, %v", st, err)
	}
	other := testConfig(t, "other", "http://127.0.0.1:5380")
	other.DataDir = cfg.DataDir
	_, err := loadState(other)
	if err == nil || !strings.Contains(err.Error(), "--name=new4") || !strings.Contains(err.Error(), "--initial-advertise-peer-urls=http://127.0.0.1:4380") {
		t.Fatalf("another member's record: %v; want a refusal with the flags that finish it", err)
	}
}
