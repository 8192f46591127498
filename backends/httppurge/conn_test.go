package httppurge_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/httppurge"
)

// connNode is a node that counts its connections as they open and close.
type connNode struct {
	srv            *httptest.Server
	opened, closed atomic.Int64
	requests       atomic.Int64
}

func newConnNode(t *testing.T, h http.HandlerFunc, configure func(*httptest.Server)) *connNode {
	t.Helper()
	n := &connNode{}
	n.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.requests.Add(1)
		if h != nil {
			h(w, r)
		}
	}))
	n.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			n.opened.Add(1)
		case http.StateClosed, http.StateHijacked:
			n.closed.Add(1)
		}
	}
	if configure != nil {
		configure(n.srv)
	} else {
		n.srv.Start()
	}
	t.Cleanup(n.srv.Close)
	return n
}

func purgeN(t *testing.T, b *httppurge.Backend, prefix string, n int) error {
	t.Helper()
	var urls []string
	for i := range n {
		urls = append(urls, fmt.Sprintf("/%s/%d", prefix, i))
	}
	_, err := b.Purge(t.Context(), backends.NewRequest(urls, nil))
	return err
}

// A keep-alive connection the node closed while it was idle is replaced
// without a failure.
func TestConnIdleClosedByNode(t *testing.T) {
	t.Parallel()
	n := newConnNode(t, nil, func(s *httptest.Server) {
		s.Config.IdleTimeout = time.Millisecond // like Varnish's timeout_idle, only shorter
		s.Start()
	})
	b := newBackend(t, httppurge.WithNodes(n.srv.URL), httppurge.WithSiteHost("h"), httppurge.WithNodeConcurrency(1))
	require.NoError(t, purgeN(t, b, "a", 1))
	require.Eventually(t, func() bool { return n.closed.Load() == 1 }, 5*time.Second, time.Millisecond)
	require.NoError(t, purgeN(t, b, "b", 1))
	assert.Equal(t, int64(2), n.requests.Load())
	assert.Equal(t, int64(2), n.opened.Load())
}

// After a pause, every idle connection of a node may have been closed by
// it: the first purge still succeeds, on a newly dialled connection.
func TestConnAllIdleClosedByNode(t *testing.T) {
	t.Parallel()
	n := newConnNode(t, nil, func(s *httptest.Server) {
		s.Config.IdleTimeout = 50 * time.Millisecond
		s.Start()
	})
	b := newBackend(t, httppurge.WithNodes(n.srv.URL), httppurge.WithSiteHost("h"), httppurge.WithNodeConcurrency(8))
	require.NoError(t, purgeN(t, b, "a", 64))
	opened := n.opened.Load()
	require.Greater(t, opened, int64(1), "several connections are idle in the pool")
	require.Eventually(t, func() bool { return n.closed.Load() == opened }, 5*time.Second, time.Millisecond)
	require.NoError(t, purgeN(t, b, "b", 10), "the first purge after the pause")
	assert.Equal(t, int64(74), n.requests.Load())
}

// Answers that end the connection, or whose body is too long to drain, are
// read and the connection replaced.
func TestConnNotReused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		answer http.HandlerFunc
		reused bool
	}{
		{"Connection: close", func(w http.ResponseWriter, _ *http.Request) { w.Header().Set("Connection", "close") }, false},
		{"chunked body", func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte("Purged"))
			w.(http.Flusher).Flush()
			_, _ = w.Write([]byte(" again"))
		}, true},
		{"body over 64 KB", func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte(strings.Repeat("x", 100<<10)))
		}, false},
		{"HTTP/1.0 server", func(w http.ResponseWriter, _ *http.Request) {
			conn, buf, _ := w.(http.Hijacker).Hijack()
			defer conn.Close()
			_, _ = buf.WriteString("HTTP/1.0 200 Purged\r\n\r\nbye")
			_ = buf.Flush()
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			n := newConnNode(t, tt.answer, nil)
			b := newBackend(t, httppurge.WithNodes(n.srv.URL), httppurge.WithSiteHost("h"), httppurge.WithNodeConcurrency(1))
			require.NoError(t, purgeN(t, b, "a", 5))
			assert.Equal(t, int64(5), n.requests.Load())
			if tt.reused {
				assert.Equal(t, int64(1), n.opened.Load())
			} else {
				assert.Equal(t, int64(5), n.opened.Load())
			}
		})
	}
}

