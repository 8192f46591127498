package natsbus_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends/localcache"
	"github.com/gormpurge/gormpurge/internal/tcpproxy"
)

// A publish refused because the connection is down uses up a message
// number, as a failed send does: the next message shows the other
// instances a gap, so that Follow clears their stores instead of trusting
// that they missed nothing.
func TestRefusedPublishLeavesAGap(t *testing.T) {
	addr, subj := natsAddr(t), subject(t)
	proxy := tcpproxy.New(t, addr)
	pc := connect(t, proxy.Addr())
	pub := newBus(t, pc, subj)
	follower := newBus(t, connect(t, addr), subj)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sub, err := follower.Subscribe(ctx)
	require.NoError(t, err)
	defer func() { _ = sub.Close(context.Background()) }()
	e, err := sub.Next(ctx)
	require.NoError(t, err)
	require.Equal(t, localcache.EventUp, e.Kind)

	require.NoError(t, pub.Publish(ctx, localcache.Event{Kind: localcache.EventPurge, Indexes: []string{"u:/a"}}))
	first, err := sub.Next(ctx)
	require.NoError(t, err)
	require.Equal(t, localcache.EventPurge, first.Kind)

	proxy.Cut()
	require.Eventually(t, func() bool { return pc.Status() != nats.CONNECTED }, eventually, time.Millisecond)
	err = pub.Publish(ctx, localcache.Event{Kind: localcache.EventPurge, Indexes: []string{"u:/b"}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not connected")
	proxy.Restore()
	require.Eventually(t, func() bool { return pc.Status() == nats.CONNECTED }, eventually, time.Millisecond)

	require.NoError(t, pub.Publish(ctx, localcache.Event{Kind: localcache.EventPurge, Indexes: []string{"u:/b"}}))
	next, err := sub.Next(ctx)
	require.NoError(t, err)
	require.Equal(t, localcache.EventPurge, next.Kind)
	assert.Equal(t, []string{"u:/b"}, next.Indexes)
	assert.Equal(t, first.Origin, next.Origin)
	assert.Greater(t, next.Seq, first.Seq+1, "the follower must see a gap where the refused purge was")
}
