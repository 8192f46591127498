package dispatcher

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/internal/nilcheck"
	"github.com/gormpurge/gormpurge/observe"
)

// Defaults used by [New] for settings that no [Option] changes.
// Name them to derive a setting from the default, as a command's flag
// does.
const (
	DefaultWorkers        = 2                      // workers per backend: [WithWorkers]
	DefaultQueueSize      = 10_000                 // requests waiting per backend: [WithQueueSize]
	DefaultLinger         = 50 * time.Millisecond  // the merging window: [WithLinger]
	DefaultMaxAttempts    = 10                     // attempts per batch: [WithMaxAttempts]
	DefaultMaxElapsed     = 15 * time.Minute       // retrying time per batch: [WithMaxElapsed]
	DefaultInitialBackoff = 500 * time.Millisecond // the first retry's nominal wait: [WithBackoff]
	DefaultMaxBackoff     = time.Minute            // the longest wait between attempts: [WithBackoff]
	DefaultAttemptTimeout = 30 * time.Second       // the deadline of one call to a backend: [WithAttemptTimeout]
)

// FullPolicy says what [Dispatcher.Enqueue] does when a backend's queue is
// full. Whatever the policy, every request that does not reach a backend is
// counted in [BackendStats.Dropped], logged and reported to the
// [WithOnResult] hook with [Dropped].
type FullPolicy int

const (
	// Block waits until the queue has room or the context passed to
	// Enqueue is done, then gives up with an error that matches both
	// [ErrQueueFull] and the context's error. It is the default: it slows
	// the producer down instead of losing purges.
	Block FullPolicy = iota
	// DropOldest makes room by dropping the oldest waiting request. The
	// new request is always accepted and Enqueue never waits. Use it when a
	// fresh purge matters more than an old one.
	DropOldest
	// Reject refuses the new request at once with an error matching
	// [ErrQueueFull]. Enqueue never waits.
	Reject
)

// String returns the policy's name, as used in log records.
func (p FullPolicy) String() string {
	switch p {
	case Block:
		return "block"
	case DropOldest:
		return "drop-oldest"
	case Reject:
		return "reject"
	default:
		return fmt.Sprintf("FullPolicy(%d)", int(p))
	}
}

// An Option configures a [Dispatcher]. Options are applied in order by
// [New], which then validates the result.
type Option func(*config)

// rateLimit is the rate configured for one backend.
type rateLimit struct {
	requests float64 // calls to Purge per second; 0 means unlimited
	objects  float64 // URLs plus tags per second; 0 means unlimited
}

// config holds every setting of a Dispatcher. defaultConfig fills it in one
// place; validate checks it.
type config struct {
	workers        int
	queueSize      int
	policy         FullPolicy
	linger         time.Duration
	retry          RetryPolicy
	attemptTimeout time.Duration
	rates          map[string]rateLimit
	escalations    map[string]Escalation
	warmers        map[string]Warmer
	logger         *slog.Logger
	onResult       func(Report)
	obs            observe.Observer // nil without WithObserver
	errs           []error          // problems found while applying options
}

func defaultConfig() config {
	return config{
		workers:        DefaultWorkers,
		queueSize:      DefaultQueueSize,
		policy:         Block,
		linger:         DefaultLinger,
		retry:          DefaultRetryPolicy(),
		attemptTimeout: DefaultAttemptTimeout,
		logger:         slog.Default(),
	}
}

// WithWorkers sets how many goroutines call each backend concurrently. Every
// backend gets n workers of its own. Defaults to [DefaultWorkers] (2).
func WithWorkers(n int) Option {
	return func(c *config) { c.workers = n }
}

// WithQueueSize bounds how many requests wait in each backend's queue before
// the [FullPolicy] applies. Defaults to [DefaultQueueSize] (10,000).
func WithQueueSize(n int) Option {
	return func(c *config) { c.queueSize = n }
}

// WithFullPolicy sets what Enqueue does when a backend's queue is full.
// Defaults to [Block].
func WithFullPolicy(p FullPolicy) Option {
	return func(c *config) { c.policy = p }
}

// WithLinger sets how long a backend's batcher waits after the first request
// of a batch for more requests to merge with it. A longer window merges more
// and calls the backend less often; 0 sends what is queued at once. The
// window ends early when a batch is full, the queue is full, or Flush or
// Close is waiting. Defaults to [DefaultLinger] (50ms).
func WithLinger(d time.Duration) Option {
	return func(c *config) { c.linger = d }
}

// WithRetry sets how failed batches are retried: the backoff between
// attempts, how many attempts and for how long; see [RetryPolicy] for the
// waits. Time spent waiting for rate limits and a backend's pacing does not
// count against MaxElapsed. [WithMaxAttempts], [WithMaxElapsed] and
// [WithBackoff] are shorthands that change one part of the policy. Defaults
// to [DefaultRetryPolicy].
func WithRetry(p RetryPolicy) Option {
	return func(c *config) { c.retry = p }
}

// WithMaxAttempts sets how many times a batch is tried, the first attempt
// included, before it fails for good. Use 1 to disable retries. It is
// shorthand for setting [RetryPolicy.MaxAttempts] with [WithRetry].
// Defaults to [DefaultMaxAttempts] (10).
func WithMaxAttempts(n int) Option {
	return func(c *config) { c.retry.MaxAttempts = n }
}

