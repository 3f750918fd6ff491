package daemon

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"time"
)

// http2Preface starts every HTTP/2 connection with prior knowledge, which
// is how gRPC clients talk to a plain-text port. Everything else is served
// by net/http (health, metrics, version, pprof, the JSON gateway).
var http2Preface = []byte("PRI * HTTP/2.0")

// splitListener sorts connections accepted on one client port into a gRPC
// listener and an HTTP/1 listener by their first bytes, so one URL serves
// both, as etcd's does. gRPC keeps its native server (faster than the
// ServeHTTP bridge).
type splitListener struct {
	ln         net.Listener
	grpc, http *chanListener
	closeOnce  sync.Once
}

func newSplitListener(ln net.Listener) *splitListener {
	s := &splitListener{
		ln:   ln,
		grpc: newChanListener(ln.Addr()),
		http: newChanListener(ln.Addr()),
	}
	go s.acceptLoop()
	return s
}

func (s *splitListener) acceptLoop() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			s.close()
			return
		}
		go s.route(c)
	}
}

// route peeks at the first bytes with a deadline, so a silent client can
// hold a goroutine only briefly. It decides at the first byte that cannot
// start the preface, so a short HTTP/1 request or garbage is answered at
// once rather than after the deadline.
func (s *splitListener) route(c net.Conn) {
	// HTTP/2 over TLS carries gRPC and JSON gateway calls alike (curl
	// negotiates h2 on https): net/http serves such a connection, the
	// *tls.Conn itself so it sees h2, and hands gRPC requests to the gRPC
	// server (grpcOrHTTP), as etcd serves TLS.
	if tc, ok := c.(*tls.Conn); ok && tc.ConnectionState().NegotiatedProtocol == "h2" {
		s.http.deliver(c)
		return
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReaderSize(c, 4096)
	var head []byte
	var err error
	for n := 1; n <= len(http2Preface); n++ {
		if head, err = br.Peek(n); err != nil || !bytes.Equal(head, http2Preface[:n]) {
			break
		}
	}
	_ = c.SetReadDeadline(time.Time{})
	var pc net.Conn = &peekedConn{Conn: c, r: br}
	if tc, ok := c.(*tls.Conn); ok {
		pc = &peekedTLSConn{peekedConn{Conn: c, r: br}, tc}
	}
	if bytes.Equal(head, http2Preface) {
		s.grpc.deliver(pc)
		return
	}
	if err != nil && len(head) == 0 {
		c.Close()
		return
	}
	s.http.deliver(pc)
}

func (s *splitListener) close() {
	s.closeOnce.Do(func() {
		s.ln.Close()
		s.grpc.Close()
		s.http.Close()
	})
}

type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// peekedTLSConn keeps the TLS state visible through the peek (gRPC's
// credentials read it to expose the client certificate to handlers).
type peekedTLSConn struct {
	peekedConn
	tc *tls.Conn
}

func (c *peekedTLSConn) ConnectionState() tls.ConnectionState { return c.tc.ConnectionState() }

// chanListener is a net.Listener fed by splitListener.
type chanListener struct {
	addr   net.Addr
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *chanListener) deliver(c net.Conn) {
	select {
	case l.conns <- c:
	case <-l.closed:
		c.Close()
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }
