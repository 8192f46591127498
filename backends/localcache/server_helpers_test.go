package localcache_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends/localcache"
)

// server is a real HTTP server for h whose connections have a small send
// buffer, so that a client that stops reading soon stops the server's
// writes, and which reports when it is done with a connection.
type server struct {
	*httptest.Server

	mu     sync.Mutex
	closed map[string]chan struct{} // by the client's address
}

func startServer(t *testing.T, h http.Handler) *server {
	t.Helper()
	s := &server{Server: httptest.NewUnstartedServer(h), closed: map[string]chan struct{}{}}
	s.Listener = smallSendBuffers{s.Listener}
	s.Config.ConnState = func(c net.Conn, state http.ConnState) {
		if state == http.StateClosed || state == http.StateHijacked {
			close(s.done(c.RemoteAddr().String()))
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

// done returns the channel closed when the server is done with the
// connection from addr: its handler has returned and the connection is
// closed.
func (s *server) done(addr string) chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, ok := s.closed[addr]
	if !ok {
		ch = make(chan struct{})
		s.closed[addr] = ch
	}
	return ch
}

// smallSendBuffers gives accepted TCP connections a small send buffer.
type smallSendBuffers struct{ net.Listener }

func (l smallSendBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(8 << 10)
	}
	return c, err
}

// rawGet opens a TCP connection with a tiny receive buffer to s and sends
// a GET for path on it, without reading anything.
func rawGet(t *testing.T, s *server, path string) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", s.Listener.Addr().String())
	require.NoError(t, err)
	tc := c.(*net.TCPConn)
	t.Cleanup(func() { _ = tc.Close() })
	require.NoError(t, tc.SetReadBuffer(1024))
	_, err = fmt.Fprintf(tc, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, s.Listener.Addr())
	require.NoError(t, err)
	return tc
}

// reset closes c with a TCP reset, as a client that crashes or gives up
// does, and waits until the server is done with it.
func reset(t *testing.T, s *server, c *net.TCPConn) {
	t.Helper()
	require.NoError(t, c.SetLinger(0))
	done := s.done(c.LocalAddr().String())
	require.NoError(t, c.Close())
	select {
	case <-done:
	case <-untilDeadline(t).Done():
		t.Fatal("the server never finished the request of the client that reset")
	}
}

// eventuallyHit waits until path is served from the cache: a miss is
// stored once it has been written to its client, which may be a moment
// after that client has read it.
func eventuallyHit(t *testing.T, s *server, path string) {
	t.Helper()
	require.Eventually(t, func() bool { return fetch(t, s, path).xcache == "HIT" }, 5*time.Second, 5*time.Millisecond,
		"%s is never served from the cache", path)
}

// fetch GETs path from s with a fresh connection, and returns what the
// client got; the request fails the test if it has not ended shortly
// before the test's deadline.
func fetch(t *testing.T, s *server, path string) result {
	t.Helper()
	req, err := http.NewRequestWithContext(untilDeadline(t), http.MethodGet, s.URL+path, nil)
	require.NoError(t, err)
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	res, err := client.Do(req)
	require.NoError(t, err, "the request never got its answer")
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return result{status: res.StatusCode, xcache: res.Header.Get(localcache.XCache), body: string(body), header: res.Header}
}

// readLine reads one line from r, the test failing if none comes before
// shortly ahead of its deadline.
func readLine(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	line, err := r.ReadString('\n')
	require.NoError(t, err)
	return line
}

// untilDeadline returns a context that ends shortly before the test's
// deadline, so that waiting for something that never comes fails the test
// with a message instead of killing the whole run.
func untilDeadline(t *testing.T) context.Context {
	d, ok := t.Deadline()
	if !ok {
		return t.Context()
	}
	ctx, cancel := context.WithDeadline(t.Context(), d.Add(-time.Until(d)/5))
	t.Cleanup(cancel)
	return ctx
}
