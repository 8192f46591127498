package httppurge_test

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/httppurge"
	"github.com/gormpurge/gormpurge/dispatcher"
)

// reports collects the dispatcher's reports.
type reports struct {
	mu   sync.Mutex
	list []dispatcher.Report
}

func (r *reports) add(rep dispatcher.Report) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.list = append(r.list, rep)
}

func (r *reports) of(backend string) []dispatcher.Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []dispatcher.Report
	for _, rep := range r.list {
		if rep.Backend == backend {
			out = append(out, rep)
		}
	}
	return out
}

// newDispatcher returns a quiet dispatcher with fast retries, closed when
// the test ends.
func newDispatcher(t *testing.T, bs []backends.Backend, rep *reports) *dispatcher.Dispatcher {
	t.Helper()
	d, err := dispatcher.New(bs,
		dispatcher.WithLogger(quiet),
		dispatcher.WithLinger(0),
		dispatcher.WithBackoff(5*time.Millisecond, 20*time.Millisecond),
		dispatcher.WithOnResult(rep.add))
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		require.NoError(t, d.Close(ctx))
	})
	return d
}

// failFirst makes n answer 503 to its first k requests.
func failFirst(n *fakeNode, k int64) {
	var seen atomic.Int64
	n.answer(func(w http.ResponseWriter, _ *http.Request) {
		if seen.Add(1) <= k {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
}

// Through the dispatcher, a node that fails twice is retried until it
// purges, and the node that purged at once is not asked again.
func TestDispatcherRetriesOnlyTheFailedNode(t *testing.T) {
	t.Parallel()
	good, flaky := newFakeNode(t), newFakeNode(t)
	failFirst(flaky, 2)
	b := newBackend(t, httppurge.WithNodes(good.URL, flaky.URL), httppurge.WithSiteHost("www.example.com"))
	rep := &reports{}
	d := newDispatcher(t, []backends.Backend{b}, rep)

	require.NoError(t, d.Enqueue(t.Context(), backends.NewRequest([]string{"/articles/1"}, nil)))
	require.NoError(t, d.Flush(t.Context()))

	got := rep.of("httppurge")
	require.Len(t, got, 1)
	assert.Equal(t, dispatcher.Delivered, got[0].Outcome)
	assert.Equal(t, 3, got[0].Attempts)
	assert.Equal(t, "ok in an earlier attempt", got[0].Result.IDs[good.URL])
	assert.Equal(t, "ok: 1 purged, 0 not cached", got[0].Result.IDs[flaky.URL])
	assert.Equal(t, []string{"/articles/1"}, good.uris(), "purged once")
	assert.Len(t, flaky.requests(), 3)
}

// A Cluster gives each node its own backend: the node that is down is
// retried on its own while the other's purges are delivered.
func TestClusterNodesDeliveredIndependently(t *testing.T) {
	t.Parallel()
	good, flaky := newFakeNode(t), newFakeNode(t)
	release := make(chan struct{})
	flaky.answer(func(w http.ResponseWriter, _ *http.Request) {
		select {
		case <-release:
		default:
			w.WriteHeader(http.StatusBadGateway)
		}
	})
	c, err := httppurge.NewCluster(httppurge.WithNodes(good.URL, flaky.URL), httppurge.WithName("varnish"),
		httppurge.WithSiteHost("www.example.com"), httppurge.WithLogger(quiet))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, c.Close(context.Background())) })
	bs := c.Backends()
	require.Len(t, bs, 2)
	goodName, flakyName := bs[0].Name(), bs[1].Name()
	assert.Equal(t, "varnish@"+good.URL[len("http://"):], goodName)
	rep := &reports{}
	d := newDispatcher(t, bs, rep)

	for _, u := range []string{"/1", "/2", "/3"} {
		require.NoError(t, d.Enqueue(t.Context(), backends.NewRequest([]string{u}, nil)))
		require.Eventually(t, func() bool { return len(good.requests()) > 0 && good.uris()[len(good.uris())-1] == u },
			5*time.Second, time.Millisecond, "the good node purges %s while the other is down", u)
	}
	assert.Empty(t, rep.of(flakyName), "the failing node's batches are still being retried")
	close(release)
	require.NoError(t, d.Flush(t.Context()))
	for _, r := range rep.of(flakyName) {
		assert.Equal(t, dispatcher.Delivered, r.Outcome)
	}
	var flakyURIs []string
	for _, r := range flaky.requests() {
		flakyURIs = append(flakyURIs, r.URI)
	}
	assert.Subset(t, flakyURIs, []string{"/1", "/2", "/3"})
	s, _ := d.Stats().Backend(flakyName)
	assert.Positive(t, s.Retried)
	assert.Equal(t, uint64(3), s.Delivered)
}

