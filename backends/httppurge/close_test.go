package httppurge_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/httppurge"
)

// Backend and Cluster are backends.Closer: Close is safe twice, with an
// ended ctx, and on the zero value; with discovery it stops the goroutine
// (goleak in TestMain checks that it ended).
func TestCloseLifecycle(t *testing.T) {
	var zero httppurge.Backend
	assert.NoError(t, zero.Close(t.Context()), "never started")

	node := newFakeNode(t)
	b, err := httppurge.New(httppurge.WithLogger(quiet),
		httppurge.WithDiscovery(func(context.Context) ([]string, error) { return []string{node.URL}, nil }))
	require.NoError(t, err)
	var c backends.Closer = b
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	require.NoError(t, c.Close(ended), "nothing in flight: an ended ctx is no error")
	require.NoError(t, c.Close(t.Context()), "twice")
	_, err = b.Purge(t.Context(), backends.NewRequest([]string{"/a"}, nil))
	assert.ErrorIs(t, err, httppurge.ErrClosed)

	cl, err := httppurge.NewCluster(httppurge.WithLogger(quiet), httppurge.WithNodes(node.URL))
	require.NoError(t, err)
	c = cl
	require.NoError(t, c.Close(t.Context()))
	require.NoError(t, c.Close(t.Context()), "twice")
}

// With discovery, the first Close with an ended ctx returns nil when no
// Purge is in progress, whether the backend was used or not.
func TestFirstCloseWithAnEndedContextWithDiscovery(t *testing.T) {
	node := newFakeNode(t)
	discover := httppurge.WithDiscovery(func(context.Context) ([]string, error) { return []string{node.URL}, nil })
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	for range 20 {
		b, err := httppurge.New(httppurge.WithLogger(quiet), discover)
		require.NoError(t, err)
		require.NoError(t, b.Close(ended), "never used")
		require.NoError(t, b.Close(ended), "twice")
	}
	b, err := httppurge.New(httppurge.WithLogger(quiet), discover, httppurge.WithSiteHost("h"))
	require.NoError(t, err)
	_, err = b.Purge(t.Context(), backends.NewRequest([]string{"/a"}, nil))
	require.NoError(t, err)
	require.NoError(t, b.Close(ended), "its purges have returned")
}

// Once the first discovery has run, waiting for it succeeds even with an
// ended ctx: Purge then fails, if at all, on its own requests, not with
// "waiting for the first node discovery".
func TestWaitFirstDiscoveryPrefersTheDoneDiscoveryOverAnEndedContext(t *testing.T) {
	node := newFakeNode(t)
	b := newBackend(t, httppurge.WithDiscovery(func(context.Context) ([]string, error) { return []string{node.URL}, nil }))
	require.NoError(t, httppurge.WaitFirstDiscovery(t.Context(), b))
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	for range 100 { // a select between the two ready channels picked one at random
		require.NoError(t, httppurge.WaitFirstDiscovery(ended, b))
	}
}
