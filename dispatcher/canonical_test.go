package dispatcher_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends"
)

// Every backend receives the canonical form of what a user enqueued, however
// it was spelled; objects that have none are refused by name and the rest
// is delivered.
func TestEnqueueDeliversCanonicalObjects(t *testing.T) {
	a := &fakeBackend{name: "a"}
	d := newDispatcher(t, []backends.Backend{a})
	err := d.Enqueue(t.Context(), backends.Request{
		URLs: []string{"/search?q=caf\u00e9", "/search?q=caf%c3%a9", "/x?a=b c", "HTTPS://WWW.Example.COM:443/a", "//evil.example/x", "https://admin:s3cr3t@host/"},
		Tags: []string{"post-1", "bad tag", "post-1"},
	})
	var oe *backends.ObjectError
	require.ErrorAs(t, err, &oe)
	assert.ErrorContains(t, err, `url "//evil.example/x" refused`)
	assert.ErrorContains(t, err, `tag "bad tag" refused`)
	assert.NotContains(t, err.Error(), "s3cr3t")
	require.NoError(t, d.Flush(t.Context()))
	a.mu.Lock()
	delivered := a.delivered
	a.mu.Unlock()
	require.Len(t, delivered, 1)
	assert.Equal(t, []string{"/search?q=caf%C3%A9", "/x?a=b%20c", "/x?a=b+c", "https://www.example.com/a"}, delivered[0].URLs,
		"a space in a query is purged as browsers and forms spell it")
	assert.Equal(t, []string{"post-1"}, delivered[0].Tags)

	tk, err := d.Submit(t.Context(), backends.Request{URLs: []string{"//evil.example/x"}})
	require.ErrorIs(t, err, backends.ErrInvalidURL)
	require.NotNil(t, tk)
	assert.Empty(t, tk.Outcomes(), "nothing valid was offered")
}
