package httppurge

import "context"

// WaitFirstDiscovery waits until b's first node discovery has run, as Purge
// does.
func WaitFirstDiscovery(ctx context.Context, b *Backend) error { return b.disc.waitFirst(ctx) }
