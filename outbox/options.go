package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/gormpurge/gormpurge/dispatcher"
	"github.com/gormpurge/gormpurge/internal/nilcheck"
	"github.com/gormpurge/gormpurge/observe"
)

// Defaults used by [New] for settings that no [Option] changes.
const (
	DefaultTable          = "gormpurge_outbox"
	DefaultBatchSize      = 100
	DefaultConcurrency    = 4
	DefaultLease          = time.Minute
	DefaultPollInterval   = 500 * time.Millisecond
	DefaultMaxAttempts    = 10
	DefaultInitialBackoff = 10 * time.Second
	DefaultMaxBackoff     = time.Hour
	DefaultRetention      = 24 * time.Hour
)

// An Option configures an [Outbox] and the relays it starts. Options are
// applied in order by [New], which then validates the result.
type Option func(*config)

type config struct {
	table        string
	batchSize    int
	concurrency  int
	lease        time.Duration
	pollInterval time.Duration
	retry        dispatcher.RetryPolicy
	retention    time.Duration
	deleteOnDone bool
	listen       bool
	noMigrate    bool
	logger       *slog.Logger
	onError      func(context.Context, error)
	observer     observe.Observer // nil: observe nothing
	errs         []error
}

func defaultConfig() config {
	return config{
		table:        DefaultTable,
		batchSize:    DefaultBatchSize,
		concurrency:  DefaultConcurrency,
		lease:        DefaultLease,
		pollInterval: DefaultPollInterval,
		retry:        DefaultRetryPolicy(),
		retention:    DefaultRetention,
		listen:       true,
		logger:       slog.Default(),
	}
}

// WithTable names the outbox table: a letter or underscore followed by up to
// 47 letters, digits and underscores. The table lives in the connection's
// schema (PostgreSQL's search_path) or database. Defaults to [DefaultTable]
// ("gormpurge_outbox").
func WithTable(name string) Option {
	return func(c *config) { c.table = name }
}

// WithBatchSize sets how many rows a relay claims at once. Defaults to
// [DefaultBatchSize] (100).
func WithBatchSize(n int) Option {
	return func(c *config) { c.batchSize = n }
}

// WithConcurrency sets how many claimed batches a relay hands to the
// dispatcher at once, so that a slow batch does not hold up the next. A
// relay holds at most batch size × concurrency rows. Defaults to
// [DefaultConcurrency] (4).
func WithConcurrency(n int) Option {
	return func(c *config) { c.concurrency = n }
}

// WithLease sets how long a claimed row belongs to the relay that claimed
// it. A live relay renews its leases every third of d while the dispatcher
// works on its rows; the rows of a relay that died become claimable again
// when the lease runs out, and another relay delivers them. Leases are
// measured on each relay's clock: keep the machines' clocks within a small
// part of d. Defaults to [DefaultLease] (1 minute).
func WithLease(d time.Duration) Option {
	return func(c *config) { c.lease = d }
}

// WithPollInterval sets how often an idle relay looks for rows. A relay in
// the same process as the writer is woken at once by each commit, and on
// PostgreSQL every relay is woken by LISTEN/NOTIFY, so the poll only
// matters for writers in other processes on SQLite and MariaDB/MySQL, for
// retries coming due and for leases that ran out. Defaults to
// [DefaultPollInterval] (500ms).
func WithPollInterval(d time.Duration) Option {
	return func(c *config) { c.pollInterval = d }
}

// DefaultRetryPolicy returns the relays' default retry policy:
// [DefaultInitialBackoff] (10s), [DefaultMaxBackoff] (1 hour) and
// [DefaultMaxAttempts] (10), with no MaxElapsed. With it, a row survives an
// outage of one to two hours before it is dead.
func DefaultRetryPolicy() dispatcher.RetryPolicy {
	return dispatcher.RetryPolicy{
		InitialBackoff: DefaultInitialBackoff,
		MaxBackoff:     DefaultMaxBackoff,
		MaxAttempts:    DefaultMaxAttempts,
	}
}

// WithRetry sets how a relay retries a row that failed: the wait before it
// is handed off again (p's backoff, with the jitter dispatcher.RetryPolicy
// describes, the one the dispatcher uses) and how many hand-offs it gets
// before it is marked dead (p.MaxAttempts). Each hand-off already includes
// the dispatcher's own retries. p.MaxElapsed must be 0: a row is bounded by
// its attempts. [WithMaxAttempts] and [WithBackoff] are shorthands that
// change one part of the policy. Defaults to [DefaultRetryPolicy].
func WithRetry(p dispatcher.RetryPolicy) Option {
	return func(c *config) { c.retry = p }
}

// WithMaxAttempts sets how many times a relay hands a row to the dispatcher
// before it gives up and marks the row dead. Each hand-off already includes
// the dispatcher's own retries. It is shorthand for setting MaxAttempts
// with [WithRetry]. Defaults to [DefaultMaxAttempts] (10).
func WithMaxAttempts(n int) Option {
	return func(c *config) { c.retry.MaxAttempts = n }
}

