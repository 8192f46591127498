package natsbus

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends/localcache"
	"github.com/gormpurge/gormpurge/internal/tcpproxy"
	"github.com/gormpurge/gormpurge/internal/testsvc"
)

// reconnectingConn is a real connection, through a proxy, whose Publish
// breaks the connection and waits for nats.go to re-establish it before
// returning: the message was handed to a connection that is gone, and the
// flush that follows goes over the new one and succeeds. On a real
// network this happens when a connection drops between the write and the
// flush, and nats.go reconnects before Publish checks the status: a window
// too short to hit from outside Publish, hence this wrapper.
type reconnectingConn struct {
	*nats.Conn
	t     *testing.T
	proxy *tcpproxy.Proxy
}

func (c reconnectingConn) Publish(subject string, data []byte) error {
	before := c.Stats().Reconnects
	err := c.Conn.Publish(subject, data)
	c.proxy.Cut()
	require.Eventually(c.t, func() bool { return c.Status() != nats.CONNECTED }, 10*time.Second, time.Millisecond, "nats.go never noticed the cut")
	c.proxy.Restore()
	require.Eventually(c.t, func() bool {
		return c.Status() == nats.CONNECTED && c.Stats().Reconnects > before
	}, 10*time.Second, time.Millisecond, "nats.go never reconnected")
	return err
}

// A publish whose connection was re-established between the write and the
// server's confirmation is not reported as delivered: the event may have
// been lost with the old connection.
func TestPublishAcrossAReconnectFails(t *testing.T) {
	proxy := tcpproxy.New(t, testsvc.NATSAddr(t))
	nc, err := nats.Connect("nats://"+proxy.Addr(),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(20*time.Millisecond),
		nats.ReconnectJitter(time.Millisecond, time.Millisecond),
		nats.Timeout(2*time.Second),
	)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	b, err := New(nc, "gormpurge.test.reconnect."+nats.NewInbox()[len("_INBOX."):])
	require.NoError(t, err)

	ctx := context.Background()
	require.NoError(t, b.Publish(ctx, localcache.Event{Kind: localcache.EventPurge, Indexes: []string{"u:/a"}}))

	b.pub = reconnectingConn{Conn: nc, t: t, proxy: proxy}
	err = b.Publish(ctx, localcache.Event{Kind: localcache.EventPurge, Indexes: []string{"u:/b"}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "re-established")

	b.pub = nc
	assert.NoError(t, b.Publish(ctx, localcache.Event{Kind: localcache.EventPurge, Indexes: []string{"u:/b"}}), "the retry goes through")
}
