package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/websocket"

	"github.com/cadrekv/cadre/tests/framework"
)

// TestGatewayWatch: POST /v3/watch with a body of WatchRequests (as curl
// sends it) answers a stream of {"result":WatchResponse} lines that stays
// open: the created notices, past events from start_revision, then the
// events of writes made later through client/v3.
func TestGatewayWatch(t *testing.T) {
	t.Parallel()
	c := framework.NewCluster(t, 1, framework.Options{})
	ep := c.Members[0].Endpoint()
	cli := c.Client(t)

	first, err := cli.Put(ctxFor(t, opTimeout), "gww/k", "before")
	if err != nil {
		t.Fatal(err)
	}
	body := `{"create_request":{"key":"` + b64("gww/k") + `","start_revision":"` + itoa(first.Header.Revision) + `"}}` + "\n" +
		`{"create_request":{"key":"` + b64("gww/p/") + `","range_end":"` + b64("gww/p0") + `","prev_kv":true}}`
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep+"/v3/watch", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("watch: HTTP %d, Content-Type %q, want 200 application/json", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	lines := gwLines(t, resp.Body)

	// The first watch (ID 0, left out as a zero value) replays the put
	// made before it from start_revision; the second is ID 1.
	seen := map[string]bool{}
	var replayed map[string]any
	for len(seen) < 2 || replayed == nil {
		m := gwNext(t, lines, "watch creation and replay")
		r := jget(m, "result")
		if r == nil {
			t.Fatalf("watch line %v, want {\"result\":...}", m)
		}
		switch {
		case jget(r, "created") == true:
			seen[jstr(r, "watch_id")] = true
		case jlen(r, "events") > 0:
			replayed = r.(map[string]any)
		}
	}
	if !seen[""] || !seen["1"] {
		t.Fatalf("created notices for watch IDs %v, want 0 (left out) and \"1\"", seen)
	}
	if jstr(replayed, "events", "0", "kv", "value") != b64("before") || jstr(replayed, "watch_id") != "" {
		t.Fatalf("replayed event %v, want gww/k=before on watch 0", replayed)
	}

	put, err := cli.Put(ctxFor(t, opTimeout), "gww/p/x", "after")
	if err != nil {
		t.Fatal(err)
	}
	ev := jget(gwNext(t, lines, "event of the client/v3 put"), "result")
	if jstr(ev, "watch_id") != "1" || jstr(ev, "events", "0", "kv", "key") != b64("gww/p/x") ||
		jstr(ev, "events", "0", "kv", "value") != b64("after") || jstr(ev, "events", "0", "kv", "mod_revision") != itoa(put.Header.Revision) ||
		jget(ev, "events", "0", "type") != nil {
		t.Fatalf("event %v, want a PUT (type left out) of gww/p/x=after at revision %d on watch 1", ev, put.Header.Revision)
	}
	if _, err := cli.Delete(ctxFor(t, opTimeout), "gww/p/x"); err != nil {
		t.Fatal(err)
	}
	ev = jget(gwNext(t, lines, "event of the client/v3 delete"), "result")
	if jstr(ev, "events", "0", "type") != "DELETE" || jstr(ev, "events", "0", "prev_kv", "value") != b64("after") {
		t.Fatalf("event %v, want a DELETE of gww/p/x with prev_kv after", ev)
	}
}

// TestGatewayWatchInterleaved: a client that keeps its request body open
// gets answers to each WatchRequest as it sends it (created, then events,
// then a second watch on the same stream), and a cancel_request ends a
// watch. Cadre-only: etcd's HTTP/1.1 server reads the whole request body
// before it answers, so there such a client waits forever; Cadre reads
// and writes at once (what a bidirectional stream means), which changes
// nothing for a client that sends its whole body first.
func TestGatewayWatchInterleaved(t *testing.T) {
	t.Parallel()
	framework.SkipUnlessCadre(t)
	c := framework.NewCluster(t, 1, framework.Options{})
	ep := c.Members[0].Endpoint()
	cli := c.Client(t)

	pr, pw := io.Pipe()
	defer pw.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	context.AfterFunc(ctx, func() { pw.CloseWithError(ctx.Err()) }) // never hang on a stuck body
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep+"/v3/watch", pr)
	if err != nil {
		t.Fatal(err)
	}
	write := func(s string) error { _, err := io.WriteString(pw, s+"\n"); return err }
	send := func(s string) {
		t.Helper()
		if err := write(s); err != nil {
			t.Fatalf("writing %s to the watch body: %v", s, err)
		}
	}
	// The first request goes out while Do waits for the answer's headers.
	go func() { _ = write(`{"create_request":{"key":"` + b64("gwi/a") + `"}}`) }()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := gwLines(t, resp.Body)
	if r := jget(gwNext(t, lines, "first created"), "result"); jget(r, "created") != true {
		t.Fatalf("first line %v, want created", r)
	}
	send(`{"create_request":{"key":"` + b64("gwi/b") + `"}}`)
	if r := jget(gwNext(t, lines, "second created"), "result"); jget(r, "created") != true || jstr(r, "watch_id") != "1" {
		t.Fatalf("line %v, want watch 1 created", r)
	}
	if _, err := cli.Put(ctxFor(t, opTimeout), "gwi/b", "x"); err != nil {
		t.Fatal(err)
	}
	if r := jget(gwNext(t, lines, "event on watch 1"), "result"); jstr(r, "watch_id") != "1" || jstr(r, "events", "0", "kv", "key") != b64("gwi/b") {
		t.Fatalf("line %v, want the put of gwi/b on watch 1", r)
	}
	send(`{"cancel_request":{"watch_id":"1"}}`)
	if r := jget(gwNext(t, lines, "cancel"), "result"); jget(r, "canceled") != true || jstr(r, "watch_id") != "1" {
		t.Fatalf("line %v, want watch 1 canceled", r)
	}
}

