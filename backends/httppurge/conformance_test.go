package httppurge_test

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/backendtest"
	"github.com/gormpurge/gormpurge/backends/httppurge"
)

// conformanceSite is the site host the conformance harness configures.
const conformanceSite = "www.example.com"

// conformanceSecret is the Authorization header the harness's backend
// sends: the suite checks that no error shows it.
const conformanceSecret = "Bearer conformance-s3cret-token"

// conformanceNode is a cache node that the suite can make answer each
// class of failure, or hold its answers.
type conformanceNode struct {
	mu      sync.Mutex
	got     backends.Request
	fail    backendtest.Failure
	refuse  []string
	arrived chan struct{}
	release chan struct{}
}

func (n *conformanceNode) serve(w http.ResponseWriter, r *http.Request) {
	n.mu.Lock()
	arrived, release := n.arrived, n.release
	n.mu.Unlock()
	if release != nil {
		n.mu.Lock()
		select {
		case <-arrived:
		default:
			close(arrived)
		}
		n.mu.Unlock()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	switch n.fail {
	case backendtest.Temporary:
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	case backendtest.Permanent:
		w.WriteHeader(http.StatusForbidden)
		return
	case backendtest.RetryAfter:
		w.Header().Set("Retry-After", "2")
		w.WriteHeader(http.StatusTooManyRequests)
		return
	}
	if keys := r.Header.Get("xkey-purge"); keys != "" {
		n.got.Tags = append(n.got.Tags, strings.Fields(keys)...)
		return
	}
	u := r.RequestURI
	if r.Host != conformanceSite {
		u = "http://" + r.Host + u
	}
	if slices.Contains(n.refuse, u) {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	n.got.URLs = append(n.got.URLs, u)
}

// TestConformance runs the backend conformance suite with each way of
// sending requests against a node that answers as the suite asks.
func TestConformance(t *testing.T) {
	for _, c := range clients {
		t.Run(c.name, func(t *testing.T) {
			backendtest.Run(t, func(t *testing.T) *backendtest.Harness {
				n := &conformanceNode{}
				srv := httptest.NewServer(http.HandlerFunc(n.serve))
				t.Cleanup(srv.Close)
				b := newBackend(t, append(c.opts(t),
					httppurge.WithNodes(srv.URL),
					httppurge.WithSiteHost(conformanceSite),
					httppurge.WithHeader("Authorization", conformanceSecret))...)
				return &backendtest.Harness{
					Backend: b,
					Received: func() backends.Request {
						n.mu.Lock()
						defer n.mu.Unlock()
						return backends.Request{URLs: slices.Clone(n.got.URLs), Tags: slices.Clone(n.got.Tags)}
					},
					Fail: func(f backendtest.Failure, refuse backends.Request) bool {
						n.mu.Lock()
						defer n.mu.Unlock()
						if f == backendtest.Partial {
							n.refuse = refuse.URLs
						} else {
							n.fail = f
						}
						return true
					},
					Hold: func() (<-chan struct{}, func()) {
						n.mu.Lock()
						defer n.mu.Unlock()
						n.arrived, n.release = make(chan struct{}), make(chan struct{})
						release := n.release
						var once sync.Once
						return n.arrived, func() { once.Do(func() { close(release) }) }
					},
					Secrets: []string{conformanceSecret, "conformance-s3cret-token"},
				}
			})
		})
	}
}

// TestRefusedRequestIsPartial checks the classification the conformance
// suite found missing: a node that refuses one request on its own (here a
// tag header too large, 431) while purging the others makes a
// backends.Partial error naming the objects of that request only.
func TestRefusedRequestIsPartial(t *testing.T) {
	n := newFakeNode(t)
	n.answer(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("xkey-purge") != "" {
			w.WriteHeader(http.StatusRequestHeaderFieldsTooLarge)
		}
	})
	b := newBackend(t, httppurge.WithNodes(n.URL), httppurge.WithSiteHost(conformanceSite))
	_, err := b.Purge(t.Context(), backends.Request{URLs: []string{"/a", "/b"}, Tags: []string{"t1", "t2"}})
	require.Error(t, err)
	require.True(t, backends.IsPermanent(err))
	failed, ok := backends.FailedObjects(err)
	require.True(t, ok, "FailedObjects names nothing: %v", err)
	require.Equal(t, backends.Request{Tags: []string{"t1", "t2"}}, failed)
	require.ElementsMatch(t, []string{"/a", "/b", "/"}, n.uris())
}
