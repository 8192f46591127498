package localcache

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMemoryStoreClearDropsTheIndex looks inside the store: after Clear,
// neither entries nor index keys nor bytes are left.
func TestMemoryStoreClearDropsTheIndex(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, err := NewMemoryStore()
	require.NoError(t, err)
	for _, k := range []string{"a", "b"} {
		ok, err := s.Set(ctx, k, &Entry{Body: []byte("x"), TTL: time.Hour, Indexes: []string{"p /" + k, "t all"}}, 0)
		require.NoError(t, err)
		require.True(t, ok)
	}
	require.Len(t, s.index, 3)

	_, err = s.Clear(ctx)
	require.NoError(t, err)
	assert.Empty(t, s.index)
	assert.Zero(t, s.lru.Len())
	assert.Zero(t, s.bytes)
}
