package httppurge_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/httppurge"
)

// discoverer is a discovery function whose answer a test sets.
type discoverer struct {
	mu    sync.Mutex
	nodes []string
	err   error
	calls atomic.Int64
}

func (d *discoverer) set(err error, nodes ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.nodes, d.err = nodes, err
}

func (d *discoverer) discover(context.Context) ([]string, error) {
	d.calls.Add(1)
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.nodes, d.err
}

// waitNodes waits until b purges exactly nodes.
func waitNodes(t *testing.T, b *httppurge.Backend, nodes ...string) {
	t.Helper()
	require.Eventually(t, func() bool { return slices.Equal(b.Nodes(), nodes) }, 5*time.Second, time.Millisecond,
		"nodes are %v, want %v", b.Nodes(), nodes)
}

// Purges go to the nodes the discovery function returns now.
func TestDiscoveryFollowsNodes(t *testing.T) {
	t.Parallel()
	a, b := newFakeNode(t), newFakeNode(t)
	d := &discoverer{}
	d.set(nil, a.URL, "ftp://not-a-node")
	be := newBackend(t, httppurge.WithDiscovery(d.discover), httppurge.WithDiscoveryInterval(time.Millisecond),
		httppurge.WithSiteHost("h"))

	_, err := be.Purge(t.Context(), backends.NewRequest([]string{"/1"}, nil))
	require.NoError(t, err)
	assert.Equal(t, []string{a.URL}, be.Nodes(), "the invalid node is skipped")

	d.set(nil, b.URL)
	waitNodes(t, be, b.URL)
	_, err = be.Purge(t.Context(), backends.NewRequest([]string{"/2"}, nil))
	require.NoError(t, err)
	assert.Equal(t, []string{"/1"}, a.uris())
	assert.Equal(t, []string{"/2"}, b.uris())

	d.set(errors.New("DNS is down"))
	calls := d.calls.Load()
	require.Eventually(t, func() bool { return d.calls.Load() > calls+2 }, 5*time.Second, time.Millisecond)
	assert.Equal(t, []string{b.URL}, be.Nodes(), "a failed discovery keeps the last nodes")
	d.set(nil)
	calls = d.calls.Load()
	require.Eventually(t, func() bool { return d.calls.Load() > calls+2 }, 5*time.Second, time.Millisecond)
	assert.Equal(t, []string{b.URL}, be.Nodes(), "so does an empty answer")
}

// Until discovery has found a node, Purge fails temporarily with its error.
func TestDiscoveryNotYet(t *testing.T) {
	t.Parallel()
	n := newFakeNode(t)
	d := &discoverer{}
	d.set(errors.New("no endpoints ready"))
	be := newBackend(t, httppurge.WithDiscovery(d.discover), httppurge.WithSiteHost("h"))

	_, err := be.Purge(t.Context(), backends.NewRequest([]string{"/a"}, nil))
	require.Error(t, err)
	assert.False(t, backends.IsPermanent(err))
	assert.ErrorContains(t, err, "httppurge: no nodes: no endpoints ready")

	d.set(nil, n.URL) // a failed Purge asked for an early refresh
	waitNodes(t, be, n.URL)
	_, err = be.Purge(t.Context(), backends.NewRequest([]string{"/a"}, nil))
	require.NoError(t, err)
}

// A discovery function that panics is a failed discovery, not a crash.
func TestDiscoveryPanics(t *testing.T) {
	t.Parallel()
	be := newBackend(t, httppurge.WithDiscovery(func(context.Context) ([]string, error) { panic("boom") }))
	_, err := be.Purge(t.Context(), backends.NewRequest(nil, []string{"t"}))
	assert.ErrorContains(t, err, "discovery function panicked: boom")
}

// Purge waits for the first discovery, within its context.
func TestDiscoveryFirstCallSlow(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	be := newBackend(t, httppurge.WithDiscovery(func(ctx context.Context) ([]string, error) {
		select {
		case <-release:
		case <-ctx.Done(): // Close cancels a call in progress
		}
		return nil, ctx.Err()
	}))
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	_, err := be.Purge(ctx, backends.NewRequest(nil, []string{"t"}))
	assert.ErrorContains(t, err, "waiting for the first node discovery")
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	// The cleanup closes the backend while the call hangs: Close ends it.
}

// A node that cannot be reached makes discovery run again soon, and when
// it has left the list, the retry of a failed batch no longer waits for it.
func TestDiscoveryDropsNodeThatLeft(t *testing.T) {
	t.Parallel()
	up, gone := newFakeNode(t), downNode(t)
	d := &discoverer{}
	d.set(nil, up.URL, gone)
	be := newBackend(t, httppurge.WithDiscovery(d.discover), httppurge.WithDiscoveryInterval(time.Hour),
		httppurge.WithSiteHost("h"))
	req := backends.NewRequest([]string{"/a"}, nil)

	_, err := be.Purge(t.Context(), req)
	require.Error(t, err)
	assert.ErrorContains(t, err, gone)

	d.set(nil, up.URL)
	waitNodes(t, be, up.URL) // refreshed long before the hour is up
	res, err := be.Purge(t.Context(), req)
	require.NoError(t, err)
	assert.Equal(t, []string{"/a"}, up.uris(), "the node that purged is not asked again")
	assert.Equal(t, "ok in an earlier attempt", res.IDs[up.URL])
}

// DNS turns a name into one node per address.
func TestDNS(t *testing.T) {
	t.Parallel()
	nodes, err := httppurge.DNS("http://localhost:6081")(t.Context())
	require.NoError(t, err)
	assert.Contains(t, nodes, "http://127.0.0.1:6081")
	assert.PanicsWithValue(t, `httppurge: DNS("ftp://x"): scheme "ftp": use http or https`, func() { httppurge.DNS("ftp://x") })
}