// WithMaxElapsed bounds the time from a batch's first attempt to its last:
// no retry starts that would end its wait past d. 0 means no bound besides
// [WithMaxAttempts]. It is shorthand for setting [RetryPolicy.MaxElapsed]
// with [WithRetry]. Defaults to [DefaultMaxElapsed] (15 minutes).
func WithMaxElapsed(d time.Duration) Option {
	return func(c *config) { c.retry.MaxElapsed = d }
}

// WithBackoff sets the exponential backoff between attempts: about initial
// after the first failure, doubling, never more than max, with the jitter
// [RetryPolicy] describes. A backend's [backends.RetryAfter] replaces the
// computed wait. It is shorthand for setting [RetryPolicy.InitialBackoff]
// and MaxBackoff with [WithRetry]. Defaults to [DefaultInitialBackoff]
// (500ms) and [DefaultMaxBackoff] (1 minute).
func WithBackoff(initial, max time.Duration) Option {
	return func(c *config) { c.retry.InitialBackoff, c.retry.MaxBackoff = initial, max }
}

// WithAttemptTimeout sets the deadline of each call to a backend's Purge.
// Defaults to [DefaultAttemptTimeout] (30s).
func WithAttemptTimeout(d time.Duration) Option {
	return func(c *config) { c.attemptTimeout = d }
}

// WithRateLimit limits the backend named backend to requestsPerSecond calls
// to Purge and objectsPerSecond URLs plus tags per second; 0 leaves that
// dimension unlimited. When objectsPerSecond is set, batches hold at most
// max(1, objectsPerSecond) objects, so that one second's allowance covers a
// batch. By default no backend is rate-limited.
func WithRateLimit(backend string, requestsPerSecond, objectsPerSecond float64) Option {
	return func(c *config) {
		if c.rates == nil {
			c.rates = make(map[string]rateLimit)
		}
		c.rates[backend] = rateLimit{requests: requestsPerSecond, objects: objectsPerSecond}
	}
}

// WithLogger sets where the dispatcher writes its records: Debug for a
// delivered batch, Warn for a retry, a drop or an escalation, Error for a
// batch that failed for good or objects refused. To silence it, pass slog.New(slog.DiscardHandler). Defaults to
// [slog.Default] at the time New is called.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l == nil {
			c.errs = append(c.errs, errors.New("WithLogger(nil): pass slog.New(slog.DiscardHandler) to silence the dispatcher"))
			return
		}
		c.logger = l
	}
}

// WithOnResult sets a function called once for every batch's end (delivered
// or failed for good) and for every dropped request, for example to export
// metrics or keep the IDs a CDN returned. It runs on the goroutine that
// settled the batch (a worker, Enqueue or Submit for a drop, or Close),
// never with a lock held, and before the [Ticket]s of the requests involved
// are done; keep it short, and do not call Enqueue, Submit, Flush or Close
// from it.
// fn must not be nil: leave the option out for no hook. Defaults to none.
func WithOnResult(fn func(Report)) Option {
	return func(c *config) {
		if fn == nil {
			c.errs = append(c.errs, errors.New("WithOnResult(nil): pass a function, or leave the option out"))
			return
		}
		c.onResult = fn
	}
}

// WithObserver reports what the dispatcher does to o, a metrics or tracing
// system's Observer (the contrib modules otelpurge and prompurge provide
// them; see package observe): every backend's counters and queue depth,
// read when o collects, from the time New returns until Close returns;
// each call to a backend, with the origins (observe.Origin) of the
// handoffs its batch carries, which the plugin and the outbox relay put in
// the context given to Enqueue and Submit; and, for each handoff and
// backend, when the last of its objects ended, for the commit-to-purge
// latency. A handoff without an origin counts from the call to Enqueue or
// Submit. The dispatcher calls o from its workers and from Enqueue: o must
// be quick and must not block; a panic in it is logged. o must not be nil:
// leave the option out for none. Defaults to none.
func WithObserver(o observe.Observer) Option {
	return func(c *config) {
		if nilcheck.IsNil(o) {
			c.errs = append(c.errs, errors.New("WithObserver(nil): pass an Observer, or leave the option out"))
			return
		}
		c.obs = o
	}
}

// validate reports every invalid setting, each with how to fix it. bs holds
// the backends by name.
func (c *config) validate(bs map[string]backends.Backend) error {
	errs := c.errs
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.workers < 1 {
		add("WithWorkers(%d): need at least 1 worker per backend", c.workers)
	}
	if c.queueSize < 1 {
		add("WithQueueSize(%d): need room for at least 1 request", c.queueSize)
	}
	if c.policy < Block || c.policy > Reject {
		add("WithFullPolicy(%v): use Block, DropOldest or Reject", c.policy)
	}
	if c.linger < 0 {
		add("WithLinger(%v): use 0 to send at once, or a positive window", c.linger)
	}
	if err := c.retry.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.attemptTimeout <= 0 {
		add("WithAttemptTimeout(%v): need a positive deadline", c.attemptTimeout)
	}
	for name, r := range c.rates {
		if _, ok := bs[name]; !ok {
			add("WithRateLimit(%q, ...): no backend has that name", name)
		}
		if r.requests < 0 || r.objects < 0 || math.IsNaN(r.requests) || math.IsNaN(r.objects) {
			add("WithRateLimit(%q, %v, %v): rates must be positive, or 0 for unlimited", name, r.requests, r.objects)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(c.escalations)) {
		for _, problem := range escalationProblems(c.escalations[name], bs[name]) {
			add("WithEscalation(%q, ...): %s", name, problem)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(c.warmers)) {
		errs = append(errs, warmupProblems(name, c.warmers[name], bs[name])...)
	}
	return errors.Join(errs...)
}
