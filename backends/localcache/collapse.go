package localcache

import "sync"

// fill is what a miss produced, shared with the requests that waited on it.
type fill struct {
	key   string // the variant key the entry belongs under
	entry *Entry
	gen   uint64 // the store's generation the page was rendered under
}

// flights collapses concurrent misses of one key into one render: the
// first request leads, the others wait until it releases them.
type flights struct {
	mu    sync.Mutex
	calls map[string]*flight
}

// flight is one render that other requests may wait on.
type flight struct {
	done     chan struct{} // closed by release
	fill     *fill         // set before done closes; nil: render your own
	released bool          // guarded by flights.mu
}

// join returns the flight of key, and whether the caller leads it: then it
// must call release.
func (g *flights) join(key string) (*flight, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if c, ok := g.calls[key]; ok {
		return c, false
	}
	if g.calls == nil {
		g.calls = make(map[string]*flight)
	}
	c := &flight{done: make(chan struct{})}
	g.calls[key] = c
	return c, true
}

// release ends the wait on c with f. Only the first call counts. The flight
// stays joinable until finish, so that a miss arriving while the leader
// still sends and stores the page shares it too.
func (g *flights) release(c *flight, f *fill) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if c.released {
		return
	}
	c.released, c.fill = true, f
	close(c.done)
}

// finish releases c (with nothing, if it was not released yet) and lets the
// next miss of key lead a flight of its own. The leader calls it once the
// page is stored or known not to be.
func (g *flights) finish(key string, c *flight) {
	g.release(c, nil)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.calls[key] == c {
		delete(g.calls, key)
	}
}
