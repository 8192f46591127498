package cloudfront_test

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"testing"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/backendtest"
	"github.com/gormpurge/gormpurge/backends/cloudfront"
	"github.com/gormpurge/gormpurge/backends/cloudfront/cloudfronttest"
)

// recorder is the backend under test, recording the URLs it was asked to
// purge: CloudFront receives only their paths, and the suite wants the
// URLs back (an absolute URL's host is dropped, since an invalidation
// path purges the URL on every host of the distribution). It embeds the
// Backend, so the suite still sees its Pace and Close.
type recorder struct {
	*cloudfront.Backend
	mu    sync.Mutex
	asked []string
}

func (r *recorder) Purge(ctx context.Context, req backends.Request) (backends.Result, error) {
	r.mu.Lock()
	for _, u := range req.URLs {
		if c, err := backends.CanonicalURL(u); err == nil {
			r.asked = append(r.asked, c)
		}
	}
	r.mu.Unlock()
	return r.Backend.Purge(ctx, req)
}

// received returns each URL asked whose invalidation path reached srv.
func (r *recorder) received(srv *cloudfronttest.Server) []string {
	paths := srv.Paths()
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, u := range r.asked {
		if p, err := cloudfront.InvalidationPath(u); err == nil && slices.Contains(paths, p) {
			out = append(out, u)
		}
	}
	return out
}

// TestConformance runs the backend conformance suite against the fake,
// with tag invalidation on (a distribution with a CacheTagConfig): the
// suite purges tags in every check and has no way to say that a backend
// refuses them, which is the default (see TestTagsAreRefusedByDefault).
// CloudFront accepts or refuses an invalidation whole, so the fake cannot
// refuse some URLs of a batch: the Partial check is skipped (refused
// objects are tested in TestRefusedObjectsArePartial).
func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) *backendtest.Harness {
		srv := newFake(t, cloudfronttest.WithCacheTags())
		rec := &recorder{Backend: newBackend(t, srv, cloudfront.WithCacheTags())}
		creds := srv.Credentials()
		return &backendtest.Harness{
			Backend: rec,
			Received: func() backends.Request {
				return backends.Request{URLs: rec.received(srv), Tags: srv.Tags()}
			},
			Fail: func(f backendtest.Failure, _ backends.Request) bool {
				switch f {
				case backendtest.Temporary:
					srv.FailNext(http.StatusServiceUnavailable, 1000)
				case backendtest.Permanent:
					srv.FailNext(http.StatusForbidden, 1000)
				case backendtest.RetryAfter:
					srv.FailNextCode(http.StatusBadRequest, 1000, "Throttling", "Rate exceeded")
				default:
					return false
				}
				return true
			},
			Hold:    srv.Hold,
			Secrets: []string{creds.SecretAccessKey, creds.AccessKeyID},
		}
	})
}
