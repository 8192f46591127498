// Package natsbus carries purges and clears between the instances of an
// application over NATS, each instance keeping pages in a store of its own:
// a [localcache.Bus].
package natsbus
