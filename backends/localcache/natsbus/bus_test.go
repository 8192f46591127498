package natsbus_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends/localcache"
	"github.com/gormpurge/gormpurge/backends/localcache/bustest"
	"github.com/gormpurge/gormpurge/backends/localcache/natsbus"
	"github.com/gormpurge/gormpurge/internal/tcpproxy"
)

func TestBusConformance(t *testing.T) {
	addr := natsAddr(t)
	bustest.Run(t, func(t *testing.T) *bustest.Harness {
		subj := subject(t)
		pp := tcpproxy.New(t, addr) // the publisher's connection
		fp := tcpproxy.New(t, addr) // the follower's
		return &bustest.Harness{
			Publisher:    newBus(t, connect(t, pp.Addr()), subj),
			Follower:     newBus(t, connect(t, fp.Addr()), subj),
			Cut:          fp.Cut,
			Restore:      fp.Restore,
			CutPublisher: pp.Cut,
		}
	})
}

func TestNewRefusesBadConfiguration(t *testing.T) {
	nc := connect(t, natsAddr(t))
	closed := connect(t, natsAddr(t))
	closed.Close()
	tests := []struct {
		name    string
		nc      *nats.Conn
		subject string
		opts    []natsbus.Option
		want    []string
	}{
		{"nil connection", nil, "gormpurge", nil, []string{"New(nil"}},
		{"closed connection", closed, "gormpurge", nil, []string{"connection is closed"}},
		{"empty subject", nc, "", nil, []string{"subject is empty"}},
		{"star", nc, "gormpurge.*", nil, []string{"wildcard"}},
		{"full wildcard", nc, "gormpurge.>", nil, []string{"wildcard"}},
		{"space", nc, "gorm purge", nil, []string{"white space"}},
		{"empty token", nc, "gormpurge..site", nil, []string{"empty token"}},
		{"trailing dot", nc, "gormpurge.", nil, []string{"empty token"}},
		{"nil option", nc, "gormpurge", []natsbus.Option{nil}, []string{"Option is nil"}},
		{"flush timeout", nc, "gormpurge", []natsbus.Option{natsbus.WithFlushTimeout(0)}, []string{"WithFlushTimeout(0s)"}},
		{"health check", nc, "gormpurge", []natsbus.Option{natsbus.WithHealthCheck(-time.Second)}, []string{"WithHealthCheck(-1s)"}},
		{"pending limits", nc, "gormpurge", []natsbus.Option{natsbus.WithPendingLimits(0, 1)}, []string{"WithPendingLimits(0, 1)"}},
		{"logger", nc, "gormpurge", []natsbus.Option{natsbus.WithLogger(nil)}, []string{"WithLogger(nil)"}},
		{"every problem", nil, "a b", []natsbus.Option{natsbus.WithFlushTimeout(0), nil},
			[]string{"New(nil", "white space", "WithFlushTimeout", "Option is nil"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := natsbus.New(tt.nc, tt.subject, tt.opts...)
			require.Error(t, err)
			assert.Nil(t, b)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
	b, err := natsbus.New(nc, "gormpurge.site-1_a", natsbus.WithFlushTimeout(time.Second),
		natsbus.WithHealthCheck(time.Second), natsbus.WithPendingLimits(10, 1<<20))
	require.NoError(t, err)
	assert.Equal(t, "gormpurge.site-1_a", b.Subject())
}

// A subscription whose connection is closed by its owner ends: Next
// returns an error rather than waiting for ever.
func TestNextEndsWhenTheConnectionIsClosed(t *testing.T) {
	nc := connect(t, natsAddr(t))
	b := newBus(t, nc, subject(t))
	sub, err := b.Subscribe(t.Context())
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Close(context.Background()) })
	e, err := sub.Next(t.Context())
	require.NoError(t, err)
	require.Equal(t, localcache.EventUp, e.Kind)

	nc.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for {
		e, err = sub.Next(ctx)
		if err != nil {
			break
		}
		require.Equal(t, localcache.EventDown, e.Kind, "only EventDown may come once the connection is closed")
	}
	require.NoError(t, ctx.Err(), "Next waited until its context ended")
	assert.ErrorIs(t, err, nats.ErrConnectionClosed)
	_, err = b.Subscribe(t.Context())
	assert.Error(t, err, "Subscribe on a closed connection")
}

// An outage that begins and ends while nobody calls Next is still
// reported: the first event after it is EventDown, before any message
// received since, then EventUp.
func TestOutageUnwatchedIsStillDown(t *testing.T) {
	addr, subj := natsAddr(t), subject(t)
	proxy := tcpproxy.New(t, addr)
	nc := connect(t, proxy.Addr())
	follower := newBus(t, nc, subj)
	publisher := newBus(t, connect(t, addr), subj)
	sub, err := follower.Subscribe(t.Context())
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Close(context.Background()) })
	e, err := sub.Next(t.Context())
	require.NoError(t, err)
	require.Equal(t, localcache.EventUp, e.Kind)

	reconnects := nc.Stats().Reconnects
	proxy.Cut()
	require.Eventually(t, func() bool { return !nc.IsConnected() }, eventually, time.Millisecond)
	require.NoError(t, publisher.Publish(t.Context(), localcache.Event{Kind: localcache.EventPurge, Indexes: []string{"t:lost"}}))
	// Long enough for more status changes than nats.go's listener buffer
	// holds (reconnection attempts every 50ms, each two changes).
	require.Eventually(t, func() bool { return nc.Stats().Reconnects > reconnects+10 }, eventually, time.Millisecond)
	proxy.Restore()
	require.Eventually(t, nc.IsConnected, eventually, time.Millisecond)
	require.NoError(t, nc.Flush()) // the subscription is registered again
	require.NoError(t, publisher.Publish(t.Context(), localcache.Event{Kind: localcache.EventPurge, Indexes: []string{"t:after"}}))

	ctx, cancel := context.WithTimeout(t.Context(), eventually)
	defer cancel()
	e, err = sub.Next(ctx)
	require.NoError(t, err)
	require.Equal(t, localcache.EventDown, e.Kind, "the first event after an unwatched outage")
	assert.NotEmpty(t, e.Reason)
	for {
		e, err = sub.Next(ctx)
		require.NoError(t, err)
		if e.Kind == localcache.EventUp {
			break
		}
		require.Equal(t, localcache.EventDown, e.Kind)
	}
	e, err = sub.Next(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"t:after"}, e.Indexes)
}
