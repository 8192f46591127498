package localcache_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends/localcache"
	"github.com/gormpurge/gormpurge/backends/localcache/storetest"
)

// TestMemoryStoreConformance runs the store conformance suite, which the
// Redis store passes too, on the memory store.
func TestMemoryStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) localcache.Store {
		s, err := localcache.NewMemoryStore(localcache.WithMaxBytes(64 << 10))
		require.NoError(t, err)
		return s
	}, storetest.WithMaxEntryBytes(64<<10))
}
