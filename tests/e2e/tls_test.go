package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/cadrekv/cadre/tests/framework"
)

// TestTLSCluster: three members with TLS and client certificates on both
// ports serve the real etcdctl (--cacert/--cert/--key) and client/v3.
func TestTLSCluster(t *testing.T) {
	ct := framework.NewClusterTLS(t)
	c := framework.NewCluster(t, 3, framework.Options{TLS: ct})
	ctx := ctxFor(t, time.Minute)
	if !strings.HasPrefix(c.Members[0].Endpoint(), "https://") {
		t.Fatalf("endpoint %s is not https", c.Members[0].Endpoint())
	}
	if res := c.Etcdctl(t, "put", "/tls/a", "1"); res.Code != 0 || strings.TrimSpace(res.Stdout) != "OK" {
		t.Fatalf("etcdctl put over TLS: %s", res)
	}
	if res := c.Etcdctl(t, "get", "/tls/a", "--print-value-only"); res.Code != 0 || strings.TrimSpace(res.Stdout) != "1" {
		t.Fatalf("etcdctl get over TLS: %s", res)
	}
	ml, err := c.Client(t).MemberList(ctx)
	if err != nil || len(ml.Members) != 3 {
		t.Fatalf("member list over TLS: %v (err %v)", ml, err)
	}
	for _, m := range ml.Members {
		if len(m.PeerURLs) != 1 || !strings.HasPrefix(m.PeerURLs[0], "https://") {
			t.Errorf("member %s peer URLs %v, want https", m.Name, m.PeerURLs)
		}
	}
}
