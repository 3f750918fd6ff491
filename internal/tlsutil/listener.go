package tlsutil

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"
)

// DefaultHandshakeTimeout bounds a TLS handshake on either port.
const DefaultHandshakeTimeout = 10 * time.Second

// Listener wraps ln so that Accept returns only connections that finished
// a TLS handshake within timeout. Handshakes run off the accept loop: a
// client that never finishes one (or sends garbage, or plain HTTP) costs
// one goroutine for at most timeout and never delays the others. Failed
// handshakes are logged with the reason (a peer refused for its
// certificate must be visible to the operator).
func Listener(ln net.Listener, cfg *tls.Config, timeout time.Duration, lg *slog.Logger, port string) net.Listener {
	if timeout <= 0 {
		timeout = DefaultHandshakeTimeout
	}
	l := &listener{Listener: ln, cfg: cfg, timeout: timeout, lg: lg, port: port,
		conns: make(chan net.Conn), done: make(chan struct{}), errc: make(chan error, 1)}
	go l.acceptLoop()
	return l
}

type listener struct {
	net.Listener
	cfg     *tls.Config
	timeout time.Duration
	lg      *slog.Logger
	port    string

	conns chan net.Conn
	errc  chan error
	done  chan struct{}
	once  sync.Once
}

func (l *listener) acceptLoop() {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			l.errc <- err
			return
		}
		go l.handshake(c)
	}
}

func (l *listener) handshake(c net.Conn) {
	tc := tls.Server(c, l.cfg)
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
	stop := context.AfterFunc(ctx, func() { c.Close() }) // also ends a handshake blocked in a read
	err := tc.HandshakeContext(ctx)
	stopped := stop()
	cancel()
	if err != nil || !stopped {
		if err == nil {
			err = context.DeadlineExceeded
		}
		c.Close()
		// etcd's words ("rejected connection on client endpoint"), which
		// operators and etcd's tests search for.
		l.lg.Warn("rejected connection on "+l.port+" endpoint: TLS handshake failed", "port", l.port, "remote-addr", c.RemoteAddr().String(), "error", err.Error())
		return
	}
	select {
	case l.conns <- tc:
	case <-l.done:
		tc.Close()
	}
}

func (l *listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case err := <-l.errc:
		l.errc <- err // every later Accept fails the same way
		return nil, err
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *listener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}
