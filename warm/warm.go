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
	queue   []pending           // in order of enqueueing, hence of due time
	waiting map[string]struct{} // the URLs in queue
	closed  bool

	wake    chan struct{}      // tells run that the queue is no longer empty
	stop    chan struct{}      // closed by Close: run must stop
	idle    chan struct{}      // closed by run once it and its fetches have ended
	runCtx  context.Context    // parent of the background fetches
	cancel  context.CancelFunc // cancels runCtx
	fetches sync.WaitGroup     // the background fetches, owned by run
	close   sync.Once

	fetched, failed, dropped atomic.Uint64
}

// pending is a URL waiting in Enqueue's queue.
type pending struct {
	t   target
	due time.Time
}

// Stats is a snapshot of a Warmer's counters, for metrics and tests.
type Stats struct {
	Queued  int    // URLs waiting in Enqueue's queue now
	Fetched uint64 // URLs fetched with a 2xx answer, by Fetch and Enqueue
	Failed  uint64 // URLs that were invalid, got no answer or got another status
	Dropped uint64 // enqueued URLs never fetched: the queue was full, or Close came first
}

// New returns a Warmer configured by opts and starts the goroutine that
// serves [Warmer.Enqueue]; stop it with Close. It returns an error that
// names every invalid option and says how to fix it.
func New(opts ...Option) (*Warmer, error) {
	cfg := defaultConfig()
	for _, opt := range opts {
		opt(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("warm: invalid configuration:\n%w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &Warmer{
		cfg:     cfg,
		sem:     make(chan struct{}, cfg.concurrency),
		waiting: make(map[string]struct{}),
		wake:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		idle:    make(chan struct{}),
		runCtx:  ctx,
		cancel:  cancel,
	}
	switch {
	case cfg.handler != nil:
	case cfg.client != nil:
		w.client = cfg.client
	default:
		w.client, w.ownClient = defaultClient(cfg.concurrency), true
	}
	go w.run()
	return w, nil
}

// defaultClient returns a client without a cookie jar whose transport keeps
// one idle connection per concurrent fetch.
func defaultClient(concurrency int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          concurrency,
		MaxIdleConnsPerHost:   concurrency,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}}
}

// Fetch fetches each distinct URL in urls once, at most [WithConcurrency] at
// a time, and returns when every one has a Result or ctx ends. Use it to
// warm a known list of pages and report on them, as an operator command
// does; it ignores [WithDelay].
//
// A URL is an absolute http or https URL, or a path beginning with "/" (see
// [WithBaseURL]); any other is a Result with an error naming it. Each fetch
// is a GET whose body is read to the end and discarded, since caches store
// only complete responses. The default client follows redirects and sends
// no cookies; see [WithClient] and [WithHandler].
//
// progress, unless nil, is called once per distinct URL, one call at a time
// on the caller's goroutine, for example to draw a progress bar. When ctx
// ends, the fetches in flight are cancelled and the URLs not yet fetched
// fail with ctx's cause. After Close, every URL fails with [ErrClosed].
// Close does not stop a Fetch in progress: cancel its ctx.
func (w *Warmer) Fetch(ctx context.Context, urls []string, progress func(Result)) Summary {
	start := w.cfg.clock.Now()
	var t tally
	emit := func(r Result) {
		w.count(r)
		t.add(r)
		if w.cfg.onResult != nil {
			w.cfg.onResult(r)
		}
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
			emit(Result{URL: raw, Err: errClosedBeforeFetch(raw)})
			continue
		}
		tg, err := w.resolve(raw)
		if err != nil {
			emit(Result{URL: raw, Err: err})
			continue
		}
		jobs = append(jobs, tg)
	}

	results := make(chan Result)
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
// visitor finds the page cached. It never blocks, and is best effort: a URL
// already waiting is not queued again; one that arrives when the queue is
// full, or after Close began, is dropped, counted in [Stats.Dropped] and
// logged. An invalid URL (see [Warmer.Fetch]) is logged, counted in
// [Stats.Failed] and reported to [WithOnResult] before Enqueue returns.
// Results of the fetches go to [WithOnResult] and the logger.
func (w *Warmer) Enqueue(urls ...string) {
	due := w.cfg.clock.Now().Add(w.cfg.delay)
	for _, raw := range urls {
		tg, err := w.resolve(raw)
		if err != nil {
			w.cfg.logger.LogAttrs(context.Background(), slog.LevelWarn, "warm: invalid URL not enqueued", slog.String("url", raw), slog.Any("error", err))
			r := Result{URL: raw, Err: err}
			w.count(r)
			if w.cfg.onResult != nil {
				w.cfg.onResult(r)
			}
			continue
		}
		var why string
		w.mu.Lock()
		_, dup := w.waiting[raw]
		switch {
		case w.closed:
			why = "the warmer is closed"
		case dup:
		case len(w.queue) >= w.cfg.queueSize:
			why = "the queue is full"
		default:
			w.queue = append(w.queue, pending{t: tg, due: due})
			w.waiting[raw] = struct{}{}
		}
		w.mu.Unlock()
		if why != "" {
			w.dropped.Add(1)
			w.cfg.logger.LogAttrs(context.Background(), slog.LevelWarn, "warm: URL dropped: "+why, slog.String("url", raw))
		}
	}
	select {
	case w.wake <- struct{}{}:
	default: // run will look at the queue anyway
	}
}

