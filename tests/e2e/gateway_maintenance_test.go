package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cadrekv/cadre/tests/framework"
)

// TestGatewayMaintenance: status, hash, hashkv, alarm, defragment,
// snapshot (a stream whose last blob is the sha256 of the others),
// transfer-leadership to no one, and the cluster's member list, through
// /v3/maintenance/* and /v3/cluster/*, with etcd's field names.
func TestGatewayMaintenance(t *testing.T) {
	t.Parallel()
	c := framework.NewCluster(t, 3, framework.Options{})
	ep := c.Members[0].Endpoint()
	cli := c.Client(t)
	put, err := cli.Put(ctxFor(t, opTimeout), "gwm/k", "v")
	if err != nil {
		t.Fatal(err)
	}

	st := gwOK(t, ep, "/v3/maintenance/status", `{}`)
	for _, f := range []string{"version", "dbSize", "leader", "raftIndex", "raftTerm", "raftAppliedIndex", "dbSizeInUse", "storageVersion", "dbSizeQuota"} {
		if jstr(st, f) == "" {
			t.Errorf("status: %q missing (or not a string): %v", f, st)
		}
	}
	if jstr(st, "version") != "3.7.3" || jget(st, "downgradeInfo") == nil {
		t.Errorf("status: %v, want version \"3.7.3\" and downgradeInfo {}", st)
	}

	hkv := gwOK(t, ep, "/v3/maintenance/hashkv", `{}`)
	if jget(hkv, "hash") == nil || jstr(hkv, "compact_revision") != "-1" || jstr(hkv, "hash_revision") == "" || jget(hkv, "header") == nil {
		t.Errorf("hashkv: %v, want header, hash, compact_revision \"-1\" (never compacted), hash_revision", hkv)
	}
	// Every member hashes the same history to the same value.
	rev := `{"revision":"` + strconv.FormatInt(put.Header.Revision, 10) + `"}`
	want := jnum(gwOK(t, ep, "/v3/maintenance/hashkv", rev), "hash")
	for _, m := range c.Members[1:] {
		eventually(t, 10*time.Second, "hashkv of "+m.Endpoint(), func() error {
			if got := jnum(gwOK(t, m.Endpoint(), "/v3/maintenance/hashkv", rev), "hash"); got != want {
				return fmt.Errorf("hash %v, want %v", got, want)
			}
			return nil
		})
	}
	if h := gwOK(t, ep, "/v3/maintenance/hash", `{}`); jget(h, "hash") == nil || jget(h, "header") == nil {
		t.Errorf("hash: %v, want header and hash", h)
	}
	if a := gwOK(t, ep, "/v3/maintenance/alarm", `{"action":"GET"}`); jget(a, "header") == nil || jget(a, "alarms") != nil {
		t.Errorf("alarm list: %v, want a header and no alarms", a)
	}
	if d := gwPost(t, ep, "/v3/maintenance/defragment", `{}`); d.Status != http.StatusOK || d.Raw != "{}" {
		t.Errorf("defragment: %v, want 200 {} (etcd's answer has no header)", d)
	}
	// MoveLeader is answered by the leader only; to no member it fails.
	leader := c.Members[c.Leader(t)].Endpoint()
	gwWantError(t, gwPost(t, leader, "/v3/maintenance/transfer-leadership", `{"targetID":"123"}`),
		400, 9, "etcdserver: bad leader transferee")

	// Snapshot: every line a chunk with remaining_bytes counting down,
	// the last blob the sha256 of all the others.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	snap := gwDo(t, ctx, http.MethodPost, ep+"/v3/maintenance/snapshot", strings.NewReader(`{}`))
	lines := strings.Split(strings.TrimSpace(snap.Raw), "\n")
	if snap.Status != http.StatusOK || len(lines) < 2 {
		t.Fatalf("snapshot: HTTP %d, %d lines, want 200 and at least a chunk and the checksum", snap.Status, len(lines))
	}
	var data, sum []byte
	for i, l := range lines {
		m := map[string]any{}
		if err := json.Unmarshal([]byte(l), &m); err != nil || jget(m, "result") == nil {
			t.Fatalf("snapshot line %d %.200s: want {\"result\":...}", i, l)
		}
		blob, err := base64.StdEncoding.DecodeString(jstr(m, "result", "blob"))
		if err != nil {
			t.Fatalf("snapshot line %d: blob not base64: %v", i, err)
		}
		if i == len(lines)-1 {
			sum = blob
			if jget(m, "result", "remaining_bytes") != nil {
				t.Errorf("snapshot checksum line: remaining_bytes %v, want left out (0)", jget(m, "result", "remaining_bytes"))
			}
			continue
		}
		data = append(data, blob...)
	}
	if got := sha256.Sum256(data); !bytes.Equal(got[:], sum) || len(data) < 4096 {
		t.Errorf("snapshot: %d bytes whose sha256 is %x, last blob %x: want them equal", len(data), got, sum)
	}

	ml := gwOK(t, ep, "/v3/cluster/member/list", `{}`)
	if jlen(ml, "members") != 3 || jget(ml, "header", "revision") != nil || jstr(ml, "header", "cluster_id") == "" {
		t.Fatalf("member list: %v, want 3 members and a header with cluster_id but no revision (as etcd's)", ml)
	}
	for i := range 3 {
		m := jget(ml, "members", strconv.Itoa(i))
		if jstr(m, "ID") == "" || jstr(m, "name") == "" || jstr(m, "peerURLs", "0") == "" || jstr(m, "clientURLs", "0") == "" {
			t.Errorf("member %d: %v, want ID (a string), name, peerURLs, clientURLs", i, m)
		}
	}
}
