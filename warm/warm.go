package warm

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gormpurge/gormpurge/internal/lifecycle"
)

// Warmer fetches pages so that caches hold them again after a purge. Create
// one with [New], and Close it when done, also when only Fetch is used. It
// is safe for concurrent use. The zero value is not usable.
type Warmer struct {
	cfg       config
	client    *http.Client  // nil with WithHandler
	ownClient bool          // client was made by New: Close closes its idle connections
	sem       chan struct{} // one token per fetch in flight, Fetch and Enqueue alike

	mu      sync.Mutex
	queue   []pending         // in order of enqueueing, hence of due time; stale slots included
	waiting map[string]uint64 // the URLs waiting, each with the seq of its live slot in queue
	stale   int               // slots in queue whose URL was enqueued again later: run skips them
	seq     uint64            // the seq of the last slot queued; the first is 1
	closed  bool

	wake    chan struct{}        // tells run that the queue is no longer empty
	lc      *lifecycle.Lifecycle // owns run; Stopping: run must stop; Context: parent of the background fetches
	fetches lifecycle.Group      // the background fetches, added by run under mu; not their onResult calls

	fetched, failed, refused, dropped atomic.Uint64

	unwatch func() // removes the Source of WithObserver; nil without it
}

// Stats is a snapshot of a Warmer's counters, for metrics and tests.
type Stats struct {
	Queued  int    // distinct URLs waiting in Enqueue's queue now
	Fetched uint64 // URLs fetched with a 2xx answer, by Fetch and Enqueue
	Failed  uint64 // URLs that were invalid or refused, got no answer or got another status
	Refused uint64 // of Failed, URLs refused by the host policy (see WithBaseURL): never fetched
	Dropped uint64 // enqueued URLs never fetched: the queue was full, or Close came first
}

// New returns a Warmer configured by opts and starts the goroutine that
// serves [Warmer.Enqueue]; stop it with Close. It returns an error that
// names every invalid option and says how to fix it.
//
// Without [WithHandler] or [WithHTTPClient], pages are fetched with a client of
// New's that does not follow redirects and uses no proxy: a 3xx answer is
// the URL's Result, and counts as failed, as it does in process. A redirect
// is not the page a cache keeps, and following it would send the
// configured headers and credentials ([WithHeader], [WithBasicAuth]) to
// whatever host or scheme it names. A client given to WithHTTPClient keeps its
// own redirect policy, under the Warmer's host policy: see WithHTTPClient.
func New(opts ...Option) (*Warmer, error) {
	cfg := defaultConfig()
	for _, opt := range opts {
		if opt == nil {
			cfg.fail("an Option is nil: remove it, or pass one made by a With... function")
			continue
		}
		opt(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("warm: invalid configuration:\n%w", err)
	}
	w := &Warmer{
		cfg:     cfg,
		sem:     make(chan struct{}, cfg.concurrency),
		waiting: make(map[string]uint64),
		wake:    make(chan struct{}, 1),
	}
	switch {
	case cfg.handler != nil:
	case cfg.client != nil:
		cl := *cfg.client // the caller's client is left as it is
		cl.CheckRedirect = w.checkRedirect(cfg.client.CheckRedirect)
		w.client = &cl
	default:
		w.client, w.ownClient = defaultClient(cfg.concurrency), true
	}
	if cfg.observer != nil {
		w.unwatch = cfg.observer.Watch(w.source)
	}
	w.lc = lifecycle.New(lifecycle.Hooks{Drain: w.drain, Stopped: w.stopped})
	w.lc.Go(w.run)
	return w, nil
}

// defaultClient returns a client without a cookie jar that follows no
// redirect, whose transport keeps one idle connection per concurrent fetch.
// It uses no proxy, not even one named by the environment: over plain http
// a proxy would see the credentials, and one set from a CGI request's Proxy
// header would be the visitor's.
func defaultClient(concurrency int) *http.Client {
	return &http.Client{
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport: &http.Transport{
			DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          concurrency,
			MaxIdleConnsPerHost:   concurrency,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ExpectContinueTimeout: time.Second,
		},
	}
}

// Close stops the Warmer: Enqueue drops the URLs it is given from now on,
// the URLs still waiting in the queue (due or not) are dropped and counted
// in [Stats.Dropped], and the background fetches in flight are let finish.
// If ctx ends first, Close cancels them and returns ctx's cause once they
// have returned; an in-process handler that ignores its request's context
// delays Close until it returns. A Close that finds the background fetches
// already ended returns nil, even if ctx has ended too. Close then closes
// the default client's idle connections and removes the figures it
// reported to the [WithObserver] observer.
//
// Close may be called more than once and concurrently: the first call does
// the work; the others wait for it (or return their own ctx's cause if it
// ends first) and return nil. Close waits for the background fetches, but
// not for the calls of the [WithOnResult] function they make, which may
// still be running when Close returns. That function should not call Close; if it does, Close does not
// wait for it, and so does not deadlock. Close does not stop a
// [Warmer.Fetch] in progress.
func (w *Warmer) Close(ctx context.Context) error {
	w.mu.Lock()
	w.closed = true
	n := len(w.waiting) // 0 on a later call: the first emptied the queue
	w.queue, w.stale = nil, 0
	clear(w.waiting)
	w.mu.Unlock()
	if n > 0 {
		w.dropped.Add(uint64(n))
		w.cfg.logger.LogAttrs(ctx, slog.LevelWarn, "warm: URLs dropped at Close", slog.Int("count", n))
	}
	return w.lc.Close(ctx)
}

// drain is the Close hook that lets the background fetches in flight
// finish, within ctx: run returns once they have. It waits for the fetches
// only, not for run, which is still returning when drain starts: with no
// fetch in flight it returns nil at once, even if ctx has ended. run adds a
// fetch under mu only while closed is false, and Close sets closed before
// drain, so no fetch starts behind drain's back.
func (w *Warmer) drain(ctx context.Context) error { return w.fetches.Wait(ctx) }

// stopped is the Close hook that runs once run and its fetches have
// ended: it closes the default client's idle connections and removes the
// Source of WithObserver, whose figures no longer change.
func (w *Warmer) stopped(_ context.Context, err error) error {
	if w.unwatch != nil {
		w.unwatch()
	}
	if w.ownClient {
		w.client.CloseIdleConnections()
	}
	if err != nil {
		return fmt.Errorf("warm: close: %w", err)
	}
	return nil
}

// Stats returns the Warmer's counters.
func (w *Warmer) Stats() Stats {
	w.mu.Lock()
	queued := len(w.waiting)
	w.mu.Unlock()
	return Stats{
		Queued:  queued,
		Fetched: w.fetched.Load(),
		Failed:  w.failed.Load(),
		Refused: w.refused.Load(),
		Dropped: w.dropped.Load(),
	}
}

// clock is the time source of a Warmer; tests replace it to control delays.
type clock interface {
	Now() time.Time
	// Timer returns a channel that receives once d has passed, and a
	// function that stops the timer.
	Timer(d time.Duration) (<-chan time.Time, func())
}

// realClock is the clock of the time package.
type realClock struct{}

// Now returns time.Now().
func (realClock) Now() time.Time { return time.Now() }

// Timer starts a time.Timer for d.
func (realClock) Timer(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTimer(d)
	return t.C, func() { t.Stop() }
}
