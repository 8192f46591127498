// Package natsbus carries purges and clears between the instances of an
// application over NATS, each instance keeping pages in a store of its own:
// a [localcache.Bus].
//
//	nc, err := nats.Connect(url, nats.MaxReconnects(-1))
//	bus, err := natsbus.New(nc, "gormpurge.mysite")
//	backend, err := localcache.NewBackend(store, localcache.WithBus(bus))
//	go localcache.Follow(ctx, store, bus)
//
// # Core NATS, not JetStream
//
// The bus uses core NATS publish and subscribe: at-most-once delivery,
// nothing stored on the server. That is enough, because a follower needs
// no purge it missed: a purge is idempotent, and a follower that may have
// missed one (it was disconnected, it fell behind, a sequence number
// skipped) clears its store instead, which is always correct. A durable
// stream would add a server-side store to configure and a replay of old
// purges to every follower that starts, for nothing a cleared cache does
// not already give.
//
// # Delivery and staleness
//
// [Bus.Publish] sends an event and waits for the server's PONG (a flush),
// so that a purge the server never received is reported as an error and
// retried by the dispatcher: nats.go buffers what is published while it
// reconnects and would otherwise report success. A page purged on one
// instance is gone from the others one NATS delivery later, typically
// well under a millisecond at the median on a local network
// (BenchmarkPurgeToGone, from the start of one instance's purge to the end
// of another's; the README gives the figures measured). A follower whose connection breaks hears EventDown as soon
// as nats.go notices (at once for a closed TCP connection); a silent
// partition, a connection that stops answering without closing, is
// noticed by the health check (see [WithHealthCheck]) within about twice
// its interval, two seconds by default: that bounds how long a follower
// may serve a page whose purge it has not received.
//
// # Pending limits
//
// nats.go queues a subscription's messages until [localcache.Follow]
// takes them, up to [WithPendingLimits] (65,536 messages and 64 MiB by
// default, nats.go's own defaults; the connection's nats.SyncQueueLen
// also bounds the messages). When a follower falls further behind, the
// messages that do not fit are dropped, so memory stays bounded: the
// subscription then reports EventDown, Follow clears the store, and the
// subscription comes up again. The server also closes the connection of a
// client that reads too slowly; the subscription reports that as a broken
// connection.
package natsbus
