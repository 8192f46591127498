package cachetest_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/gormpurge/gormpurge/internal/cachetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const host = "www.example.test"

// Each cache serves a second GET from its store, and a PURGE with the same
// Host removes the page; a purge of a page it never cached says so.
func TestCachesCacheAndPurge(t *testing.T) {
	t.Parallel()
	for _, kind := range cachetest.Kinds {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			origin := cachetest.StartOrigin(t, nil)
			c := cachetest.Start(t, kind, origin)

			first := c.Get(t, host, "/articles/1")
			require.Equal(t, http.StatusOK, first.Status)
			assert.False(t, first.Hit, "first GET is a miss")
			second := c.Get(t, host, "/articles/1")
			assert.True(t, second.Hit, "second GET is a hit")
			assert.Equal(t, first.Body, second.Body)

			other := c.Get(t, "other.example.test", "/articles/1")
			assert.False(t, other.Hit, "the Host header is part of the key")

			purged := c.Do(t, "PURGE", host, "/articles/1")
			assert.Equal(t, http.StatusOK, purged.Status, "PURGE of a cached page: %s", purged.Reason)
			after := c.Get(t, host, "/articles/1")
			assert.False(t, after.Hit, "GET after PURGE is a miss")
			assert.NotEqual(t, first.Body, after.Body, "the origin rendered the page again")

			if kind != cachetest.Varnish { // Varnish's plain PURGE says 200 either way
				never := c.Do(t, "PURGE", host, "/never-cached")
				assert.Equal(t, http.StatusNotFound, never.Status)
			}
		})
	}
}

// Restart brings a stopped cache back on the same address, empty.
func TestCacheRestart(t *testing.T) {
	t.Parallel()
	origin := cachetest.StartOrigin(t, nil)
	c := cachetest.Start(t, cachetest.Varnish, origin)
	c.Get(t, host, "/a")
	require.True(t, c.Get(t, host, "/a").Hit)
	url := c.URL

	c.Stop()
	require.False(t, c.Running())
	c.Restart()
	require.True(t, c.Running())
	assert.Equal(t, url, c.URL)
	assert.False(t, c.Get(t, host, "/a").Hit, "a restarted cache is empty")
}