// NewCluster takes a fixed list of nodes only.
func TestClusterOptions(t *testing.T) {
	t.Parallel()
	c, err := httppurge.NewCluster(httppurge.WithNodes("10.0.0.5:6081", "https://10.0.0.6"))
	require.NoError(t, err)
	var names []string
	for _, b := range c.Backends() {
		names = append(names, b.Name())
	}
	assert.Equal(t, []string{"httppurge@10.0.0.5:6081", "httppurge@10.0.0.6"}, names)
	require.NoError(t, c.Close(t.Context()))

	_, err = httppurge.NewCluster(httppurge.WithDiscovery(httppurge.DNS("http://localhost:6081")))
	assert.ErrorContains(t, err, "use New for nodes that change")
	_, err = httppurge.NewCluster()
	assert.ErrorContains(t, err, "no nodes")
	c, err = httppurge.NewCluster(httppurge.WithNodes("10.0.0.5:6081"), nil)
	assert.Nil(t, c)
	assert.ErrorContains(t, err, "an Option is nil: remove it, or pass one made by a With... function")
}

// A backend in NoTags mode says it purges no tags, naming the option that
// changes it; every other mode purges them. So does each node of a Cluster.
func TestCanPurgeTags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		mode *httppurge.TagMode // nil: the default
		ok   bool
	}{
		{"default", nil, true},
		{"XKey", ptr(httppurge.XKey()), true},
		{"BanTags", ptr(httppurge.BanTags("X-Ban-Tags")), true},
		{"NoTags", ptr(httppurge.NoTags()), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opts := []httppurge.Option{httppurge.WithNodes("10.0.0.5:6081", "10.0.0.6:6081")}
			if tt.mode != nil {
				opts = append(opts, httppurge.WithTagMode(*tt.mode))
			}
			c, err := httppurge.NewCluster(opts...)
			require.NoError(t, err)
			t.Cleanup(func() { require.NoError(t, c.Close(context.Background())) })
			bs := []backends.Backend{newBackend(t, opts...)}
			bs = append(bs, c.Backends()...)
			for _, b := range bs {
				tp, ok := b.(backends.TagPurger)
				require.True(t, ok, "%s implements backends.TagPurger", b.Name())
				err := tp.CanPurgeTags()
				if tt.ok {
					assert.NoError(t, err, b.Name())
				} else {
					assert.ErrorContains(t, err, "httppurge.WithTagMode", b.Name())
				}
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// Escalating to tags a backend that skips them would report the purge
// delivered with nothing sent: New refuses it. With a tag mode, the
// escalated handoff reaches the node as its tags.
func TestEscalationToTagsNeedsATagMode(t *testing.T) {
	t.Parallel()
	node := newFakeNode(t)
	esc := dispatcher.WithEscalation("nginx", dispatcher.Escalation{Above: 2, Tags: []string{"site"}})

	noTags := newBackend(t, httppurge.WithName("nginx"), httppurge.WithNodes(node.URL), httppurge.WithTagMode(httppurge.NoTags()))
	d, err := dispatcher.New([]backends.Backend{noTags}, esc)
	assert.Nil(t, d)
	require.EqualError(t, err,
		"dispatcher: invalid configuration:\n"+
			`WithEscalation("nginx", ...): Tags: the backend cannot purge tags: `+
			"httppurge: the tag mode is NoTags, which skips tags: pass httppurge.WithTagMode(...) with XKey, SurrogateKey, BanTags or a TagMode of your own")

	xkey := newBackend(t, httppurge.WithName("nginx"), httppurge.WithNodes(node.URL))
	d, err = dispatcher.New([]backends.Backend{xkey}, esc, dispatcher.WithLogger(quiet))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, d.Close(context.Background())) })
	tk, err := d.Submit(t.Context(), backends.NewRequest([]string{"/a", "/b", "/c"}, nil))
	require.NoError(t, err)
	out, err := tk.Wait(t.Context())
	require.NoError(t, err)
	assert.Equal(t, dispatcher.Delivered, out[0].Outcome)
	reqs := node.requests()
	require.Len(t, reqs, 1)
	assert.Equal(t, "site", reqs[0].Header.Get("xkey-purge"))
}
