package localcache_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends/localcache"
	"github.com/gormpurge/gormpurge/internal/testclock"
)

func entry(body string, ttl time.Duration, indexes ...string) *localcache.Entry {
	return &localcache.Entry{Body: []byte(body), TTL: ttl, Indexes: indexes}
}

func TestMemoryStoreEvictsLeastRecentlyUsed(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	body := strings.Repeat("x", 1000)
	// Room for about three entries of ~1.3 KB.
	s := newStore(t, localcache.WithMaxBytes(4000))

	for _, k := range []string{"a", "b", "c"} {
		ok, err := s.Set(ctx, k, entry(body, time.Hour, "p /"+k), 0)
		require.NoError(t, err)
		require.True(t, ok)
	}
	_, ok, _ := s.Get(ctx, "a") // a is now the most recently used
	require.True(t, ok)
	_, _ = s.Set(ctx, "d", entry(body, time.Hour, "p /d"), 0)

	for k, want := range map[string]bool{"a": true, "b": false, "c": true, "d": true} {
		_, ok, _ := s.Get(ctx, k)
		assert.Equal(t, want, ok, k)
	}
	assert.LessOrEqual(t, s.Bytes(), int64(4000))

	n, err := s.Purge(ctx, []string{"p /b"})
	require.NoError(t, err)
	assert.Zero(t, n, "an evicted entry leaves no index behind")
}

func TestMemoryStoreStaysWithinMaxBytes(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := newStore(t, localcache.WithMaxBytes(50_000))
	for i := range 1000 {
		_, _ = s.Set(ctx, fmt.Sprint(i), entry(strings.Repeat("x", i%700), time.Hour, fmt.Sprint("p /", i), "t all"), 0)
		require.LessOrEqual(t, s.Bytes(), int64(50_000))
	}
	n, err := s.Purge(ctx, []string{"t all"})
	require.NoError(t, err)
	assert.Equal(t, n > 0, true)
	assert.Zero(t, s.Len())
	assert.Zero(t, s.Bytes(), "every byte is given back")
}

func TestMemoryStoreRefusesEntryLargerThanStore(t *testing.T) {
	t.Parallel()
	s := newStore(t, localcache.WithMaxBytes(1000))
	ok, err := s.Set(t.Context(), "k", entry(strings.Repeat("x", 2000), time.Hour), 0)
	require.NoError(t, err)
	assert.False(t, ok)
	assert.Zero(t, s.Len())
}

func TestMemoryStoreExpiry(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	clock := testclock.New()
	s := newStore(t, localcache.WithClock(clock.Now))
	_, _ = s.Set(ctx, "k", entry("x", time.Minute, "p /k"), 0)

	clock.Advance(time.Minute - time.Nanosecond)
	_, ok, _ := s.Get(ctx, "k")
	assert.True(t, ok)
	clock.Advance(time.Nanosecond)
	_, ok, _ = s.Get(ctx, "k")
	assert.False(t, ok)
	assert.Zero(t, s.Len(), "removed when read")
	assert.Zero(t, s.Bytes())
}

func TestMemoryStoreReplacesEntry(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := newStore(t)
	_, _ = s.Set(ctx, "k", entry("old", time.Hour, "t old"), 0)
	_, _ = s.Set(ctx, "k", entry("new", time.Hour, "t new"), 0)
	e, ok, _ := s.Get(ctx, "k")
	require.True(t, ok)
	assert.Equal(t, "new", string(e.Body))
	n, _ := s.Purge(ctx, []string{"t old"})
	assert.Zero(t, n, "the old entry's indexes went with it")
	assert.Equal(t, 1, s.Len())
}

func TestMemoryStoreSetAfterPurgeIsRefused(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := newStore(t)
	gen, err := s.Generation(ctx)
	require.NoError(t, err)
	_, _ = s.Purge(ctx, []string{"p /unrelated"})
	ok, err := s.Set(ctx, "k", entry("rendered before the purge", time.Hour), gen)
	require.NoError(t, err)
	assert.False(t, ok)

	gen, _ = s.Generation(ctx)
	ok, _ = s.Set(ctx, "k", entry("rendered after", time.Hour), gen)
	assert.True(t, ok)
}

func TestNewMemoryStoreRefusesInvalidOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts []localcache.StoreOption
		want []string // each must appear in the error
	}{
		{"zero size", []localcache.StoreOption{localcache.WithMaxBytes(0)},
			[]string{"localcache: invalid store configuration", "WithMaxBytes(0): the store needs a positive size in bytes, such as 64<<20"}},
		{"negative size", []localcache.StoreOption{localcache.WithMaxBytes(-1)}, []string{"WithMaxBytes(-1)"}},
		{"nil clock", []localcache.StoreOption{localcache.WithClock(nil)}, []string{"WithClock(nil): pass time.Now"}},
		{"nil option", []localcache.StoreOption{nil},
			[]string{"localcache: invalid store configuration", "a StoreOption is nil: remove it, or pass one made by a With... function"}},
		{"every mistake at once", []localcache.StoreOption{localcache.WithClock(nil), nil, localcache.WithMaxBytes(0)},
			[]string{"WithClock(nil)", "a StoreOption is nil", "WithMaxBytes(0)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := localcache.NewMemoryStore(tt.opts...)
			require.Error(t, err)
			assert.Nil(t, s)
			for _, want := range tt.want {
				assert.ErrorContains(t, err, want)
			}
		})
	}
}

func TestMemoryStoreClear(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := newStore(t)
	gen, err := s.Generation(ctx)
	require.NoError(t, err)
	for _, k := range []string{"a", "b", "c"} {
		_, _ = s.Set(ctx, k, entry("x", time.Hour, "p /"+k, "t all"), gen)
	}

	n, err := s.Clear(ctx)
	require.NoError(t, err)
	assert.Equal(t, 3, n)
	assert.Zero(t, s.Len())
	assert.Zero(t, s.Bytes())

	ok, _ := s.Set(ctx, "a", entry("rendered before the clear", time.Hour), gen)
	assert.False(t, ok, "the generation changed")
	gen, _ = s.Generation(ctx)
	ok, _ = s.Set(ctx, "a", entry("rendered after", time.Hour, "p /new"), gen)
	assert.True(t, ok)
	assert.Equal(t, 1, s.Len())

	// The new "a" is not indexed under "t all": a purge of it would find
	// the new entry only through an index the clear left behind.
	n, err = s.Purge(ctx, []string{"t all", "p /a"})
	require.NoError(t, err)
	assert.Zero(t, n, "no index left behind")
	assert.Equal(t, 1, s.Len())
	n, _ = s.Purge(ctx, []string{"p /new"})
	assert.Equal(t, 1, n)
}

func TestMemoryStoreTTL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		ttl    time.Duration
		stored bool
	}{
		{"0 is until purged", 0, true},
		{"negative is refused", -time.Second, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			clock := testclock.New()
			s := newStore(t, localcache.WithClock(clock.Now))
			ok, err := s.Set(ctx, "k", entry("x", tt.ttl, "p /k"), 0)
			require.NoError(t, err)
			assert.Equal(t, tt.stored, ok)

			clock.Advance(100 * 365 * 24 * time.Hour)
			_, ok, _ = s.Get(ctx, "k")
			assert.Equal(t, tt.stored, ok)
			if tt.stored {
				n, _ := s.Purge(ctx, []string{"p /k"})
				assert.Equal(t, 1, n, "until purged")
			}
		})
	}
}
