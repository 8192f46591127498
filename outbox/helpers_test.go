package outbox_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/gormpurge/gormpurge"
	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/dispatcher"
	"github.com/gormpurge/gormpurge/internal/testdb"
	"github.com/gormpurge/gormpurge/outbox"
)

// Page is the test model: its page is /pages/<slug>.
type Page struct {
	ID   uint   `gorm:"primaryKey"`
	Slug string `gorm:"size:191"`
}

func (p *Page) AbsoluteURL() string { return "/pages/" + p.Slug }

var quiet = slog.New(slog.DiscardHandler)

// fast are outbox options for tests: quick polls and retries.
func fast(opts ...outbox.Option) []outbox.Option {
	return append([]outbox.Option{
		outbox.WithLogger(quiet),
		outbox.WithPollInterval(20 * time.Millisecond),
		outbox.WithBackoff(10*time.Millisecond, 20*time.Millisecond),
	}, opts...)
}

// site is a database with the plugin writing into an outbox.
type site struct {
	kind string
	dsn  string
	db   *gorm.DB
	ob   *outbox.Outbox
	errs *errorLog
}

// newSite opens a fresh database of the given kind, creates the outbox
// with opts and installs the plugin on it.
func newSite(t *testing.T, kind string, opts ...outbox.Option) *site {
	t.Helper()
	s := &site{kind: kind, dsn: testdb.DSN(t, kind), errs: &errorLog{}}
	s.db = testdb.OpenDSN(t, kind, s.dsn, nil)
	require.NoError(t, s.db.AutoMigrate(&Page{}))
	ob, err := outbox.New(s.db, append(fast(outbox.WithErrorHandler(s.errs.add)), opts...)...)
	require.NoError(t, err)
	s.ob = ob
	p := gormpurge.New(ob, gormpurge.WithLogger(quiet))
	require.NoError(t, p.Register(&Page{}))
	require.NoError(t, s.db.Use(p))
	return s
}

// relay starts a relay through a dispatcher to bs; both are closed at
// cleanup.
func (s *site) relay(t *testing.T, bs ...backends.Backend) *outbox.Relay {
	t.Helper()
	return startRelay(t, s.ob, bs...)
}

func startRelay(t *testing.T, ob *outbox.Outbox, bs ...backends.Backend) *outbox.Relay {
	t.Helper()
	d := newDispatcher(t, bs...)
	r := mustRelay(t, ob, d)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		assert.NoError(t, r.Close(ctx))
		assert.NoError(t, d.Close(ctx))
	})
	return r
}

// newDispatcher returns a dispatcher to bs that tries each batch once, so
// that retries are the relay's.
func newDispatcher(t testing.TB, bs ...backends.Backend) *dispatcher.Dispatcher {
	t.Helper()
	return mustDispatcher(t, bs, dispatcher.WithLogger(quiet), dispatcher.WithLinger(time.Millisecond),
		dispatcher.WithMaxAttempts(1))
}

// mustDispatcher returns dispatcher.New's Dispatcher, failing the test on
// an error. The caller closes it.
func mustDispatcher(t testing.TB, bs []backends.Backend, opts ...dispatcher.Option) *dispatcher.Dispatcher {
	t.Helper()
	d, err := dispatcher.New(bs, opts...)
	require.NoError(t, err)
	return d
}

// mustRelay returns ob.Relay(d)'s Relay, failing the test on an error. The
// caller closes it.
func mustRelay(t testing.TB, ob *outbox.Outbox, d *dispatcher.Dispatcher) *outbox.Relay {
	t.Helper()
	r, err := ob.Relay(d)
	require.NoError(t, err)
	return r
}

// settle waits until no row of the outbox is pending.
func settle(t *testing.T, ob *outbox.Outbox) outbox.Status {
	t.Helper()
	var st outbox.Status
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		var err error
		st, err = ob.Status(context.Background())
		require.NoError(c, err)
		assert.Zero(c, st.Pending)
	}, 20*time.Second, 5*time.Millisecond, "rows still pending")
	return st
}

type errorLog struct {
	mu   sync.Mutex
	errs []error
}

func (l *errorLog) add(_ context.Context, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errs = append(l.errs, err)
}

func (l *errorLog) all() []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]error(nil), l.errs...)
}

// backend is a recording backend whose answers a test controls.
type backend struct {
	name string
	// fail, when set, decides each call's error before it is recorded.
	fail func(r backends.Request) error
	// limits is what Limits returns: MaxObjects 1 makes the dispatcher
	// send each URL in a call of its own, so a call's outcome is one row's.
	limits backends.Limits

	mu    sync.Mutex
	calls int
	got   map[string]int // URL -> times purged
	tags  map[string]int
}

func newBackend(name string) *backend {
	return &backend{name: name, got: map[string]int{}, tags: map[string]int{}}
}

func (b *backend) Name() string            { return b.name }
func (b *backend) Limits() backends.Limits { return b.limits }

func (b *backend) Purge(_ context.Context, r backends.Request) (backends.Result, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls++
	if b.fail != nil {
		if err := b.fail(r); err != nil {
			return backends.Result{}, err
		}
	}
	for _, u := range r.URLs {
		b.got[u]++
	}
	for _, g := range r.Tags {
		b.tags[g]++
	}
	return backends.Result{Objects: r.Len()}, nil
}

// purged returns how many times each URL was purged.
func (b *backend) purged() map[string]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[string]int, len(b.got))
	for k, v := range b.got {
		out[k] = v
	}
	return out
}

// failTimes returns a fail function that fails the first n calls.
func failTimes(n int, err error) func(backends.Request) error {
	var calls atomic.Int64
	return func(backends.Request) error {
		if calls.Add(1) <= int64(n) {
			return err
		}
		return nil
	}
}

var errDown = errors.New("cache down")

// pageURLs returns /pages/<prefix><i> for i in [0, n).
func pageURLs(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("/pages/%s%d", prefix, i)
	}
	return out
}
