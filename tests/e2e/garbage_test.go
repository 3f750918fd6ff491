package e2e

import (
	"net"
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
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = conn.Write([]byte("\x00\x01garbage\r\n\r\n"))
		if !closedWithin(conn, 5*time.Second) {
			t.Errorf("%s kept a connection that sent garbage", addr)
		}
		conn.Close()

		var slow []net.Conn
		for range 30 {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = c.Write([]byte("GET /health HTTP/1.1\r\nHost: x\r\n"))
			slow = append(slow, c)
		}
		if _, err := cli.Put(ctxFor(t, 5*time.Second), "garbage/served", addr); err != nil {
			t.Errorf("a put while %d slow connections hang on %s: %v", len(slow), addr, err)
		}
		start := time.Now()
		for i, c := range slow {
			if !closedWithin(c, 20*time.Second) {
				t.Fatalf("%s: slow connection %d still open after %v", addr, i, time.Since(start))
			}
			c.Close()
		}
	}
	var after int
	for deadline := time.Now().Add(5 * time.Second); ; {
		after = goroutines(t, m.Endpoint(), nil)
		if after <= base+5 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if after > base+5 {
		t.Errorf("goroutines grew from %d to %d after the garbage and slow connections", base, after)
	}
	if resp, err := cli.Get(ctxFor(t, 5*time.Second), "garbage/served"); err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("member after garbage: %v (err %v)", resp, err)
	}
}
