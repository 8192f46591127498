package natsbus_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends/localcache"
	"github.com/gormpurge/gormpurge/internal/tcpproxy"
)

// A connection that stops answering without closing (a silent partition)
// is reported EventDown by the health check, then EventUp once it
// answers again.
func TestSilentPartitionIsDownWithinTheHealthCheck(t *testing.T) {
	addr, subj := natsAddr(t), subject(t)
	proxy := tcpproxy.New(t, addr)
	follower := newBus(t, connect(t, proxy.Addr()), subj) // health check 250ms
	publisher := newBus(t, connect(t, addr), subj)
	sub, err := follower.Subscribe(t.Context())
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Close(context.Background()) })
	ctx, cancel := context.WithTimeout(t.Context(), eventually)
	defer cancel()
	e, err := sub.Next(ctx)
	require.NoError(t, err)
	require.Equal(t, localcache.EventUp, e.Kind)

	proxy.Stall()
	stalled := time.Now()
	require.NoError(t, publisher.Publish(ctx, localcache.Event{Kind: localcache.EventPurge, Indexes: []string{"t:held"}}))
	e, err = sub.Next(ctx)
	require.NoError(t, err)
	require.Equal(t, localcache.EventDown, e.Kind, "a stalled connection must yield EventDown")
	assert.True(t, strings.Contains(e.Reason, "health check"), "reason %q", e.Reason)
	t.Logf("down %v after the stall (health check every 250ms)", time.Since(stalled).Round(time.Millisecond))

	proxy.Resume()
	for {
		e, err = sub.Next(ctx)
		require.NoError(t, err)
		if e.Kind == localcache.EventUp {
			break
		}
		require.Equal(t, localcache.EventDown, e.Kind, "only EventDown may come before EventUp")
	}
	require.NoError(t, publisher.Publish(ctx, localcache.Event{Kind: localcache.EventPurge, Indexes: []string{"t:after"}}))
	e, err = sub.Next(ctx)
	require.NoError(t, err)
	if assert.Equal(t, localcache.EventPurge, e.Kind) && slices.Equal(e.Indexes, []string{"t:held"}) {
		e, err = sub.Next(ctx) // held by the stall, not lost
		require.NoError(t, err)
	}
	assert.Equal(t, []string{"t:after"}, e.Indexes)
}
