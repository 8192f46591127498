package natsbus_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends/localcache/natsbus"
	"github.com/gormpurge/gormpurge/internal/testsvc"
)

// natsAddr returns the test server's host:port, for a tcpproxy.
func natsAddr(tb testing.TB) string {
	tb.Helper()
	return testsvc.NATSAddr(tb)
}

// subject returns a subject no other test uses.
func subject(testing.TB) string { return testsvc.UniqueName("gormpurge.test.") }

// connect connects to the NATS server at addr (host:port), reconnecting
// quickly and for ever, and closes the connection when tb ends.
func connect(tb testing.TB, addr string, opts ...nats.Option) *nats.Conn {
	tb.Helper()
	opts = append([]nats.Option{
		nats.Name("gormpurge natsbus test"),
		nats.ReconnectWait(50 * time.Millisecond),
		nats.ReconnectJitter(10*time.Millisecond, 10*time.Millisecond),
		nats.MaxReconnects(-1),
		nats.PingInterval(time.Second),
		nats.Timeout(2 * time.Second),
		// The slow-consumer test makes nats.go drop messages on purpose;
		// the subscription reports it.
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}),
	}, opts...)
	nc, err := nats.Connect("nats://"+addr, opts...)
	require.NoError(tb, err, "connect to NATS at %s", addr)
	tb.Cleanup(nc.Close)
	return nc
}

// newBus returns a bus on nc and subject, with a short health check.
func newBus(tb testing.TB, nc *nats.Conn, subj string, opts ...natsbus.Option) *natsbus.Bus {
	tb.Helper()
	opts = append([]natsbus.Option{natsbus.WithHealthCheck(250 * time.Millisecond)}, opts...)
	b, err := natsbus.New(nc, subj, opts...)
	require.NoError(tb, err)
	return b
}
