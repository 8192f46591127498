package akamai_test

import (
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/akamai"
	"github.com/gormpurge/gormpurge/backends/akamai/akamaitest"
	"github.com/gormpurge/gormpurge/backends/backendtest"
)

// TestConformance runs the backend conformance suite against the
// akamaitest fake of Fast Purge.
func TestConformance(t *testing.T) {
	const site = "www.example.com"
	backendtest.Run(t, func(t *testing.T) *backendtest.Harness {
		srv := akamaitest.NewServer()
		t.Cleanup(srv.Close)
		creds := srv.Credentials()
		b, err := akamai.New(
			akamai.WithCredentials(creds),
			akamai.WithHTTPClient(srv.Client()),
			akamai.WithHostnames(site),
			akamai.WithLogger(slog.New(slog.DiscardHandler)),
		)
		require.NoError(t, err)
		return &backendtest.Harness{
			Backend: b,
			Received: func() backends.Request {
				// Akamai is sent https URLs: paths on the site host, and
				// the suite's absolute http URLs in https form.
				var urls []string
				for _, u := range srv.Objects(akamai.KindURL) {
					if p, ok := strings.CutPrefix(u, "https://"+site); ok {
						urls = append(urls, p)
					} else {
						urls = append(urls, "http://"+strings.TrimPrefix(u, "https://"))
					}
				}
				return backends.Request{URLs: urls, Tags: srv.Objects(akamai.KindTag)}
			},
			Fail: func(f backendtest.Failure, refuse backends.Request) bool {
				switch f {
				case backendtest.Temporary:
					srv.FailNext(http.StatusInternalServerError, 1000)
				case backendtest.Permanent:
					srv.FailNext(http.StatusBadRequest, 1000)
				case backendtest.RetryAfter:
					srv.FailNext(http.StatusTooManyRequests, 1000)
				case backendtest.Partial:
					// A 403 names the first URL of the request and refuses
					// every URL on its host, as Akamai does for a host the
					// API client may not purge.
					refused := make(map[string]bool)
					for _, u := range refuse.URLs {
						refused["https://"+strings.TrimPrefix(u, "http://")] = true
					}
					srv.Respond(func(c akamaitest.Call) (int, bool) {
						if c.Kind == akamai.KindURL && len(c.Objects) > 0 && refused[c.Objects[0]] {
							return http.StatusForbidden, true
						}
						return 0, false
					})
				default:
					return false
				}
				return true
			},
			Hold: func() (<-chan struct{}, func()) {
				arrived, release := make(chan struct{}), make(chan struct{})
				var once, arrive sync.Once
				srv.Respond(func(akamaitest.Call) (int, bool) {
					arrive.Do(func() { close(arrived) })
					<-release
					return 0, false
				})
				return arrived, func() { once.Do(func() { close(release) }) }
			},
			Secrets: []string{creds.ClientSecret, creds.AccessToken, creds.ClientToken},
		}
	})
}
