package robustness

import (
	"bufio"
	"bytes"
	"io"
	"math/rand/v2"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"time"
)

// The network between members. Every member advertises a proxy's address
// as its peer URL and listens behind it, so all peer traffic to a member
// (raft streams, snapshots, forwarded requests) passes its proxy. A peer
// connection starts with an HTTP request naming its sender (X-Cadre-From),
// so a proxy knows each connection's direction, from -> to, and applies
// the network's rules to it: blocked (the connection is cut and new ones
// refused), delayed (every chunk waits), or lossy (connections are cut at
// random). Rules are keyed by member ID (16 hex digits); "*" matches any.
type network struct {
	mu      sync.Mutex
	blocked map[[2]string]bool
	delay   map[[2]string]time.Duration
	lossy   map[[2]string]bool
	proxies []*proxy
}

func newNetwork() *network {
	return &network{blocked: map[[2]string]bool{}, delay: map[[2]string]time.Duration{}, lossy: map[[2]string]bool{}}
}

func match[V any](m map[[2]string]V, from, to string) (V, bool) {
	for _, k := range [][2]string{{from, to}, {"*", to}, {from, "*"}} {
		if v, ok := m[k]; ok {
			return v, true
		}
	}
	var zero V
	return zero, false
}

func (n *network) isBlocked(from, to string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	b, _ := match(n.blocked, from, to)
	return b
}

func (n *network) delayOf(from, to string) time.Duration {
	n.mu.Lock()
	defer n.mu.Unlock()
	d, _ := match(n.delay, from, to)
	return d
}

func (n *network) isLossy(from, to string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	b, _ := match(n.lossy, from, to)
	return b
}

// block cuts from -> to (either may be "*") until heal.
func (n *network) block(from, to string) {
	n.mu.Lock()
	n.blocked[[2]string{from, to}] = true
	ps := append([]*proxy(nil), n.proxies...)
	n.mu.Unlock()
	for _, p := range ps {
		p.cut(func(f, t string) bool { return n.isBlocked(f, t) })
	}
}

func (n *network) setDelay(from, to string, d time.Duration) {
	n.mu.Lock()
	n.delay[[2]string{from, to}] = d
	n.mu.Unlock()
}

func (n *network) setLossy(from, to string) {
	n.mu.Lock()
	n.lossy[[2]string{from, to}] = true
	n.mu.Unlock()
}

// heal lifts every rule.
func (n *network) heal() {
	n.mu.Lock()
	n.blocked, n.delay, n.lossy = map[[2]string]bool{}, map[[2]string]time.Duration{}, map[[2]string]bool{}
	n.mu.Unlock()
}

func (n *network) close() {
	n.mu.Lock()
	ps := n.proxies
	n.mu.Unlock()
	for _, p := range ps {
		p.close()
	}
}

// proxy forwards one member's inbound peer traffic.
type proxy struct {
	net    *network
	ln     net.Listener
	target string
	to     string // the member's ID, set once known

	mu    sync.Mutex
	conns map[*pconn]bool
	done  chan struct{}
}

type pconn struct {
	from     string
	in, out  net.Conn
	closeOne sync.Once
}

func (c *pconn) close() {
	c.closeOne.Do(func() {
		c.in.Close()
		if c.out != nil {
			c.out.Close()
		}
	})
}

// listenProxy listens on a free loopback port; target is set by serve.
func (n *network) listenProxy() (*proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &proxy{net: n, ln: ln, conns: map[*pconn]bool{}, done: make(chan struct{})}
	n.mu.Lock()
	n.proxies = append(n.proxies, p)
	n.mu.Unlock()
	return p, nil
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) serve(target string) {
	p.target = target
	go func() {
		defer close(p.done)
		for {
			c, err := p.ln.Accept()
			if err != nil {
				return
			}
			go p.handle(c)
		}
	}()
}

func (p *proxy) setMember(id string) {
	p.mu.Lock()
	p.to = id
	p.mu.Unlock()
}

func (p *proxy) member() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.to
}

func (p *proxy) handle(in net.Conn) {
	// The request line and headers name the sender; read at most 16 KiB
	// of them, within 2 s (a peer writes them at once).
	_ = in.SetReadDeadline(time.Now().Add(2 * time.Second))
	br := bufio.NewReaderSize(in, 16<<10)
	var head bytes.Buffer
	for head.Len() < 16<<10 {
		line, err := br.ReadSlice('\n')
		head.Write(line)
		if err != nil {
			in.Close()
			return
		}
		if len(bytes.TrimSpace(line)) == 0 {
			break
		}
	}
	_ = in.SetReadDeadline(time.Time{})
	from := ""
	if _, rest, ok := bytes.Cut(head.Bytes(), []byte("\r\n")); ok {
		if h, err := textproto.NewReader(bufio.NewReader(bytes.NewReader(rest))).ReadMIMEHeader(); err == nil || len(h) > 0 {
			from = strings.ToLower(h.Get("X-Cadre-From"))
		}
	}
	to := p.member()
	if p.net.isBlocked(from, to) {
		in.Close()
		return
	}
	out, err := net.DialTimeout("tcp", p.target, 2*time.Second)
	if err != nil {
		in.Close()
		return
	}
	c := &pconn{from: from, in: in, out: out}
	p.mu.Lock()
	p.conns[c] = true
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.conns, c)
		p.mu.Unlock()
		c.close()
	}()
	if _, err := out.Write(head.Bytes()); err != nil {
		return
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.copy(out, br, from, to, c) }()
	go func() { defer wg.Done(); p.copy(in, out, to, from, c) }()
	wg.Wait()
}

// copy moves bytes from src to dst for the direction from -> to, with the
// network's delay and loss applied to every chunk.
func (p *proxy) copy(dst io.Writer, src io.Reader, from, to string, c *pconn) {
	defer c.close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if d := p.net.delayOf(from, to); d > 0 {
				time.Sleep(d)
			}
			if p.net.isLossy(from, to) && rand.IntN(4) == 0 {
				return // a lost segment TCP cannot recover from: the connection dies
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// cut closes the live connections that blocked now forbids.
func (p *proxy) cut(blocked func(from, to string) bool) {
	to := p.member()
	p.mu.Lock()
	var victims []*pconn
	for c := range p.conns {
		if blocked(c.from, to) {
			victims = append(victims, c)
		}
	}
	p.mu.Unlock()
	for _, c := range victims {
		c.close()
	}
}

func (p *proxy) close() {
	p.ln.Close()
	<-p.done
	p.mu.Lock()
	cs := make([]*pconn, 0, len(p.conns))
	for c := range p.conns {
		cs = append(cs, c)
	}
	p.mu.Unlock()
	for _, c := range cs {
		c.close()
	}
}
