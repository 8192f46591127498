package httppurge

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/gormpurge/gormpurge/backends"
)

// Backend sends every purge to every node of a cluster of HTTP caches
// (Varnish, nginx, Squid, or anything that accepts PURGE). Make one with
// [New] and give it to the dispatcher, whose Close closes it after draining
// (Backend implements [backends.Closer]); close it yourself only when you
// use it without a dispatcher. It is safe for concurrent use.
type Backend struct {
	cfg         config
	header      http.Header  // sent with every request; read-only
	headerBlock string       // header as lines, for the own client
	client      *http.Client // WithHTTPClient's, never following redirects; nil for the own client
	dialer      *dialer      // for the own client
	tried       *lru.Cache[requestKey, *progress]
	disc        *discovery // nil with static nodes

	mu      sync.Mutex
	nodes   []*node // current nodes
	active  int     // calls to Purge in progress
	closed  bool
	drained chan struct{} // closed when active drops to 0 after Close
}

var (
	_ backends.Backend   = (*Backend)(nil)
	_ backends.TagPurger = (*Backend)(nil)
	_ backends.Closer    = (*Backend)(nil)
)

// New returns a Backend configured by opts. It returns an error naming each
// invalid setting. With [WithDiscovery], it starts a goroutine that refreshes
// the nodes; Close stops it.
func New(opts ...Option) (*Backend, error) {
	cfg := newConfig(opts)
	nodes, err := cfg.validate()
	if err != nil {
		return nil, fmt.Errorf("httppurge: invalid configuration:\n%w", err)
	}
	return newBackend(cfg, nodes), nil
}

// newBackend builds a Backend from a valid configuration.
func newBackend(cfg config, nodes []*node) *Backend {
	b := &Backend{cfg: cfg, header: cfg.header, headerBlock: headerBlock(cfg.header)}
	if cfg.client != nil {
		c := *cfg.client
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		c.Jar = nil // a cookie jar would write into the request headers the calls share
		b.client = &c
	} else {
		b.dialer = &dialer{
			net:     net.Dialer{Timeout: min(5*time.Second, cfg.requestTimeout), KeepAlive: 30 * time.Second},
			tls:     cfg.tlsConfig,
			timeout: cfg.requestTimeout,
		}
	}
	b.tried, _ = lru.New[requestKey, *progress](progressEntries) // only fails for a size < 1
	for _, n := range nodes {
		b.initNode(n)
	}
	b.nodes = nodes
	if cfg.discoverSet {
		b.disc = startDiscovery(b)
	}
	return b
}

// Name returns the name set with [WithName], "httppurge" by default.
func (b *Backend) Name() string { return b.cfg.name }

// Limits returns at most [WithMaxObjects] objects per call.
func (b *Backend) Limits() backends.Limits {
	return backends.Limits{MaxObjects: b.cfg.maxObjects}
}

// errNoTags is CanPurgeTags's error for a Backend whose TagMode is NoTags.
var errNoTags = errors.New("httppurge: the tag mode is NoTags, which skips tags: pass httppurge.WithTagMode(...) with XKey, SurrogateKey, BanTags or a TagMode of your own")

// CanPurgeTags returns nil when Purge purges tags, and an error naming
// [WithTagMode] when the backend's TagMode is [NoTags], which skips them.
// dispatcher.New calls it for dispatcher.WithEscalation with Tags.
func (b *Backend) CanPurgeTags() error {
	if !b.cfg.tags.enabled() {
		return errNoTags
	}
	return nil
}

// Nodes returns the base URLs of the nodes purges go to now.
func (b *Backend) Nodes() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	keys := make([]string, len(b.nodes))
	for i, n := range b.nodes {
		keys[i] = n.key
	}
	return keys
}

// Purge sends every URL and tag of r to every node, the nodes in parallel,
// and waits for their answers. See the package documentation for the
// requests, and for how answers count.
//
// Result.IDs has an entry per node, keyed by its base URL, saying what it
// did. When some node failed, the error joins one [*NodeError] per failed
// node; it is marked [backends.Permanent] only when retrying cannot help
// any of them. A retry of the same Request value goes only to the nodes
// that have not purged it yet.
func (b *Backend) Purge(ctx context.Context, r backends.Request) (backends.Result, error) {
	res := backends.Result{Backend: b.cfg.name, Objects: r.Len()}
	if !b.enter() {
		return res, backends.Permanent(ErrClosed)
	}
	defer b.leave()
	if r.Empty() {
		res.Detail = "nothing to purge"
		return res, nil
	}
	nodes, err := b.currentNodes(ctx)
	if err != nil {
		res.Detail = err.Error()
		return res, err
	}
	jobs, skipped, refused, bad := b.plan(r)

	key := keyOf(r)
	before, _ := b.tried.Get(key) // nil on a first attempt
	if !before.of(r) {
		before = nil // a caller's reused buffer, holding other objects now
	}
	outs := b.purgeNodes(ctx, nodes, before, jobs)

	after := before.with(r, outs)
	res.IDs, res.Detail = summary(nodes, before, outs, skipped, len(bad))
	var temp, perm []error
	var wait time.Duration
	unreachable, nodesFailed := false, false
	for _, o := range outs {
		switch {
		case o.err == nil:
		case o.err.Temporary:
			temp = append(temp, o.err)
			wait = max(wait, o.err.RetryAfter)
			unreachable = unreachable || o.err.Err != nil
		default:
			perm = append(perm, o.err)
			// A node that refused some requests on their own (400,
			// 413, ...) purged the others: only those objects failed.
			nodesFailed = nodesFailed || o.whole
			refused = refused.Merge(o.refused)
		}
	}
	if unreachable && b.disc != nil {
		b.disc.refreshSoon() // the node may have left the cluster
	}
	earlier := before.failures(nodes)
	nodesFailed = nodesFailed || len(earlier) > 0
	perm = append(perm, earlier...)
	perm = append(perm, bad...)
	if len(temp) > 0 {
		b.tried.Add(key, after)
		err := errors.Join(append(temp, perm...)...)
		if wait > 0 {
			return res, backends.RetryAfter(wait, err)
		}
		return res, err
	}
	b.tried.Remove(key)
	err = backends.Permanent(errors.Join(perm...))
	if !nodesFailed && !refused.Empty() {
		// Every node purged the rest: only the refused objects failed.
		return res, backends.Partial(refused, err)
	}
	return res, err
}

