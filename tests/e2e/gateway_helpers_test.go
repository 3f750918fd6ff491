package e2e

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Helpers for the JSON gateway tests: plain net/http against a member's
// client URL (127.0.0.1), as curl-based tooling uses it.

// gwAnswer is one gateway answer: its status, headers and JSON body.
type gwAnswer struct {
	Status int
	Header http.Header
	Raw    string
	JSON   map[string]any // nil when the body is not one JSON object
}

func (a gwAnswer) String() string { return fmt.Sprintf("HTTP %d %s", a.Status, a.Raw) }

// gwPost posts body to endpoint+path; headers are "Name: value" strings.
func gwPost(t testing.TB, endpoint, path, body string, headers ...string) gwAnswer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return gwDo(t, ctx, http.MethodPost, endpoint+path, strings.NewReader(body), headers...)
}

func gwDo(t testing.TB, ctx context.Context, method, url string, body io.Reader, headers ...string) gwAnswer {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Set(k, strings.TrimSpace(v))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the answer: %v", method, url, err)
	}
	a := gwAnswer{Status: resp.StatusCode, Header: resp.Header, Raw: string(raw)}
	_ = json.Unmarshal(raw, &a.JSON)
	return a
}

// gwOK posts and fails the test unless the answer is 200 with JSON.
func gwOK(t testing.TB, endpoint, path, body string, headers ...string) map[string]any {
	t.Helper()
	a := gwPost(t, endpoint, path, body, headers...)
	if a.Status != http.StatusOK || a.JSON == nil {
		t.Fatalf("POST %s %s: %v, want 200 with a JSON object", path, body, a)
	}
	return a.JSON
}

// gwWantError checks an error answer: HTTP status, gRPC code and message,
// as etcd's gateway writes them ({"code":N,"message":"..."}).
func gwWantError(t testing.TB, a gwAnswer, status, code int, message string) {
	t.Helper()
	if a.Status != status || a.JSON == nil || jnum(a.JSON, "code") != float64(code) || jstr(a.JSON, "message") != message {
		t.Errorf("answer %v, want HTTP %d with {\"code\":%d,\"message\":%q}", a, status, code, message)
	}
	if ct := a.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("error answer Content-Type %q, want application/json", ct)
	}
}

// jget follows keys (and "0", "1"... for array elements) into v.
func jget(v any, path ...string) any {
	for _, p := range path {
		switch x := v.(type) {
		case map[string]any:
			v = x[p]
		case []any:
			var i int
			if _, err := fmt.Sscan(p, &i); err != nil || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

func jstr(v any, path ...string) string {
	s, _ := jget(v, path...).(string)
	return s
}

func jnum(v any, path ...string) float64 {
	f, _ := jget(v, path...).(float64)
	return f
}

func jlen(v any, path ...string) int {
	a, _ := jget(v, path...).([]any)
	return len(a)
}

// b64 is how the gateway encodes bytes fields (keys, values).
func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// gwLines reads a streamed answer line by line into a channel, closed
// when the stream ends; each line is decoded JSON.
func gwLines(t testing.TB, body io.Reader) <-chan map[string]any {
	t.Helper()
	ch := make(chan map[string]any, 64)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(body)
		sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				m = map[string]any{"unparsable": sc.Text()}
			}
			ch <- m
		}
	}()
	return ch
}

// gwNext waits for the next streamed line.
func gwNext(t testing.TB, ch <-chan map[string]any, what string) map[string]any {
	t.Helper()
	select {
	case m, ok := <-ch:
		if !ok {
			t.Fatalf("%s: the stream ended", what)
		}
		return m
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: nothing streamed within 10s", what)
	}
	return nil
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
