package fastly_test

import (
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/backendtest"
	"github.com/gormpurge/gormpurge/backends/fastly"
	"github.com/gormpurge/gormpurge/backends/fastly/fastlytest"
)

// newFake starts a fastlytest server closed at the end of the test.
func newFake(t testing.TB, opts ...fastlytest.Option) *fastlytest.Server {
	t.Helper()
	srv := fastlytest.NewServer(opts...)
	t.Cleanup(srv.Close)
	return srv
}

// newBackend returns a backend pointed at srv, closed at the end of the
// test, with opts after the fake's settings.
func newBackend(t testing.TB, srv *fastlytest.Server, opts ...fastly.Option) *fastly.Backend {
	t.Helper()
	b, err := fastly.New(append([]fastly.Option{
		fastly.WithEndpoint(srv.URL()),
		fastly.WithHTTPClient(srv.Client()),
		fastly.WithAPIToken(srv.Token()),
		fastly.WithServiceID(srv.ServiceID()),
		fastly.WithLogger(slog.New(slog.DiscardHandler)),
	}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close(t.Context()) })
	return b
}

// TestConformance runs the backend conformance suite against the
// fastlytest fake of Fastly's purge API.
func TestConformance(t *testing.T) {
	const site = "www.example.com"
	backendtest.Run(t, func(t *testing.T) *backendtest.Harness {
		srv := newFake(t)
		b := newBackend(t, srv, fastly.WithHostnames(site))
		return &backendtest.Harness{
			Backend: b,
			Received: func() backends.Request {
				// Fastly is sent host, path and query: a path on the site
				// host, and the suite's absolute http URLs without scheme.
				var urls []string
				for _, u := range srv.URLs() {
					if p, ok := strings.CutPrefix(u, site); ok {
						urls = append(urls, p)
					} else {
						urls = append(urls, "http://"+u)
					}
				}
				return backends.Request{URLs: urls, Tags: srv.Keys()}
			},
			Fail: func(f backendtest.Failure, refuse backends.Request) bool {
				switch f {
				case backendtest.Temporary:
					srv.FailNext(http.StatusServiceUnavailable, 1000)
				case backendtest.Permanent:
					srv.FailNext(http.StatusForbidden, 1000)
				case backendtest.RetryAfter:
					srv.FailNext(http.StatusTooManyRequests, 1000)
				case backendtest.Partial:
					// A 403 for the URLs of a host the token may not purge.
					refused := make(map[string]bool)
					for _, u := range refuse.URLs {
						refused[strings.TrimPrefix(u, "http://")] = true
					}
					srv.Respond(func(c fastlytest.Call) (int, bool) {
						if c.Kind == fastlytest.KindURL && refused[c.URL] {
							return http.StatusForbidden, true
						}
						return 0, false
					})
				default:
					return false
				}
				return true
			},
			Hold:    srv.Hold,
			Secrets: []string{srv.Token()},
		}
	})
}
