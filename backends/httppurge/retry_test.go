package httppurge_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/httppurge"
)

// A node that cannot be reached fails temporarily, named, and the others
// are purged all the same.
func TestUnreachableNode(t *testing.T) {
	t.Parallel()
	for _, cl := range clients {
		t.Run(cl.name, func(t *testing.T) {
			t.Parallel()
			testUnreachableNode(t, cl.opts(t))
		})
	}
}

func testUnreachableNode(t *testing.T, opts []httppurge.Option) {
	up, down := newFakeNode(t), downNode(t)
	b := newBackend(t, append(opts, httppurge.WithNodes(up.URL, down), httppurge.WithSiteHost("www.example.com"))...)
	res, err := b.Purge(t.Context(), backends.NewRequest([]string{"/a", "/b", "/c"}, nil))
	require.Error(t, err)
	assert.False(t, backends.IsPermanent(err))
	errs := nodeErrors(err)
	require.Len(t, errs, 1)
	assert.Equal(t, down, errs[0].Node)
	assert.Zero(t, errs[0].StatusCode)
	assert.ErrorContains(t, errs[0], "connection refused")
	assert.Equal(t, 3, errs[0].Failed)
	assert.Equal(t, []string{"/a", "/b", "/c"}, sorted(up.uris()))
	assert.Equal(t, "ok: 3 purged, 0 not cached", res.IDs[up.URL])
	assert.Contains(t, res.IDs[down], "connection refused")
	assert.Contains(t, res.Detail, "1 of 2 nodes ok")
}

// A retry of the same Request goes only to the nodes that have not purged
// it; a new Request for the same pages goes to every node again.
func TestRetryGoesToFailedNodesOnly(t *testing.T) {
	t.Parallel()
	ok, flaky := newFakeNode(t), newFakeNode(t)
	flaky.status(503, "Backend fetch failed")
	b := newBackend(t, httppurge.WithNodes(ok.URL, flaky.URL), httppurge.WithSiteHost("www.example.com"))
	req := backends.NewRequest([]string{"/a"}, []string{"t"})

	_, err := b.Purge(t.Context(), req)
	require.Error(t, err)
	require.Len(t, ok.requests(), 2)

	_, err = b.Purge(t.Context(), req) // still failing
	require.Error(t, err)
	flaky.answer(nil)
	res, err := b.Purge(t.Context(), req)
	require.NoError(t, err)
	assert.Len(t, ok.requests(), 2, "the node that purged is not asked again")
	assert.Equal(t, "ok in an earlier attempt", res.IDs[ok.URL])
	assert.Equal(t, "ok: 2 purged, 0 not cached", res.IDs[flaky.URL])

	_, err = b.Purge(t.Context(), backends.NewRequest([]string{"/a"}, []string{"t"}))
	require.NoError(t, err)
	assert.Len(t, ok.requests(), 4, "a new request for the same pages goes to every node")
}

// A node that refuses for good is reported once every other node is done,
// and the batch then fails for good.
func TestPermanentFailureReportedAfterRetries(t *testing.T) {
	t.Parallel()
	acl, flaky := newFakeNode(t), newFakeNode(t)
	acl.status(405, "Not allowed.")
	flaky.status(503, "Service Unavailable")
	b := newBackend(t, httppurge.WithNodes(acl.URL, flaky.URL), httppurge.WithSiteHost("www.example.com"))
	req := backends.NewRequest([]string{"/a"}, nil)

	_, err := b.Purge(t.Context(), req)
	require.Error(t, err)
	assert.False(t, backends.IsPermanent(err), "the 503 node may succeed on a retry")
	assert.Len(t, nodeErrors(err), 2)

	flaky.answer(nil)
	res, err := b.Purge(t.Context(), req)
	require.Error(t, err)
	assert.True(t, backends.IsPermanent(err))
	errs := nodeErrors(err)
	require.Len(t, errs, 1)
	assert.Equal(t, acl.URL, errs[0].Node)
	assert.Equal(t, 405, errs[0].StatusCode)
	assert.Len(t, acl.requests(), 1, "a refusal for good is not retried")
	assert.Equal(t, "failed in an earlier attempt: 405 Not allowed.", res.IDs[acl.URL])
}
