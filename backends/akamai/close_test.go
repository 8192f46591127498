package akamai_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/akamai"
	"github.com/gormpurge/gormpurge/backends/akamai/akamaitest"
)

// Backend is a backends.Closer: Close is safe twice, with an ended ctx and
// on the zero value.
func TestCloseLifecycle(t *testing.T) {
	var zero akamai.Backend
	assert.NoError(t, zero.Close(t.Context()), "never started")

	srv := akamaitest.NewServer()
	t.Cleanup(srv.Close)
	b, err := akamai.New(akamai.WithCredentials(srv.Credentials()), akamai.WithHTTPClient(srv.Client()))
	require.NoError(t, err)
	var c backends.Closer = b
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	require.NoError(t, c.Close(ended))
	require.NoError(t, c.Close(t.Context()), "twice")
}