// A call whose context ends stops at once, and its connection is not kept.
func TestConnContextEnds(t *testing.T) {
	t.Parallel()
	arrived := make(chan struct{}, 1)
	n := newConnNode(t, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-r.Context().Done() // until the client gives up
	}, nil)
	b := newBackend(t, httppurge.WithNodes(n.srv.URL), httppurge.WithSiteHost("h"))
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		defer cancel()
		select {
		case <-arrived:
		case <-ctx.Done():
		}
	}()
	_, err := b.Purge(ctx, backends.NewRequest([]string{"/slow"}, nil))
	require.Error(t, err)
	assert.ErrorIs(t, err, context.Canceled)
	assert.False(t, backends.IsPermanent(err))
	require.Eventually(t, func() bool { return n.closed.Load() == 1 }, 5*time.Second, time.Millisecond)
}

// Close closes the idle connections.
func TestConnClosedOnClose(t *testing.T) {
	t.Parallel()
	n := newConnNode(t, nil, nil)
	b, err := httppurge.New(httppurge.WithNodes(n.srv.URL), httppurge.WithSiteHost("h"), httppurge.WithLogger(quiet))
	require.NoError(t, err)
	require.NoError(t, purgeN(t, b, "a", 20))
	require.Positive(t, n.opened.Load())
	require.NoError(t, b.Close(t.Context()))
	require.Eventually(t, func() bool { return n.closed.Load() == n.opened.Load() }, 5*time.Second, time.Millisecond)
}

// https nodes are verified against WithTLSConfig's roots; an untrusted
// certificate is a permanent failure with a hint.
func TestConnTLS(t *testing.T) {
	t.Parallel()
	n := newConnNode(t, nil, func(s *httptest.Server) { s.StartTLS() })
	roots := n.srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs

	b := newBackend(t, httppurge.WithNodes(n.srv.URL), httppurge.WithSiteHost("h"),
		httppurge.WithTLSConfig(&tls.Config{RootCAs: roots}))
	require.NoError(t, purgeN(t, b, "a", 3))
	assert.Equal(t, int64(3), n.requests.Load())

	untrusting := newBackend(t, httppurge.WithNodes(n.srv.URL), httppurge.WithSiteHost("h"))
	err := purgeN(t, untrusting, "b", 1)
	require.Error(t, err)
	assert.True(t, backends.IsPermanent(err))
	assert.ErrorContains(t, err, "give its CA with WithTLSConfig")
}

// Keep-alive connections are reused: bodies are drained and closed.
func TestConnectionsReused(t *testing.T) {
	t.Parallel()
	for _, cl := range clients {
		t.Run(cl.name, func(t *testing.T) {
			t.Parallel()
			// net/http may dial a spare connection while another is on
			// its way back to the pool; its own client never does.
			maxConns := int64(2)
			if cl.name == "http.Client" {
				maxConns = 4
			}
			testConnectionsReused(t, cl.opts(t), maxConns)
		})
	}
}

func testConnectionsReused(t *testing.T, opts []httppurge.Option, maxConns int64) {
	n := newFakeNode(t)
	n.answer(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(strings.Repeat("<p>purged</p>", 500))) // a Varnish-sized synthetic page
	})
	b := newBackend(t, append(opts, httppurge.WithNodes(n.URL), httppurge.WithSiteHost("h"), httppurge.WithNodeConcurrency(2))...)
	for round := range 5 {
		var urls []string
		for i := range 40 {
			urls = append(urls, fmt.Sprintf("/%d/%d", round, i))
		}
		_, err := b.Purge(t.Context(), backends.NewRequest(urls, nil))
		require.NoError(t, err)
	}
	assert.Len(t, n.requests(), 200)
	assert.LessOrEqual(t, n.conns.Load(), maxConns, "200 purges on kept-alive connections")
}

// A node that does not answer in time fails temporarily.
func TestRequestTimeout(t *testing.T) {
	t.Parallel()
	for _, cl := range clients {
		t.Run(cl.name, func(t *testing.T) {
			t.Parallel()
			testRequestTimeout(t, cl.opts(t))
		})
	}
}

func testRequestTimeout(t *testing.T, opts []httppurge.Option) {
	n := newFakeNode(t)
	n.answer(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	b := newBackend(t, append(opts, httppurge.WithNodes(n.URL), httppurge.WithSiteHost("h"),
		httppurge.WithRequestTimeout(50*time.Millisecond))...)
	_, err := b.Purge(t.Context(), backends.NewRequest([]string{"/slow"}, nil))
	require.Error(t, err)
	assert.False(t, backends.IsPermanent(err))
	assert.ErrorContains(t, err, "no answer within 50ms (WithRequestTimeout)")
}
