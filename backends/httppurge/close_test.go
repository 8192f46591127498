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
