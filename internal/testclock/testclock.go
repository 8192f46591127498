// Package testclock is a clock that tests move by hand, for the packages
// whose time can be injected (the local cache's store, the Akamai fake).
package testclock

import (
	"context"
	"sync"
	"time"
)

// Manual is a clock that moves only when told. It is safe for concurrent
// use; the zero value is not ready, use [New].
type Manual struct {
	mu  sync.Mutex
	now time.Time
}

// New returns a Manual clock reading 2025-01-01 00:00 UTC.
func New() *Manual {
	return &Manual{now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
}

// Now returns the clock's time.
func (c *Manual) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Manual) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Sleep advances the clock by d at once, as if the caller had waited, and
// returns ctx's error.
func (c *Manual) Sleep(ctx context.Context, d time.Duration) error {
	c.Advance(d)
	return ctx.Err()
}
