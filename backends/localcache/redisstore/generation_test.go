package redisstore_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends/localcache"
)

// TestLostGenerationIsNotRepeated deletes the generation, as a Redis
// restart without persistence (or a failover to a replica without it)
// would: a render that began before must not be stored once purges have
// taken the generation back to the number it read.
func TestLostGenerationIsNotRepeated(t *testing.T) {
	rdb := newClient(t, redisAddr(t))
	ctx := t.Context()
	s, prefix := newStore(t, rdb)
	page := &localcache.Entry{Body: []byte("<p>old</p>"), Indexes: []string{"p:/"}, TTL: time.Hour}

	_, err := s.Purge(ctx, []string{"p:/"})
	require.NoError(t, err)
	before, err := s.Generation(ctx) // a render begins
	require.NoError(t, err)

	require.NoError(t, rdb.Del(ctx, "{"+prefix+"}:g").Err()) // Redis restarts, empty
	missing, err := s.Generation(ctx)
	require.NoError(t, err)
	ok, err := s.Set(ctx, "other", page, missing)
	require.NoError(t, err)
	assert.False(t, ok, "a Set with the generation read while it was missing does not store")

	_, err = s.Purge(ctx, []string{"p:/"})
	require.NoError(t, err)
	after, err := s.Generation(ctx)
	require.NoError(t, err)
	assert.NotEqual(t, before, after, "the generation does not repeat one from before Redis lost it")
	ok, err = s.Set(ctx, "page", page, before)
	require.NoError(t, err)
	assert.False(t, ok, "the render begun before is not stored")

	ok, err = s.Set(ctx, "page", page, after)
	require.NoError(t, err)
	assert.True(t, ok, "a render begun after stores")
}

// TestMissingGenerationIsStartedBySet: with no generation in Redis, the
// first Set stores nothing but starts one, with which the next stores.
func TestMissingGenerationIsStartedBySet(t *testing.T) {
	rdb := newClient(t, redisAddr(t))
	ctx := t.Context()
	s, prefix := newStore(t, rdb)
	page := &localcache.Entry{Body: []byte("<p>page</p>"), Indexes: []string{"p:/"}, TTL: time.Hour}
	require.NoError(t, rdb.Del(ctx, "{"+prefix+"}:g").Err())

	g, err := s.Generation(ctx)
	require.NoError(t, err)
	ok, err := s.Set(ctx, "page", page, g)
	require.NoError(t, err)
	assert.False(t, ok, "no Set stores with the generation read while it was missing")
	_, found, err := s.Get(ctx, "page")
	require.NoError(t, err)
	assert.False(t, found)

	g, err = s.Generation(ctx)
	require.NoError(t, err)
	assert.Greater(t, g, uint64(1<<20), "the generation starts at a random, large number")
	ok, err = s.Set(ctx, "page", page, g)
	require.NoError(t, err)
	assert.True(t, ok)
}