// TestGatewayWebSocket: the gateway over WebSocket, as browsers use it
// (etcd puts grpc-websocket-proxy in front of its gateway): each message
// sent is one request of the stream, each answer line one message back.
func TestGatewayWebSocket(t *testing.T) {
	t.Parallel()
	c := framework.NewCluster(t, 1, framework.Options{})
	ep := c.Members[0].Endpoint()
	cli := c.Client(t)

	wsURL := "ws" + strings.TrimPrefix(ep, "http") + "/v3/watch"
	ws, err := websocket.Dial(wsURL, "", ep)
	if err != nil {
		t.Fatalf("websocket dial %s: %v", wsURL, err)
	}
	defer ws.Close()
	_ = ws.SetDeadline(time.Now().Add(20 * time.Second))
	recv := func(what string) map[string]any {
		t.Helper()
		var msg string
		if err := websocket.Message.Receive(ws, &msg); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(msg), &m); err != nil {
			t.Fatalf("%s: message %q is not JSON: %v", what, msg, err)
		}
		return m
	}
	if err := websocket.Message.Send(ws, `{"create_request":{"key":"`+b64("gws/k")+`"}}`); err != nil {
		t.Fatal(err)
	}
	if r := jget(recv("created"), "result"); jget(r, "created") != true {
		t.Fatalf("first message %v, want the watch created", r)
	}
	if _, err := cli.Put(ctxFor(t, opTimeout), "gws/k", "over-ws"); err != nil {
		t.Fatal(err)
	}
	if r := jget(recv("event"), "result"); jstr(r, "events", "0", "kv", "value") != b64("over-ws") {
		t.Fatalf("second message %v, want the put of gws/k=over-ws", r)
	}

	// A unary call over WebSocket: one request, the answer as one message.
	// Cadre-only: etcd's gateway reads a unary request's body to its end
	// before it calls, which over a WebSocket never comes.
	if !framework.IsCadre() {
		return
	}
	rws, err := websocket.Dial("ws"+strings.TrimPrefix(ep, "http")+"/v3/kv/range", "", ep)
	if err != nil {
		t.Fatal(err)
	}
	defer rws.Close()
	_ = rws.SetDeadline(time.Now().Add(20 * time.Second))
	if err := websocket.Message.Send(rws, `{"key":"`+b64("gws/k")+`"}`); err != nil {
		t.Fatal(err)
	}
	var msg string
	if err := websocket.Message.Receive(rws, &msg); err != nil || !strings.Contains(msg, `"value":"`+b64("over-ws")+`"`) {
		t.Fatalf("range over WebSocket: %q %v, want the range answer with gws/k=over-ws", msg, err)
	}
}
