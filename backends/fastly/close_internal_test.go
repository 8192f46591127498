package fastly

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// closeCounter is a transport that counts CloseIdleConnections calls.
type closeCounter struct {
	http.RoundTripper
	closed int
}

func (c *closeCounter) CloseIdleConnections() { c.closed++ }

// Close closes the idle connections of the backend's own client only: a
// client given with WithHTTPClient belongs to its caller, who may share it.
func TestCloseClosesOnlyItsOwnClient(t *testing.T) {
	base := []Option{WithAPIToken("tok"), WithServiceID("svc")}

	given := &closeCounter{RoundTripper: http.DefaultTransport}
	b, err := New(append(base, WithHTTPClient(&http.Client{Transport: given}))...)
	require.NoError(t, err)
	require.NoError(t, b.Close(t.Context()))
	require.NoError(t, b.Close(t.Context()))
	assert.Zero(t, given.closed, "a client given with WithHTTPClient is left open")

	b, err = New(base...)
	require.NoError(t, err)
	own := &closeCounter{RoundTripper: b.client.Transport}
	b.client.Transport = own
	require.NoError(t, b.Close(t.Context()))
	assert.Equal(t, 1, own.closed, "the backend's own client is closed")

	require.NoError(t, (&Backend{}).Close(t.Context()), "the zero Backend")
}