// run starts the background fetches as they fall due, until Close; then it
// waits for them and closes idle.
func (w *Warmer) run() {
	defer close(w.idle)
	defer w.fetches.Wait()
	for {
		w.mu.Lock()
		empty := len(w.queue) == 0
		var due time.Time
		if !empty {
			due = w.queue[0].due
		}
		w.mu.Unlock()
		if empty {
			select {
			case <-w.wake:
				continue
			case <-w.stop:
				return
			}
		}
		if wait := due.Sub(w.cfg.clock.Now()); wait > 0 {
			c, stopTimer := w.cfg.clock.Timer(wait)
			select {
			case <-c:
				continue // look again: the queue may have been emptied by Close
			case <-w.stop:
				stopTimer()
				return
			}
		}
		select {
		case w.sem <- struct{}{}:
		case <-w.stop:
			return
		}
		w.mu.Lock()
		if w.closed || len(w.queue) == 0 {
			w.mu.Unlock()
			<-w.sem
			return
		}
		p := w.queue[0]
		w.queue[0] = pending{}
		w.queue = w.queue[1:]
		delete(w.waiting, p.t.raw)
		w.mu.Unlock()
		w.fetches.Go(func() {
			r := w.fetch(w.runCtx, p.t)
			<-w.sem
			w.count(r)
			w.log(r)
			if w.cfg.onResult != nil {
				w.cfg.onResult(r)
			}
		})
	}
}

// count adds r to the counters.
func (w *Warmer) count(r Result) {
	if r.ok() {
		w.fetched.Add(1)
	} else {
		w.failed.Add(1)
	}
}

// log records the result of a background fetch.
func (w *Warmer) log(r Result) {
	attrs := []slog.Attr{slog.String("url", r.URL), slog.Int("status", r.Status), slog.Duration("duration", r.Duration)}
	switch {
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
// delays Close until it returns. Close then closes the default client's
// idle connections.
//
// Close may be called more than once and concurrently; every call waits for
// the background fetches to end. It does not stop a [Warmer.Fetch] in
// progress.
func (w *Warmer) Close(ctx context.Context) error {
	w.close.Do(func() {
		w.mu.Lock()
		w.closed = true
		n := len(w.queue)
		w.queue = nil
		clear(w.waiting)
		w.mu.Unlock()
		close(w.stop)
		if n > 0 {
			w.dropped.Add(uint64(n))
			w.cfg.logger.LogAttrs(ctx, slog.LevelWarn, "warm: URLs dropped at Close", slog.Int("count", n))
		}
	})
	var err error
	select {
	case <-w.idle:
	case <-ctx.Done():
		w.cancel()
		<-w.idle
		err = fmt.Errorf("warm: close: %w", context.Cause(ctx))
	}
	w.cancel()
	if w.ownClient {
		w.client.CloseIdleConnections()
	}
	return err
}

// Stats returns the Warmer's counters.
func (w *Warmer) Stats() Stats {
	w.mu.Lock()
	queued := len(w.queue)
	w.mu.Unlock()
	return Stats{
		Queued:  queued,
		Fetched: w.fetched.Load(),
		Failed:  w.failed.Load(),
		Dropped: w.dropped.Load(),
	}
}
