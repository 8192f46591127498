package redisstore_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends/localcache"
	"github.com/gormpurge/gormpurge/backends/localcache/redisstore"
)

// TestFullRedisStillPurges fills a Redis whose maxmemory-policy is
// noeviction: once it is full, Set is refused and stores nothing, leaving
// the indexes as they were, while Purge and Clear still run, so that no
// purged page is served.
func TestFullRedisStillPurges(t *testing.T) {
	addr := startRedis(t, "--maxmemory", "4mb", "--maxmemory-policy", "noeviction")
	rdb := newClient(t, addr)
	ctx := t.Context()
	s, prefix := newStore(t, rdb, redisstore.WithRetryAfterError(0))
	body := []byte(strings.Repeat("x", 10_000))

	refused := -1
	for i := range 2000 { // 20 MB, five times maxmemory
		g, err := s.Generation(ctx)
		require.NoError(t, err)
		ok, err := s.Set(ctx, fmt.Sprint("k", i), &localcache.Entry{Body: body, Indexes: []string{fmt.Sprint("p:/", i)}, TTL: time.Hour}, g)
		if err != nil || !ok {
			refused = i
			break
		}
	}
	require.Positive(t, refused, "Redis refuses to store once over its maxmemory")
	_, ok, err := s.Get(ctx, fmt.Sprint("k", refused))
	require.NoError(t, err)
	assert.False(t, ok, "the refused entry is not stored")
	indexed, err := rdb.HExists(ctx, "{"+prefix+"}:x", fmt.Sprint("k", refused)).Result()
	require.NoError(t, err)
	assert.False(t, indexed, "the refused entry is not recorded in the indexes")
	members, err := rdb.SMembers(ctx, "{"+prefix+"}:i:p:/"+fmt.Sprint(refused)).Result()
	require.NoError(t, err)
	assert.Empty(t, members, "the refused entry's index set is untouched")

	_, ok, err = s.Get(ctx, "k0")
	require.NoError(t, err)
	require.True(t, ok)
	n, err := s.Purge(ctx, []string{"p:/0"})
	require.NoError(t, err, "a full Redis still purges")
	assert.Equal(t, 1, n)
	_, ok, err = s.Get(ctx, "k0")
	require.NoError(t, err)
	assert.False(t, ok, "the purged page is gone")

	n, err = s.Clear(ctx)
	require.NoError(t, err, "a full Redis still clears")
	assert.Equal(t, refused-1, n)
	_, ok, err = s.Get(ctx, "k1")
	require.NoError(t, err)
	assert.False(t, ok, "the cleared pages are gone")
}