// Close stops the discovery goroutine, waits for calls to Purge in progress
// to return, and closes the backend's idle connections. The dispatcher's
// Close calls it once its queues are drained; without a dispatcher, call
// it yourself. Purge fails with [ErrClosed] afterwards. Close returns ctx's
// cause if it ends first; it may be called more than once.
func (b *Backend) Close(ctx context.Context) error {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		b.drained = make(chan struct{})
		if b.active == 0 {
			close(b.drained)
		}
	}
	drained := b.drained
	b.mu.Unlock()
	// However Close returns, the pools end closed: a connection handed back
	// by a call still in progress is then closed, not kept.
	defer func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, n := range b.nodes {
			if n.pool != nil {
				n.pool.close()
			}
		}
	}()
	if err := b.disc.close(ctx); err != nil {
		return err
	}
	select {
	case <-drained: // nothing in flight: even an ended ctx is no error
		return nil
	default:
	}
	select {
	case <-drained:
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	return nil
}

// initNode readies a new node's request budget and connection pool.
func (b *Backend) initNode(n *node) {
	n.slots = make(chan struct{}, b.cfg.nodeConcurrency)
	if b.client == nil {
		n.pool = &connPool{}
	}
}

// enter registers a call to Purge; it returns false after Close.
func (b *Backend) enter() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return false
	}
	b.active++
	return true
}

// leave ends a call registered by enter; the last one to leave after
// Close lets Close return.
func (b *Backend) leave() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.active--
	if b.active == 0 && b.closed {
		close(b.drained)
	}
}

// currentNodes returns the nodes to purge now, waiting for the first
// discovery when there is one.
func (b *Backend) currentNodes(ctx context.Context) ([]*node, error) {
	if b.disc != nil {
		if err := b.disc.waitFirst(ctx); err != nil {
			return nil, err
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.nodes) == 0 {
		return nil, errors.New("httppurge: no nodes: discovery has found none yet")
	}
	return b.nodes, nil
}

// setNodes replaces the node list with keys (already parsed), keeping the
// state of the nodes that stay. It returns whether the list changed.
func (b *Backend) setNodes(found []*node) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	old := make(map[string]*node, len(b.nodes))
	for _, n := range b.nodes {
		old[n.key] = n
	}
	next := make([]*node, 0, len(found))
	changed := len(found) != len(b.nodes)
	for i, n := range found {
		if o, ok := old[n.key]; ok {
			n = o
			delete(old, n.key)
		} else {
			b.initNode(n)
		}
		if !changed && b.nodes[i].key != n.key {
			changed = true
		}
		next = append(next, n)
	}
	for _, gone := range old {
		if gone.pool != nil {
			gone.pool.close()
		}
	}
	b.nodes = next
	return changed
}

// summary describes the outcome on every node for Result.IDs and
// Result.Detail.
func summary(nodes []*node, before *progress, outs []nodeOutcome, skippedTags, bad int) (map[string]string, string) {
	ids := make(map[string]string, len(nodes))
	ok, failed, purged, notCached := 0, 0, 0, 0
	for _, n := range nodes {
		if s, isFailure := before.describe(n.key); s != "" {
			ids[n.key] = s
			if isFailure {
				failed++
			} else {
				ok++
			}
		}
	}
	for _, o := range outs {
		purged += o.purged
		notCached += o.notCached
		if o.err != nil {
			failed++
			ids[o.node.key] = fmt.Sprintf("failed: %s", o.err.short())
			continue
		}
		ok++
		ids[o.node.key] = fmt.Sprintf("ok: %d purged, %d not cached", o.purged, o.notCached)
	}
	parts := []string{fmt.Sprintf("%d of %d nodes ok", ok, ok+failed)}
	parts = append(parts, fmt.Sprintf("%d requests purged, %d not cached", purged, notCached))
	if skippedTags > 0 {
		parts = append(parts, fmt.Sprintf("%d tags skipped (NoTags)", skippedTags))
	}
	if bad > 0 {
		parts = append(parts, fmt.Sprintf("%d objects refused", bad))
	}
	return ids, strings.Join(parts, "; ")
}
