package redisstore_test

import (
	"bytes"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// holdProxy forwards TCP connections to a target and, the first time the
// target sends marker, forwards the bytes up to and including it, holds
// the rest for hold, then forwards it: a reply cut part-way by a slow
// network, whose remainder starts with whatever follows marker.
type holdProxy struct {
	target string
	marker []byte
	hold   time.Duration
	ln     net.Listener

	mu     sync.Mutex
	held   bool // the marker was seen
	closed bool
	conns  []net.Conn
	wg     sync.WaitGroup
}

func newHoldProxy(t testing.TB, target, marker string, hold time.Duration) *holdProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("hold proxy: %v", err)
	}
	p := &holdProxy{target: target, marker: []byte(marker), hold: hold, ln: ln}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *holdProxy) Addr() string { return p.ln.Addr().String() }

// Held reports whether the proxy has held a reply.
func (p *holdProxy) Held() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.held
}

func (p *holdProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			_ = c.Close()
			_ = s.Close()
			return
		}
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		p.wg.Add(2)
		go func() {
			defer p.wg.Done()
			defer c.Close()
			defer s.Close()
			_, _ = io.Copy(s, c)
		}()
		go p.down(c, s)
	}
}

// down copies the target's bytes to the client, holding them once at the
// marker. The marker must arrive within one read, as it does when the
// target writes it in one reply.
func (p *holdProxy) down(c, s net.Conn) {
	defer p.wg.Done()
	defer c.Close()
	defer s.Close()
	buf := make([]byte, 1<<20)
	for {
		n, err := s.Read(buf)
		b := buf[:n]
		p.mu.Lock()
		i := -1
		if !p.held {
			if i = bytes.Index(b, p.marker); i >= 0 {
				p.held = true
			}
		}
		p.mu.Unlock()
		if i >= 0 {
			if _, werr := c.Write(b[:i+len(p.marker)]); werr != nil {
				return
			}
			time.Sleep(p.hold)
			b = b[i+len(p.marker):]
		}
		if len(b) > 0 {
			if _, werr := c.Write(b); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *holdProxy) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	p.closed = true
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
