package natsbus_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends/localcache"
	"github.com/gormpurge/gormpurge/backends/localcache/natsbus"
)

// TestUnreadableMessageIsDownWithoutQuotingIt publishes on the bus's
// subject what the bus cannot read, from another publisher: the
// subscription reports EventDown (it may have been a purge) and comes back
// up, and neither the reason nor the log quotes anything of the message,
// only its size.
func TestUnreadableMessageIsDownWithoutQuotingIt(t *testing.T) {
	addr, subj := natsAddr(t), subject(t)
	for _, tc := range []struct {
		name string
		msg  string
	}{
		{"not JSON", "not an event SECRET-PAGE"},
		{"unknown kind", `{"v":1,"o":"other","s":1,"k":"SECRET-PAGE"}`},
		{"other version", `{"v":99,"o":"other","s":1,"k":"SECRET-PAGE"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs syncBuffer
			follower := newBus(t, connect(t, addr), subj,
				natsbus.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
			sub, err := follower.Subscribe(t.Context())
			require.NoError(t, err)
			t.Cleanup(func() { _ = sub.Close(context.Background()) })
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			e, err := sub.Next(ctx)
			require.NoError(t, err)
			require.Equal(t, localcache.EventUp, e.Kind)

			nc := connect(t, addr)
			require.NoError(t, nc.Publish(subj, []byte(tc.msg)))
			require.NoError(t, nc.Flush())
			e, err = sub.Next(ctx)
			require.NoError(t, err)
			require.Equal(t, localcache.EventDown, e.Kind)
			assert.NotContains(t, e.Reason, "SECRET-PAGE", "the reason does not quote the message")
			assert.Contains(t, e.Reason, "bytes", "the reason gives the message's size")
			e, err = sub.Next(ctx)
			require.NoError(t, err)
			require.Equal(t, localcache.EventUp, e.Kind)
			assert.Contains(t, logs.String(), "level=WARN")
			assert.NotContains(t, logs.String(), "SECRET-PAGE", "the log does not quote the message")
		})
	}
}
