package natsbus_test

import (
	"context"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends/localcache"
)

// stallProxy forwards TCP connections to a target and can stall them:
// while stalled, it holds what it reads instead of passing it on, as a
// silent network partition does, without closing anything.
type stallProxy struct {
	ln     net.Listener
	target string

	mu      sync.Mutex
	cond    *sync.Cond
	stalled bool
	closed  bool
	conns   []net.Conn
	wg      sync.WaitGroup
}

// newStallProxy starts a stallProxy to target, closed when tb ends.
func newStallProxy(tb testing.TB, target string) *stallProxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	p := &stallProxy{ln: ln, target: target}
	p.cond = sync.NewCond(&p.mu)
	p.wg.Add(1)
	go p.accept()
	tb.Cleanup(p.close)
	return p
}

func (p *stallProxy) addr() string { return p.ln.Addr().String() }

// stall holds the traffic both ways until resume.
func (p *stallProxy) stall(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stalled = on
	p.cond.Broadcast()
}

func (p *stallProxy) accept() {
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
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(c, s)
		go p.pipe(s, c)
	}
}

// pipe copies src to dst, waiting while the proxy is stalled.
func (p *stallProxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		p.mu.Lock()
		for p.stalled && !p.closed {
			p.cond.Wait()
		}
		closed := p.closed
		p.mu.Unlock()
		if closed {
			return
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if err != io.EOF {
				_ = src.Close()
			}
			return
		}
	}
}

func (p *stallProxy) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	p.closed = true
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.cond.Broadcast()
	p.mu.Unlock()
	p.wg.Wait()
}

// A connection that stops answering without closing (a silent partition)
// is reported EventDown by the health check, then EventUp once it
// answers again.
func TestSilentPartitionIsDownWithinTheHealthCheck(t *testing.T) {
	addr, subj := natsAddr(t), subject(t)
	proxy := newStallProxy(t, addr)
	follower := newBus(t, connect(t, proxy.addr()), subj) // health check 250ms
	publisher := newBus(t, connect(t, addr), subj)
	sub, err := follower.Subscribe(t.Context())
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Close(context.Background()) })
	ctx, cancel := context.WithTimeout(t.Context(), eventually)
	defer cancel()
	e, err := sub.Next(ctx)
	require.NoError(t, err)
	require.Equal(t, localcache.EventUp, e.Kind)

	proxy.stall(true)
	stalled := time.Now()
	require.NoError(t, publisher.Publish(ctx, localcache.Event{Kind: localcache.EventPurge, Indexes: []string{"t:held"}}))
	e, err = sub.Next(ctx)
	require.NoError(t, err)
	require.Equal(t, localcache.EventDown, e.Kind, "a stalled connection must yield EventDown")
	assert.True(t, strings.Contains(e.Reason, "health check"), "reason %q", e.Reason)
	t.Logf("down %v after the stall (health check every 250ms)", time.Since(stalled).Round(time.Millisecond))

	proxy.stall(false)
	for {
		e, err = sub.Next(ctx)
		require.NoError(t, err)
		if e.Kind == localcache.EventUp {
			break
		}
		require.Equal(t, localcache.EventDown, e.Kind, "only EventDown may come before EventUp")
	}
	require.NoError(t, publisher.Publish(ctx, localcache.Event{Kind: localcache.EventPurge, Indexes: []string{"t:after"}}))
	e, err = sub.Next(ctx)
	require.NoError(t, err)
	if assert.Equal(t, localcache.EventPurge, e.Kind) && slices.Equal(e.Indexes, []string{"t:held"}) {
		e, err = sub.Next(ctx) // held by the stall, not lost
		require.NoError(t, err)
	}
	assert.Equal(t, []string{"t:after"}, e.Indexes)
}
