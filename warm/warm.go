package warm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
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
	fetches sync.WaitGroup       // the background fetches, owned by run; not their onResult calls

	fetched, failed, refused, dropped atomic.Uint64
}

// pending is a slot of Enqueue's queue: a URL and when it falls due. A slot
// is live while waiting maps its URL to its seq; it goes stale when the URL
// is enqueued again, which queues a new slot at the back.
type pending struct {
	t   target
	due time.Time
	seq uint64
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

// Fetch fetches each distinct URL in urls once, at most [WithConcurrency] at
// a time, and returns when every one has a Result or ctx ends. Use it to
// warm a known list of pages and report on them, as an operator command
// does; it ignores [WithDelay].
//
// A URL is an absolute http or https URL, or a path beginning with "/" (see
// [WithBaseURL]); any other is a Result with an error naming it. A URL
// neither on the base URL's scheme, host and port nor on a host given to
// [WithAllowedHosts] is refused: it is not fetched, and its Result's error
// wraps [ErrRefused] and names its host (see WithBaseURL). Each fetch
// is a GET whose body is read to the end and discarded, since caches store
// only complete responses. The default client follows no redirect and sends
// no cookies; see [New], [WithHTTPClient] and [WithHandler].
//
// Fetch reports through its Summary, progress and [WithOnResult] only: it
// logs nothing, not even failures, since its caller has every Result.
// progress, unless nil, is called once per distinct URL, one call at a time
// on the caller's goroutine, for example to draw a progress bar; a panic in
// it cancels the fetches in flight and goes on up to Fetch's caller, and no
// goroutine of Fetch's is left waiting. When ctx ends, the fetches in flight
// are cancelled and the URLs not yet fetched fail with ctx's cause. After
// Close, every URL fails with [ErrClosed]. Close does not stop a Fetch in
// progress: cancel its ctx.
func (w *Warmer) Fetch(ctx context.Context, urls []string, progress func(Result)) Summary {
	start := w.cfg.clock.Now()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // also when progress panics: the fetches in flight end soon
	var t tally
	emit := func(r Result) {
		w.count(r)
		t.add(r)
		w.report(r)
		if progress != nil {
			progress(r)
		}
	}
	w.mu.Lock()
	closed := w.closed
	w.mu.Unlock()

	seen := make(map[string]struct{}, len(urls))
	jobs := make([]target, 0, len(urls))
	for _, raw := range urls {
		if _, dup := seen[raw]; dup {
			continue
		}
		seen[raw] = struct{}{}
		if closed {
			emit(Result{URL: redactURL(raw), Err: errClosedBeforeFetch(raw)})
			continue
		}
		tg, err := w.resolve(raw)
		if err != nil {
			emit(Result{URL: redactURL(raw), Err: err})
			continue
		}
		jobs = append(jobs, tg)
	}

	// Fetches in flight hold a token of sem each, so they are never more
	// than its capacity: each can send its result and end even if this
	// function is gone, unwound by a panic in progress.
	results := make(chan Result, cap(w.sem))
	done := ctx.Done()
	inflight := 0
	for len(jobs) > 0 || inflight > 0 {
		var acquire chan<- struct{}
		if len(jobs) > 0 && ctx.Err() == nil {
			acquire = w.sem
		}
		select {
		case acquire <- struct{}{}:
			tg := jobs[0]
			jobs = jobs[1:]
			inflight++
			go func() { // Fetch waits for it: inflight
				r := w.fetch(ctx, tg)
				<-w.sem
				results <- r
			}()
		case r := <-results:
			inflight--
			emit(r)
		case <-done:
			for _, tg := range jobs {
				emit(Result{URL: tg.raw, Err: fmt.Errorf("warm: %s: not fetched: %w", tg.raw, context.Cause(ctx))})
			}
			jobs, done = nil, nil
		}
	}
	return t.summary(w.cfg.clock.Now().Sub(start))
}

// Enqueue schedules each URL to be fetched once in the background, no
// sooner than [WithDelay] after this call, at most [WithConcurrency] at a
// time together with Fetch. Use it right after a purge, so that the first
// visitor finds the page cached. It never blocks, and is best effort.
//
// A URL still waiting from an earlier call moves to the back of the queue
// and is fetched once, no sooner than WithDelay after this call: it was
// purged again, and the new purge needs the delay to propagate too. (A URL
// purged again and again, more often than the delay, waits until the
// purges pause.) It takes one place in the queue, however often it is
// enqueued. A new URL that arrives when [WithQueueSize] URLs are waiting,
// or after Close began, is dropped and counted in [Stats.Dropped]; each call
// logs its drops once, with their count.
// An invalid URL (see [Warmer.Fetch]) is logged, counted in [Stats.Failed]
// and reported to [WithOnResult] before Enqueue returns; so is a refused
// one, logged with its host and counted in [Stats.Refused] too. Each fetch's
// Result goes to WithOnResult and to the logger: Warn when it failed, Debug
// when it did not.
func (w *Warmer) Enqueue(urls ...string) {
	due := w.cfg.clock.Now().Add(w.cfg.delay)
	var (
		dropped   int
		why       string
		firstDrop string
	)
	for _, raw := range urls {
		tg, err := w.resolve(raw)
		if err != nil {
			var ref *refusal
			if errors.As(err, &ref) {
				w.cfg.logger.LogAttrs(context.Background(), slog.LevelWarn, "warm: URL refused, not enqueued",
					slog.String("url", ref.url), slog.String("host", ref.host), slog.Any("error", err))
			} else {
				w.cfg.logger.LogAttrs(context.Background(), slog.LevelWarn, "warm: invalid URL not enqueued",
					slog.String("url", redactURL(raw)), slog.Any("error", err))
			}
			r := Result{URL: redactURL(raw), Err: err}
			w.count(r)
			w.report(r)
			continue
		}
		w.mu.Lock()
		_, dup := w.waiting[raw]
		drop := ""
		switch {
		case w.closed:
			drop = "the warmer is closed"
		case !dup && len(w.waiting) >= w.cfg.queueSize:
			drop = "the queue is full"
		default:
			w.push(tg, due, dup)
		}
		w.mu.Unlock()
		if drop != "" {
			w.dropped.Add(1)
			if dropped == 0 {
				why, firstDrop = drop, raw // resolved: no password
			}
			dropped++
		}
	}
	if dropped > 0 {
		// One record per call, not per URL: a large purge must not flood
		// the log.
		w.cfg.logger.LogAttrs(context.Background(), slog.LevelWarn, "warm: URLs dropped: "+why,
			slog.Int("count", dropped), slog.String("first", firstDrop))
	}
	select {
	case w.wake <- struct{}{}:
	default: // run will look at the queue anyway
	}
}

// push queues tg, due at due. If its URL was waiting (dup), the URL's
// earlier slot goes stale; the queue is compacted once the stale slots
// outnumber the live ones, so that it never holds more than twice
// [WithQueueSize] slots and a few. w.mu must be held.
func (w *Warmer) push(tg target, due time.Time, dup bool) {
	w.seq++
	w.queue = append(w.queue, pending{t: tg, due: due, seq: w.seq})
	w.waiting[tg.raw] = w.seq
	if !dup {
		return
	}
	w.stale++
	if w.stale > len(w.waiting) {
		q := w.queue[:0]
		for _, p := range w.queue {
			if w.live(p) {
				q = append(q, p)
			}
		}
		clear(w.queue[len(q):])
		w.queue, w.stale = q, 0
	}
}

// live reports whether p is the slot its URL waits in. w.mu must be held.
func (w *Warmer) live(p pending) bool {
	return w.waiting[p.t.raw] == p.seq
}

// head drops the stale slots at the front of the queue and returns the
// first live one, if any. w.mu must be held.
func (w *Warmer) head() (pending, bool) {
	for len(w.queue) > 0 {
		p := w.queue[0]
		if w.live(p) {
			return p, true
		}
		w.queue[0] = pending{}
		w.queue = w.queue[1:]
		w.stale--
	}
	return pending{}, false
}

// run starts the background fetches as they fall due, until Close; then it
// waits for them.
func (w *Warmer) run() {
	defer w.fetches.Wait()
	for {
		w.mu.Lock()
		p, ok := w.head()
		w.mu.Unlock()
		if !ok {
			select {
			case <-w.wake:
				continue
			case <-w.lc.Stopping():
				return
			}
		}
		if wait := p.due.Sub(w.cfg.clock.Now()); wait > 0 {
			c, stopTimer := w.cfg.clock.Timer(wait)
			select {
			case <-c:
				continue // look again: p may have gone stale, or Close emptied the queue
			case <-w.lc.Stopping():
				stopTimer()
				return
			}
		}
		select {
		case w.sem <- struct{}{}:
		case <-w.lc.Stopping():
			return
		}
		w.mu.Lock()
		if w.closed {
			w.mu.Unlock()
			<-w.sem
			return
		}
		if q, ok := w.head(); !ok || q.seq != p.seq {
			w.mu.Unlock()
			<-w.sem
			continue // p was enqueued again meanwhile, so it is due later
		}
		w.queue[0] = pending{}
		w.queue = w.queue[1:]
		delete(w.waiting, p.t.raw)
		w.mu.Unlock()
		w.fetches.Add(1)
		go func() {
			r := w.fetch(w.lc.Context(), p.t)
			<-w.sem
			w.count(r)
			w.log(r)
			// Close waits for the fetch, not for onResult, so that
			// onResult may call Close without waiting for itself.
			w.fetches.Done()
			w.report(r)
		}()
	}
}

// report calls the function of [WithOnResult], if any, with r. A panic in it
// is recovered and logged: a broken metrics hook must not crash the process
// from a background fetch, nor stop Fetch or Enqueue halfway.
func (w *Warmer) report(r Result) {
	if w.cfg.onResult == nil {
		return
	}
	defer func() {
		if p := recover(); p != nil {
			w.cfg.logger.LogAttrs(context.Background(), slog.LevelError, "warm: the WithOnResult function panicked",
				slog.String("url", r.URL), slog.Any("panic", p), slog.String("stack", string(debug.Stack())))
		}
	}()
	w.cfg.onResult(r)
}

// count adds r to the counters.
func (w *Warmer) count(r Result) {
	switch {
	case r.ok():
		w.fetched.Add(1)
	case errors.Is(r.Err, ErrRefused):
		w.refused.Add(1)
		w.failed.Add(1)
	default:
		w.failed.Add(1)
	}
}

// log records the result of a background fetch.
func (w *Warmer) log(r Result) {
	attrs := []slog.Attr{slog.String("url", r.URL), slog.Int("status", r.Status), slog.Duration("duration", r.Duration)}
	var ref *refusal
	switch {
	case errors.As(r.Err, &ref): // a redirect to a host refused
		w.cfg.logger.LogAttrs(context.Background(), slog.LevelWarn, "warm: redirect refused",
			append(attrs, slog.String("host", ref.host), slog.Any("error", r.Err))...)
	case r.Err != nil:
		w.cfg.logger.LogAttrs(context.Background(), slog.LevelWarn, "warm: fetch failed", append(attrs, slog.Any("error", r.Err))...)
	case !r.ok():
		w.cfg.logger.LogAttrs(context.Background(), slog.LevelWarn, "warm: fetch answered with an error status", attrs...)
	default:
		w.cfg.logger.LogAttrs(context.Background(), slog.LevelDebug, "warm: fetched", append(attrs, slog.String("cache", r.Cache))...)
	}
}

// Close stops the Warmer: Enqueue drops the URLs it is given from now on,
// the URLs still waiting in the queue (due or not) are dropped and counted
// in [Stats.Dropped], and the background fetches in flight are let finish.
// If ctx ends first, Close cancels them and returns ctx's cause once they
// have returned; an in-process handler that ignores its request's context
// delays Close until it returns. A Close that finds the background fetches
// already ended returns nil, even if ctx has ended too. Close then closes
// the default client's idle connections.
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
// finish, within ctx: run returns once they have.
func (w *Warmer) drain(ctx context.Context) error { return w.lc.Wait(ctx) }

// stopped is the Close hook that runs once run and its fetches have
// ended: it closes the default client's idle connections.
func (w *Warmer) stopped(_ context.Context, err error) error {
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
