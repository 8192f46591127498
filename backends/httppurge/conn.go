package httppurge

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"syscall"
	"time"
)

// The backend's own client sends each request on a keep-alive connection
// that the sending goroutine owns for the time of the request: it writes the
// request and reads the answer itself. net/http's Transport hands every
// request to two goroutines of the connection and back, which on a small
// machine costs about three times the CPU of the request itself; purges are
// many tiny requests, so this is where the time goes. Parsing the answer is
// left to net/http (http.ReadResponse). WithHTTPClient uses net/http
// instead.

// idleTimeout is how long an idle connection is kept for reuse: less than
// the shortest idle timeout of the caches (Varnish closes after 5 s).
const idleTimeout = 4 * time.Second

// aLongTimeAgo is a deadline in the past: it makes a blocked read or write
// return at once.
var aLongTimeAgo = time.Unix(1, 0)

// answer is what a node said to one request.
type answer struct {
	code       int
	status     string // "405 Not allowed."
	retryAfter time.Duration
	local      string // the client's address as the node saw it, when known
}

// dialer opens the own client's connections.
type dialer struct {
	net     net.Dialer
	tls     *tls.Config   // for https nodes; nil for the defaults
	timeout time.Duration // WithRequestTimeout: bounds the dial and each request
}

// pconn is one keep-alive connection to a node.
type pconn struct {
	nc       net.Conn
	br       *bufio.Reader
	bw       *bufio.Writer
	local    string
	lastUsed time.Time
}

// connPool keeps a node's idle connections.
type connPool struct {
	mu     sync.Mutex
	idle   []*pconn // most recently used last
	closed bool
}

// connSource says where [connPool.get] takes a connection from.
type connSource int

const (
	idleOrDialled connSource = iota // an idle connection if there is one, else a new one
	dialled                         // always a newly dialled connection
)

// get returns an idle connection, or dials a new one when src is dialled
// or none is idle. reused reports which.
func (p *connPool) get(ctx context.Context, n *node, d *dialer, src connSource) (c *pconn, reused bool, err error) {
	p.mu.Lock()
	for src == idleOrDialled && len(p.idle) > 0 {
		c = p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		if time.Since(c.lastUsed) < idleTimeout {
			p.mu.Unlock()
			return c, true, nil
		}
		c.nc.Close()
	}
	p.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	nc, err := d.net.DialContext(ctx, "tcp", n.addr)
	if err != nil {
		return nil, false, err
	}
	if n.scheme == "https" {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if d.tls != nil {
			cfg = d.tls.Clone()
		}
		if cfg.ServerName == "" {
			cfg.ServerName = n.hostname
		}
		tc := tls.Client(nc, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, false, err
		}
		nc = tc
	}
	c = &pconn{nc: nc, br: bufio.NewReaderSize(nc, 4<<10), bw: bufio.NewWriterSize(nc, 4<<10)}
	if tcp, ok := nc.LocalAddr().(*net.TCPAddr); ok {
		c.local = tcp.IP.String()
	}
	return c, false, nil
}

// put keeps c for reuse, or closes it when the pool is closed or c holds
// bytes beyond the answer it carried (they would be read as the next
// request's answer).
func (p *connPool) put(c *pconn) {
	c.lastUsed = time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || c.br.Buffered() > 0 {
		c.nc.Close()
		return
	}
	p.idle = append(p.idle, c)
}

// close closes the idle connections; connections in use are closed when
// they are put back.
func (p *connPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	p.dropIdleLocked()
}

// dropIdle closes the idle connections, keeping the pool open: when one
// turned out closed by the node, the others, idle as long or longer, are
// likely closed too.
func (p *connPool) dropIdle() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dropIdleLocked()
}

func (p *connPool) dropIdleLocked() {
	for _, c := range p.idle {
		c.nc.Close()
	}
	p.idle = nil
}

// roundTrip sends j to n over a pooled connection and reads the answer. A
// reused connection that the node had closed meanwhile is replaced by a
// newly dialled one, once (a purge can be sent again safely), and the
// pool's other idle connections are dropped.
func (p *connPool) roundTrip(ctx context.Context, n *node, j *job, d *dialer) (answer, error) {
	src := idleOrDialled
	for try := 0; ; try, src = try+1, dialled {
		c, reused, err := p.get(ctx, n, d, src)
		if err != nil {
			return answer{}, err
		}
		a, keep, err := c.do(ctx, n, j, d.timeout)
		if err == nil {
			if keep {
				p.put(c)
			} else {
				c.nc.Close()
			}
			return a, nil
		}
		c.nc.Close()
		if !reused || try > 0 || ctx.Err() != nil || !closedByPeer(err) {
			return a, err
		}
		p.dropIdle()
	}
}

// do sends one request on c and reads the answer, within timeout and ctx.
// keep reports whether c can carry another request.
func (c *pconn) do(ctx context.Context, n *node, j *job, timeout time.Duration) (a answer, keep bool, err error) {
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := c.nc.SetDeadline(deadline); err != nil {
		return a, false, err
	}
	stop := context.AfterFunc(ctx, func() { _ = c.nc.SetDeadline(aLongTimeAgo) })
	defer func() {
		if !stop() { // ctx ended: the deadline is spoilt
			keep = false
		}
	}()

	host := j.host
	if host == "" {
		host = n.host
	}
	w := c.bw
	w.WriteString(j.method)
	w.WriteByte(' ')
	w.WriteString(j.uri)
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.WriteString(host)
	w.WriteString("\r\n")
	w.WriteString(j.headerBlock)
	w.WriteString("\r\n")
	if err := w.Flush(); err != nil {
		return a, false, c.explain(ctx, err, timeout)
	}

	// Wait for the first byte apart: ReadResponse reports a connection
	// closed before it as an unexpected EOF, and such a connection is one
	// the node had closed while it was idle.
	if _, err := c.br.Peek(1); err != nil {
		return a, false, c.explain(ctx, err, timeout)
	}
	var res *http.Response
	for {
		res, err = http.ReadResponse(c.br, nil)
		if err != nil {
			return a, false, c.explain(ctx, err, timeout)
		}
		if res.StatusCode >= 200 || res.StatusCode == http.StatusSwitchingProtocols {
			break
		}
		res.Body.Close() // 1xx: the real answer follows
	}
	drained, err := io.CopyN(io.Discard, res.Body, maxDrain+1)
	res.Body.Close()
	a = answer{code: res.StatusCode, status: res.Status, local: c.local}
	if a.code == http.StatusTooManyRequests || a.code >= 500 {
		a.retryAfter = retryAfter(res.Header)
	}
	keep = !res.Close && drained <= maxDrain && (err == nil || err == io.EOF) &&
		res.StatusCode != http.StatusSwitchingProtocols
	return a, keep, nil
}

// explain turns an I/O error into what happened: ctx's end, the request
// timeout, or the network error itself.
func (c *pconn) explain(ctx context.Context, err error, timeout time.Duration) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("no answer within %v (WithRequestTimeout): %w", timeout, err)
	}
	return err
}

// closedByPeer reports whether err says that the node had closed the
// connection before reading the request: a reused idle connection may meet
// this, and the request is then sent again on a new one.
func closedByPeer(err error) bool {
	return err == io.EOF || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
