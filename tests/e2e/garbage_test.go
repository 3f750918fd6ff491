package e2e

import (
	"testing"
	"time"

	"github.com/cadrekv/cadre/tests/framework"
)

// TestGarbageOnPlainPorts is the bad-input table's rows for plain-text
// ports: garbage bytes on the client and the peer port are answered or
// the connection closed; connections that send half a request header and
// then nothing (a slowloris) are closed by the header timeout; the member
// serves throughout, and its goroutines return to where they were.
func TestGarbageOnPlainPorts(t *testing.T) {
	framework.SkipUnlessCadre(t) // the timeouts are Cadre's
	c := framework.NewCluster(t, 1, framework.Options{ExtraFlags: []string{"--enable-pprof"}})
	m := c.Members[0]
	cli := c.Client(t)
	base := goroutines(t, m.Endpoint(), nil)

	for _, addr := range []string{hostPort(m.Endpoint()), hostPort(m.PeerURL())} {
		expectGarbageClosed(t, addr)
		slow := openConns(t, addr, 30, []byte("GET /health HTTP/1.1\r\nHost: x\r\n"))
		if _, err := cli.Put(ctxFor(t, 5*time.Second), "garbage/served", addr); err != nil {
			t.Errorf("a put while %d slow connections hang on %s: %v", len(slow), addr, err)
		}
		expectAllClosed(t, addr, "slow", slow, 20*time.Second)
	}
	expectGoroutinesBack(t, m.Endpoint(), nil, base, "the garbage and slow connections")
	if resp, err := cli.Get(ctxFor(t, 5*time.Second), "garbage/served"); err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("member after garbage: %v (err %v)", resp, err)
	}
}
