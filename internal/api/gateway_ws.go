package api

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"

	"golang.org/x/net/websocket"
)

// The gateway over WebSocket, as etcd serves it (grpc-websocket-proxy in
// front of its gateway): each message the client sends is one line of the
// request body of a POST to the same path, and each line of the answer is
// sent back as one text message. Browsers use it to watch, since they
// cannot stream a request body. A browser cannot set Authorization on a
// WebSocket either, so the token may come as the subprotocol
// "Bearer, <token>" or as a "token" cookie.

// isWebSocketUpgrade is a WebSocket opening handshake.
func isWebSocketUpgrade(r *http.Request) bool {
	return headerHasToken(r.Header, "Connection", "upgrade") && headerHasToken(r.Header, "Upgrade", "websocket")
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

func (g *gateway) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	srv := websocket.Server{
		// Any origin, as etcd; the only subprotocol answered is "Bearer",
		// to a client that offered its token that way.
		Handshake: func(cfg *websocket.Config, _ *http.Request) error {
			cfg.Protocol = nil
			if strings.HasPrefix(r.Header.Get("Sec-WebSocket-Protocol"), "Bearer") {
				cfg.Protocol = []string{"Bearer"}
			}
			return nil
		},
		Handler: func(ws *websocket.Conn) { g.proxyWebSocket(ws, r) },
	}
	srv.ServeHTTP(w, r)
}

func (g *gateway) proxyWebSocket(ws *websocket.Conn, r *http.Request) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	reqR, reqW := io.Pipe()
	respR, respW := io.Pipe()
	context.AfterFunc(ctx, func() {
		reqW.CloseWithError(io.EOF)
		respW.CloseWithError(io.EOF)
	})

	inner, err := http.NewRequestWithContext(ctx, http.MethodPost, r.URL.String(), reqR)
	if err != nil {
		return
	}
	inner.RemoteAddr = r.RemoteAddr
	for _, h := range []string{"Origin", "Referer"} {
		if v := r.Header.Get(h); v != "" {
			inner.Header.Set(h, v)
		}
	}
	if p := r.Header.Get("Sec-WebSocket-Protocol"); p != "" {
		inner.Header.Set("Authorization", bearerFromSubprotocol(p))
	}
	if c, err := r.Cookie("token"); err == nil {
		inner.Header.Set("Authorization", "Bearer "+c.Value)
	}

	go func() {
		defer cancel()
		g.ServeHTTP(&wsResponseWriter{w: respW, header: http.Header{}}, inner)
	}()
	go func() {
		defer cancel()
		for {
			var msg []byte
			if err := websocket.Message.Receive(ws, &msg); err != nil {
				return // closed by the client
			}
			if _, err := reqW.Write(append(msg, '\n')); err != nil {
				return
			}
		}
	}()
	sc := bufio.NewScanner(respR)
	sc.Buffer(make([]byte, 0, 64<<10), math.MaxInt32)
	for sc.Scan() {
		if len(sc.Bytes()) == 0 {
			continue
		}
		if err := websocket.Message.Send(ws, sc.Text()); err != nil {
			return
		}
	}
}

// bearerFromSubprotocol turns "Bearer, <token>" into "Bearer <token>"
// (anything else into "", which is no token).
func bearerFromSubprotocol(p string) string {
	_, tok, ok := strings.Cut(p, "Bearer,")
	if !ok {
		return ""
	}
	return fmt.Sprintf("Bearer %s", strings.TrimSpace(tok))
}

// wsResponseWriter collects the gateway's answer body for the WebSocket;
// status and headers have nowhere to go once the connection is upgraded.
type wsResponseWriter struct {
	w      io.Writer
	header http.Header
}

func (w *wsResponseWriter) Header() http.Header         { return w.header }
func (w *wsResponseWriter) Write(b []byte) (int, error) { return w.w.Write(b) }
func (w *wsResponseWriter) WriteHeader(int)             {}
func (w *wsResponseWriter) Flush()                      {} // each Write reaches the pipe at once
