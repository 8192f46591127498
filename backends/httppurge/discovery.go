package httppurge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/internal/lifecycle"
)

// minRefreshGap is the shortest time between two discovery calls when
// failures ask for an early refresh.
const minRefreshGap = time.Second

// discovery refreshes a Backend's nodes from the WithDiscovery function, on
// its own goroutine, until close.
type discovery struct {
	b     *Backend
	fn    func(ctx context.Context) ([]string, error)
	lc    *lifecycle.Lifecycle // owns the goroutine; no drain: close cancels a call in progress at once
	kick  chan struct{}        // capacity 1: refresh soon
	first chan struct{}        // closed after the first refresh, good or bad

	mu      sync.Mutex
	lastErr error // of the latest refresh; nil after a good one
}

func startDiscovery(b *Backend) *discovery {
	d := &discovery{
		b:     b,
		fn:    b.cfg.discover,
		lc:    lifecycle.New(lifecycle.Hooks{}),
		kick:  make(chan struct{}, 1),
		first: make(chan struct{}),
	}
	d.lc.Go(d.loop)
	return d
}

// loop refreshes at once, then every interval, and on refreshSoon no more
// often than minRefreshGap.
func (d *discovery) loop() {
	timer := time.NewTimer(0)
	defer timer.Stop()
	var last time.Time
	for {
		select {
		case <-d.lc.Done():
			return
		case <-timer.C:
		case <-d.kick:
			if wait := minRefreshGap - time.Since(last); wait > 0 {
				timer.Reset(wait)
				continue
			}
		}
		d.refresh()
		if last.IsZero() {
			close(d.first)
		}
		last = time.Now()
		timer.Reset(d.b.cfg.discoveryInterval)
	}
}

// refresh calls the discovery function once and installs what it found.
func (d *discovery) refresh() {
	cfg := &d.b.cfg
	ctx, cancel := context.WithTimeout(d.lc.Context(), cfg.requestTimeout)
	defer cancel()
	found, err := d.call(ctx)
	var nodes []*node
	seen := map[string]bool{}
	for _, s := range found {
		n, perr := parseNode(s)
		if perr != nil {
			cfg.logger.LogAttrs(ctx, slog.LevelWarn, "httppurge: discovery returned an invalid node; skipping it",
				slog.String("backend", cfg.name), slog.String("node", backends.RedactURL(s)), slog.Any("error", perr))
			continue
		}
		if !seen[n.key] {
			seen[n.key] = true
			nodes = append(nodes, n)
		}
	}
	if err == nil && len(nodes) == 0 {
		err = errors.New("discovery found no valid node")
	}
	d.mu.Lock()
	d.lastErr = err
	d.mu.Unlock()
	if err != nil {
		if d.lc.Context().Err() == nil {
			cfg.logger.LogAttrs(ctx, slog.LevelWarn, "httppurge: node discovery failed; keeping the last nodes",
				slog.String("backend", cfg.name), slog.Int("nodes", len(d.b.Nodes())), slog.Any("error", err))
		}
		return
	}
	if d.b.setNodes(nodes) {
		cfg.logger.LogAttrs(ctx, slog.LevelInfo, "httppurge: nodes changed",
			slog.String("backend", cfg.name), slog.Any("nodes", d.b.Nodes()))
	}
}

// call runs the discovery function, turning a panic into an error.
func (d *discovery) call(ctx context.Context) (nodes []string, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("discovery function panicked: %v", p)
		}
	}()
	return d.fn(ctx)
}

// refreshSoon asks for a refresh without waiting for it.
func (d *discovery) refreshSoon() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// waitFirst waits until the first refresh has run. It returns the error of
// the latest refresh when no node is known.
func (d *discovery) waitFirst(ctx context.Context) error {
	select {
	case <-d.first: // already run: preferred to an ended ctx, which select would pick half the time
	default:
		if err := d.waitFirstSlow(ctx); err != nil {
			return err
		}
	}
	d.mu.Lock()
	err := d.lastErr
	d.mu.Unlock()
	if err != nil && len(d.b.Nodes()) == 0 {
		d.refreshSoon()
		return fmt.Errorf("httppurge: no nodes: %w", err)
	}
	return nil
}

// waitFirstSlow waits until the first refresh has run, Close begins or ctx
// ends.
func (d *discovery) waitFirstSlow(ctx context.Context) error {
	select {
	case <-d.first:
		return nil
	case <-d.lc.Stopping():
		return backends.Permanent(ErrClosed)
	case <-ctx.Done():
		return fmt.Errorf("httppurge: waiting for the first node discovery: %w", context.Cause(ctx))
	}
}

// close ends the goroutine, cancelling a call to the discovery function in
// progress, and waits for it to return (a function that ignores its
// context holds close up). A nil discovery, for static nodes, has nothing
// to close.
func (d *discovery) close(ctx context.Context) error {
	if d == nil {
		return nil
	}
	return d.lc.Close(ctx)
}

// DNS returns a discovery function for [WithDiscovery] that resolves the
// host of base and returns one node per address, with base's scheme and
// port: DNS("http://varnish.cache.svc.cluster.local:6081") gives
// "http://10.0.0.5:6081", "http://10.0.0.6:6081", ... as a Kubernetes
// headless service or a DNS round-robin name lists them. It panics if base
// is not a node's base URL: a programming error.
func DNS(base string) func(ctx context.Context) ([]string, error) {
	n, err := parseNode(base)
	if err != nil {
		panic(fmt.Sprintf("httppurge: DNS(%q): %v", backends.RedactURL(base), err))
	}
	u, _ := url.Parse(n.key)
	name, port := u.Hostname(), u.Port()
	return func(ctx context.Context) ([]string, error) {
		addrs, err := net.DefaultResolver.LookupHost(ctx, name)
		if err != nil {
			return nil, err
		}
		slices.Sort(addrs)
		nodes := make([]string, len(addrs))
		for i, a := range addrs {
			host := a
			if port != "" {
				host = net.JoinHostPort(a, port)
			} else if net.ParseIP(a).To4() == nil {
				host = "[" + a + "]"
			}
			nodes[i] = n.scheme + "://" + host
		}
		return nodes, nil
	}
}
