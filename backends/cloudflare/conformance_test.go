package cloudflare_test

import (
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/backendtest"
	"github.com/gormpurge/gormpurge/backends/cloudflare"
	"github.com/gormpurge/gormpurge/backends/cloudflare/cloudflaretest"
)

const site = "www.example.com"

// TestConformance runs the backend conformance suite against the
// cloudflaretest fake of purge_cache.
func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) *backendtest.Harness {
		srv := cloudflaretest.NewServer(cloudflaretest.WithBucket(1000, 1000))
		t.Cleanup(srv.Close)
		b, err := cloudflare.New(
			cloudflare.WithEndpoint(srv.Endpoint()),
			cloudflare.WithZone(srv.Zone()),
			cloudflare.WithAPIToken(srv.Token()),
			cloudflare.WithHTTPClient(srv.Client()),
			cloudflare.WithHostnames(site),
			cloudflare.WithRate(1000, 1000),
			cloudflare.WithLogger(slog.New(slog.DiscardHandler)),
		)
		require.NoError(t, err)
		return &backendtest.Harness{
			Backend: b,
			Received: func() backends.Request {
				// Paths reach Cloudflare as https URLs on the site host;
				// the suite's absolute http URLs as they are.
				var urls []string
				for _, u := range srv.Files() {
					if p, ok := strings.CutPrefix(u, "https://"+site); ok {
						urls = append(urls, p)
					} else {
						urls = append(urls, u)
					}
				}
				return backends.Request{URLs: urls, Tags: srv.Tags()}
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
					srv.RefuseURLs(refuse.URLs...) // the suite's are absolute http URLs, sent as they are
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