// WithBackoff sets the wait before a row that failed is handed off again:
// about initial after the first failure, doubling after each next one,
// never more than max, with the jitter of dispatcher.RetryPolicy. It is
// shorthand for setting InitialBackoff and MaxBackoff with [WithRetry].
// Defaults to [DefaultInitialBackoff] (10s) and [DefaultMaxBackoff] (1
// hour).
func WithBackoff(initial, max time.Duration) Option {
	return func(c *config) { c.retry.InitialBackoff, c.retry.MaxBackoff = initial, max }
}

// WithRetention sets how long delivered rows are kept, for auditing, before
// a relay prunes them. Dead rows are never pruned. Defaults to
// [DefaultRetention] (24 hours).
func WithRetention(d time.Duration) Option {
	return func(c *config) { c.retention = d }
}

// WithDeleteDelivered makes relays delete a row as soon as it is delivered
// instead of marking it delivered and pruning it later. Defaults to off.
func WithDeleteDelivered() Option {
	return func(c *config) { c.deleteOnDone = true }
}

// WithoutListen stops relays on PostgreSQL from holding a connection for
// LISTEN; they poll instead. Use it behind a pooler in transaction mode
// (PgBouncer), where LISTEN does not work. Defaults to listening.
func WithoutListen() Option {
	return func(c *config) { c.listen = false }
}

// WithoutMigrate makes New create and alter nothing: it only checks that
// the table exists with every column the outbox needs, and returns an
// [*Error] (Op "check schema") naming the table and the missing columns
// otherwise. A missing claim index (on state, available_at, id) is logged
// at Warn: the outbox works without it, but claims scan the table. Use it
// for applications whose DDL is managed by migration tooling (create the
// table as New would, see the package documentation), for database users
// without DDL rights, and for read-only tools that must not touch the
// schema. Defaults to off: New creates the table, its columns and its
// index when they are missing.
func WithoutMigrate() Option {
	return func(c *config) { c.noMigrate = true }
}

// WithLogger sets where the outbox and its relays write: Error for failed
// database statements and rows that died, Warn for retries and lost leases,
// Debug for each batch. Defaults to [slog.Default] at the time New is called.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l == nil {
			c.errs = append(c.errs, errors.New("WithLogger(nil): pass slog.New(slog.DiscardHandler) to silence the outbox"))
			return
		}
		c.logger = l
	}
}

// WithErrorHandler calls fn with every error the relays meet: a failed
// database statement (an *[Error]) or a row that failed or died (a
// *[RowError]). fn runs on a relay goroutine; keep it short. Defaults to
// none (errors are only logged); nil is an error.
func WithErrorHandler(fn func(ctx context.Context, err error)) Option {
	return func(c *config) {
		if fn == nil {
			c.errs = append(c.errs, errors.New("WithErrorHandler(nil): pass a function, or leave the option out to only log errors"))
			return
		}
		c.onError = fn
	}
}

// WithObserver makes each relay report its figures to o while it runs:
// it registers an observe.Source with o.Watch when [Outbox.Relay] starts it
// and removes it in [Relay.Close]. The Source reads the table's pending
// and dead rows and the age of the oldest pending one ([Outbox.Status],
// bounded by the collection's context), and the rows the relay settled
// (observe.OutboxRows, from [Relay.Stats]). Rows carry their traceparent
// whether or not this option is set. Defaults to none; nil is an error
// (leave the option out to observe nothing).
func WithObserver(o observe.Observer) Option {
	return func(c *config) {
		if nilcheck.IsNil(o) {
			c.errs = append(c.errs, errors.New("WithObserver(nil): pass an observe.Observer (otelpurge, prompurge, observe.Join), or leave the option out to observe nothing"))
			return
		}
		c.observer = o
	}
}

// tableName is what WithTable accepts: at most 48 bytes, so that the index
// name and the PostgreSQL channel name built from it stay within
// PostgreSQL's 63.
var tableName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,47}$`)

func (c *config) validate() error {
	errs := c.errs
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if !tableName.MatchString(c.table) {
		add("WithTable(%q): want a name like gormpurge_outbox: letters, digits and underscores, at most 48, not starting with a digit (the table goes in the connection's schema or database)", c.table)
	}
	if c.batchSize < 1 || c.batchSize > 1000 {
		add("WithBatchSize(%d): want 1 to 1000 rows", c.batchSize)
	}
	if c.concurrency < 1 {
		add("WithConcurrency(%d): want at least 1", c.concurrency)
	}
	if c.lease < time.Second {
		add("WithLease(%v): want at least 1s, well above the time a batch takes to deliver", c.lease)
	}
	if c.pollInterval <= 0 {
		add("WithPollInterval(%v): want a positive interval", c.pollInterval)
	}
	if err := c.retry.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.retry.MaxElapsed != 0 {
		add("WithRetry: MaxElapsed %v: a relay bounds a row by its attempts only; set MaxElapsed to 0 and choose MaxAttempts and the backoff", c.retry.MaxElapsed)
	}
	if c.retention < 0 {
		add("WithRetention(%v): use 0 to prune delivered rows at the next pass, or WithDeleteDelivered", c.retention)
	}
	return errors.Join(errs...)
}
