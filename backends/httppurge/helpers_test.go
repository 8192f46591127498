package httppurge_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/gormpurge/gormpurge/backends/httppurge"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var quiet = slog.New(slog.DiscardHandler)

// seen is a request as a node received it.
type seen struct {
	Method string
	URI    string // path and query, as sent
	Host   string
	Header http.Header
}

// fakeNode stands in for a cache node: it records every request and answers
// with its respond function, 200 by default.
type fakeNode struct {
	URL string

	mu      sync.Mutex
	reqs    []seen
	respond func(w http.ResponseWriter, r *http.Request)

	conns              atomic.Int64 // connections opened to it
	inFlight, maxFlown atomic.Int64
}

func newFakeNode(t *testing.T) *fakeNode {
	t.Helper()
	f := &fakeNode{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			f.conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

func (f *fakeNode) serve(w http.ResponseWriter, r *http.Request) {
	n := f.inFlight.Add(1)
	defer f.inFlight.Add(-1)
	for {
		m := f.maxFlown.Load()
		if n <= m || f.maxFlown.CompareAndSwap(m, n) {
			break
		}
	}
	f.mu.Lock()
	f.reqs = append(f.reqs, seen{Method: r.Method, URI: r.RequestURI, Host: r.Host, Header: r.Header.Clone()})
	respond := f.respond
	f.mu.Unlock()
	if respond == nil {
		_, _ = w.Write([]byte("purged\n"))
		return
	}
	respond(w, r)
}

// answer makes the node answer every request with fn.
func (f *fakeNode) answer(fn func(w http.ResponseWriter, r *http.Request)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.respond = fn
}

// status makes the node answer every request with code and reason.
func (f *fakeNode) status(code int, reason string) {
	f.answer(func(w http.ResponseWriter, _ *http.Request) {
		if reason != "" {
			// net/http writes the standard reason; a cache writes its own.
			hj, ok := w.(http.Hijacker)
			if ok {
				conn, buf, err := hj.Hijack()
				if err == nil {
					// It closes the connection, and says so, as a cache does:
					// a client must not send the next request on it.
					_, _ = buf.WriteString("HTTP/1.1 " + itoa(code) + " " + reason + "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
					_ = buf.Flush()
					_ = conn.Close()
					return
				}
			}
		}
		w.WriteHeader(code)
	})
}

func itoa(n int) string {
	b := []byte{}
	for n > 0 || len(b) == 0 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	return string(b)
}

// requests returns what the node received so far.
func (f *fakeNode) requests() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seen(nil), f.reqs...)
}

// uris returns the path and query of every request received so far.
func (f *fakeNode) uris() []string {
	var out []string
	for _, r := range f.requests() {
		out = append(out, r.URI)
	}
	return out
}

// downNode returns the address of a node that refuses connections.
func downNode(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := "http://" + ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// clients are the two ways the backend sends requests: its own keep-alive
// connections, and an *http.Client given with WithHTTPClient.
var clients = []struct {
	name string
	opts func(t *testing.T) []httppurge.Option
}{
	{"own", func(*testing.T) []httppurge.Option { return nil }},
	{"http.Client", func(t *testing.T) []httppurge.Option {
		tr := &http.Transport{}
		t.Cleanup(tr.CloseIdleConnections)
		return []httppurge.Option{httppurge.WithHTTPClient(&http.Client{Transport: tr})}
	}},
}

// newBackend returns a quiet Backend closed when the test ends.
func newBackend(t *testing.T, opts ...httppurge.Option) *httppurge.Backend {
	t.Helper()
	b, err := httppurge.New(append([]httppurge.Option{httppurge.WithLogger(quiet)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		require.NoError(t, b.Close(ctx))
	})
	return b
}

// nodeErrors returns the *NodeError values joined in err.
func nodeErrors(err error) []*httppurge.NodeError {
	var out []*httppurge.NodeError
	var walk func(error)
	walk = func(err error) {
		var ne *httppurge.NodeError
		if errors.As(err, &ne) && err == error(ne) {
			out = append(out, ne)
			return
		}
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	return out
}
