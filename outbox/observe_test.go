package outbox_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/dispatcher"
	"github.com/gormpurge/gormpurge/internal/testdb"
	"github.com/gormpurge/gormpurge/observe"
	"github.com/gormpurge/gormpurge/observe/observetest"
	"github.com/gormpurge/gormpurge/outbox"
)

const traceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// traced returns a context carrying an Origin with the traceparent tp.
func traced(tp string) context.Context {
	return observe.ContextWithOrigin(context.Background(), observe.Origin{Committed: time.Now(), TraceParent: tp})
}

// attemptOrigins returns the Origins of every attempt obs has seen.
func attemptOrigins(obs *observetest.Recorder) []observe.Origin {
	var out []observe.Origin
	for _, a := range obs.Attempts() {
		out = append(out, a.Attempt.Origins...)
	}
	return out
}

// named keys figs by "metric/outcome".
func named(figs []observe.Figure) map[string]float64 {
	got := map[string]float64{}
	for _, f := range figs {
		got[f.Metric.String()+"/"+f.Outcome] = f.Value
	}
	return got
}

// A well-formed traceparent in the context of a write is kept in every row
// the request takes, whether the plugin writes it in the transaction or
// Enqueue writes it; anything else is kept as "" and the write succeeds.
func TestRowsCarryTheTraceParent(t *testing.T) {
	forEachKind(t, func(t *testing.T, kind string) {
		s := newSite(t, kind)
		ctx := context.Background()
		require.NoError(t, s.db.WithContext(traced(traceParent)).Create(&Page{Slug: "in-tx"}).Error)
		want := map[string]string{"/pages/in-tx": traceParent}
		for i, tc := range []struct {
			ctx  context.Context
			want string
		}{
			{traced(traceParent), traceParent},
			{ctx, ""},
			{traced(""), ""},
			{traced(strings.ToUpper(traceParent)), ""},
			{traced("00-00000000000000000000000000000000-00f067aa0ba902b7-01"), ""},
			{traced("01" + traceParent[2:]), ""},
			{traced(traceParent + "-extra"), ""},
			{traced(strings.Repeat("x", 1000)), ""},
		} {
			u := fmt.Sprintf("/pages/enqueued%d", i)
			require.NoError(t, s.ob.Enqueue(tc.ctx, backends.NewRequest([]string{u}, nil)))
			want[u] = tc.want
		}
		// A request too large for one row: every row keeps the trace.
		big := pageURLs("a-slug-long-enough-to-need-two-rows-", 40000)
		require.NoError(t, s.ob.Enqueue(traced(traceParent), backends.NewRequest(big, nil)))

		rows, err := s.ob.Rows(ctx, outbox.Pending, 100)
		require.NoError(t, err)
		got := map[string]string{}
		bigRows := 0
		for _, r := range rows {
			if len(r.Request.URLs) > 1 {
				bigRows++
				assert.Equal(t, traceParent, r.TraceParent, "row %d of the large request", r.ID)
				continue
			}
			got[r.Request.URLs[0]] = r.TraceParent
		}
		assert.Equal(t, want, got)
		assert.GreaterOrEqual(t, bigRows, 2, "the large request took several rows")
		assert.Empty(t, s.errs.all())
	})
}

// A relay's Source reports the table's pending and dead rows, the age of
// the oldest pending one and the rows the relay settled; Close removes it,
// once.
func TestObserverReadsTheTable(t *testing.T) {
	forEachKind(t, func(t *testing.T, kind string) {
		obs := &observetest.Recorder{}
		s := newSite(t, kind, outbox.WithObserver(obs), outbox.WithMaxAttempts(5), outbox.WithBackoff(time.Hour, time.Hour))
		b := newBackend("cache")
		b.limits = backends.Limits{MaxObjects: 1} // a call's outcome is one row's
		b.fail = func(r backends.Request) error {
			switch {
			case strings.HasPrefix(r.URLs[0], "/pages/dead"):
				return backends.Permanent(errors.New("forbidden"))
			case strings.HasPrefix(r.URLs[0], "/pages/retry"):
				return errDown
			}
			return nil
		}
		d := newDispatcher(t, b)
		r := mustRelay(t, s.ob, d)
		written := time.Now()
		for _, slug := range []string{"ok", "dead", "retry"} {
			require.NoError(t, s.db.Create(&Page{Slug: slug}).Error)
		}
		require.Eventually(t, func() bool {
			st := r.Stats()
			return st.Delivered == 1 && st.Dead == 1 && st.Retried == 1
		}, 20*time.Second, 5*time.Millisecond)

		assert.Equal(t, 1, obs.Sources(), "the relay registered its Source")
		assert.Zero(t, obs.Stops())
		got := named(obs.Figures(context.Background()))
		age := got["outbox.oldest_pending.age/"]
		assert.GreaterOrEqual(t, age, 0.0)
		assert.LessOrEqual(t, age, time.Since(written).Seconds()+0.001, "the retrying row's age")
		delete(got, "outbox.oldest_pending.age/")
		assert.Equal(t, map[string]float64{
			"outbox.pending/":       1,
			"outbox.dead/":          1,
			"outbox.rows/delivered": 1,
			"outbox.rows/retried":   1,
			"outbox.rows/dead":      1,
		}, got)

		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, r.Close(ctx))
		require.NoError(t, r.Close(ctx))
		require.NoError(t, d.Close(ctx))
		assert.Equal(t, 1, obs.Stops(), "Close removed the Source once")
	})
}

// A Source that cannot read the table (its collection's context ended, the
// table gone) reports the relay's counters alone, and logs at Warn once a
// minute and at Debug otherwise.
func TestObserverWithoutTheTable(t *testing.T) {
	logs := &logRecorder{}
	obs := &observetest.Recorder{}
	db := testdb.Open(t, "sqlite", nil)
	ob, err := outbox.New(db, fast(outbox.WithObserver(obs), outbox.WithLogger(slog.New(logs)),
		outbox.WithErrorHandler(func(context.Context, error) {}))...)
	require.NoError(t, err)
	startRelay(t, ob, newBackend("cache"))

	// The Source is called directly: an exporter reads none once its
	// context has ended.
	collect := func(ctx context.Context) map[string]float64 {
		got := map[string]float64{}
		for _, src := range obs.Watched() {
			src(ctx, func(rd observe.Reading) { got[rd.Metric.String()+"/"+rd.Outcome] += rd.Value })
		}
		return got
	}
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	counters := map[string]float64{"outbox.rows/delivered": 0, "outbox.rows/retried": 0, "outbox.rows/dead": 0}
	assert.Equal(t, counters, collect(ended))
	require.NoError(t, db.Migrator().DropTable(ob.Table()))
	assert.Equal(t, counters, named(obs.Figures(context.Background())))
	assert.Equal(t, []slog.Level{slog.LevelWarn, slog.LevelDebug}, logs.levels("the observer could not read the outbox table"))
}

// An Observer given as nil, even typed, is an error naming the option.
func TestWithObserverNil(t *testing.T) {
	db := testdb.Open(t, "sqlite", nil)
	for _, o := range []observe.Observer{nil, (*observetest.Recorder)(nil)} {
		_, err := outbox.New(db, outbox.WithObserver(o))
		require.Error(t, err)
		assert.ErrorContains(t, err, "WithObserver(nil)")
	}
}

// logRecorder is a slog.Handler that keeps every record.
type logRecorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *logRecorder) WithGroup(string) slog.Handler            { return h }

func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = append(h.recs, r)
	return nil
}

// levels returns the levels of the records whose message contains msg.
func (h *logRecorder) levels(msg string) []slog.Level {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []slog.Level
	for _, r := range h.recs {
		if strings.Contains(r.Message, msg) {
			out = append(out, r.Level)
		}
	}
	return out
}

// A trace column managed by hand may hold NULL or garbage: such a row reads
// as untraced and is delivered like the others.
func TestHandWrittenTraces(t *testing.T) {
	forEachKind(t, func(t *testing.T, kind string) {
		db := testdb.Open(t, kind, nil)
		id := map[string]string{
			"sqlite": "INTEGER PRIMARY KEY AUTOINCREMENT", "postgres": "BIGSERIAL PRIMARY KEY", "mysql": "BIGINT AUTO_INCREMENT PRIMARY KEY",
		}[kind]
		require.NoError(t, db.Exec(`CREATE TABLE hand_outbox (id `+id+`, created_at BIGINT NOT NULL DEFAULT 0,
			state VARCHAR(16) NOT NULL DEFAULT 'pending', available_at BIGINT NOT NULL DEFAULT 0, attempts INT NOT NULL DEFAULT 0,
			lease_owner VARCHAR(128), urls TEXT, tags TEXT, done_backends TEXT, last_error TEXT, trace VARCHAR(64))`).Error)
		require.NoError(t, db.Exec(`INSERT INTO hand_outbox (urls, trace) VALUES ('["/pages/null"]', NULL), ('["/pages/garbage"]', 'zzz'), ('["/pages/traced"]', ?)`, traceParent).Error)
		ob, err := outbox.New(db, fast(outbox.WithTable("hand_outbox"), outbox.WithoutMigrate())...)
		require.NoError(t, err)
		rows, err := ob.Rows(context.Background(), outbox.Pending, 10)
		require.NoError(t, err)
		got := map[string]string{}
		for _, r := range rows {
			got[r.Request.URLs[0]] = r.TraceParent
		}
		assert.Equal(t, map[string]string{"/pages/null": "", "/pages/garbage": "", "/pages/traced": traceParent}, got)
		b := newBackend("cache")
		startRelay(t, ob, b)
		settle(t, ob)
		assert.Equal(t, map[string]int{"/pages/null": 1, "/pages/garbage": 1, "/pages/traced": 1}, b.purged())
	})
}

// observedRelay starts, on its own connection pool to dsn (as another
// process would), an outbox on table and a relay through a dispatcher to b
// that reports to obs; all are closed at cleanup.
func observedRelay(t *testing.T, kind, dsn, table string, obs observe.Observer, b backends.Backend) *outbox.Outbox {
	t.Helper()
	ob, err := outbox.New(testdb.OpenDSN(t, kind, dsn, nil), fast(outbox.WithTable(table))...)
	require.NoError(t, err)
	d := mustDispatcher(t, []backends.Backend{b}, dispatcher.WithLogger(quiet), dispatcher.WithLinger(time.Millisecond),
		dispatcher.WithMaxAttempts(1), dispatcher.WithObserver(obs))
	r := mustRelay(t, ob, d)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		assert.NoError(t, r.Close(ctx))
		assert.NoError(t, d.Close(ctx))
	})
	return ob
}

// A transaction committed with an Origin in its context is delivered by a
// relay elsewhere with that Origin: the dispatcher's attempt carries the
// transaction's traceparent, and the time its row was written.
func TestRelayCarriesTheOriginToTheDispatcher(t *testing.T) {
	forEachKind(t, func(t *testing.T, kind string) {
		s := newSite(t, kind)
		before := time.Now().Truncate(time.Millisecond)
		require.NoError(t, s.db.WithContext(traced(traceParent)).Create(&Page{Slug: "traced"}).Error)
		after := time.Now()

		obs := &observetest.Recorder{}
		b := newBackend("cache")
		ob := observedRelay(t, kind, s.dsn, s.ob.Table(), obs, b)
		settle(t, ob)
		assert.Equal(t, map[string]int{"/pages/traced": 1}, b.purged())
		rows, err := ob.Rows(context.Background(), outbox.Delivered, 10)
		require.NoError(t, err)
		require.Len(t, rows, 1)
		assert.Equal(t, traceParent, rows[0].TraceParent)

		origins := attemptOrigins(obs)
		require.Len(t, origins, 1, "one attempt, carrying one handoff")
		assert.Equal(t, traceParent, origins[0].TraceParent)
		assert.True(t, origins[0].Committed.Equal(rows[0].Created), "committed %v, row written %v", origins[0].Committed, rows[0].Created)
		assert.False(t, origins[0].Committed.Before(before), "committed %v, before the write %v", origins[0].Committed, before)
		assert.False(t, origins[0].Committed.After(after), "committed %v, after the write %v", origins[0].Committed, after)
		assert.Empty(t, s.errs.all())
	})
}

// A row written before the trace column existed is delivered once the
// table is migrated, with the time it was written and no traceparent.
func TestOldRowsDeliverUntraced(t *testing.T) {
	forEachKind(t, func(t *testing.T, kind string) {
		dsn := testdb.DSN(t, kind)
		db := testdb.OpenDSN(t, kind, dsn, nil)
		id := map[string]string{
			"sqlite": "INTEGER PRIMARY KEY AUTOINCREMENT", "postgres": "BIGSERIAL PRIMARY KEY", "mysql": "BIGINT AUTO_INCREMENT PRIMARY KEY",
		}[kind]
		require.NoError(t, db.Exec(`CREATE TABLE old_outbox (id `+id+`, created_at BIGINT NOT NULL, state VARCHAR(16) NOT NULL,
			available_at BIGINT NOT NULL, attempts INT NOT NULL, lease_owner VARCHAR(128), urls TEXT NOT NULL, tags TEXT NOT NULL,
			done_backends TEXT NOT NULL, last_error TEXT NOT NULL)`).Error)
		written := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
		require.NoError(t, db.Exec(`INSERT INTO old_outbox (created_at, state, available_at, attempts, urls, tags, done_backends, last_error)
			VALUES (?, 'pending', 0, 0, '["/pages/old"]', '[]', '[]', '')`, written.UnixMilli()).Error)

		obs := &observetest.Recorder{}
		b := newBackend("cache")
		ob := observedRelay(t, kind, dsn, "old_outbox", obs, b) // migrates the table
		settle(t, ob)
		assert.True(t, db.Migrator().HasColumn("old_outbox", "trace"))
		assert.Equal(t, map[string]int{"/pages/old": 1}, b.purged())
		origins := attemptOrigins(obs)
		require.Len(t, origins, 1)
		assert.Empty(t, origins[0].TraceParent)
		assert.True(t, origins[0].Committed.Equal(written), "committed %v, row written %v", origins[0].Committed, written)
	})
}

// A table's backlog counts once however many relays read it, and the
// backlogs of two tables add up.
func TestObserverCountsEachTablesBacklogOnce(t *testing.T) {
	obs := &observetest.Recorder{}
	kind := "sqlite"
	s := newSite(t, kind, outbox.WithObserver(obs), outbox.WithBackoff(time.Hour, time.Hour))
	other, err := outbox.New(s.db, append(fast(outbox.WithTable("other_outbox")), outbox.WithObserver(obs), outbox.WithBackoff(time.Hour, time.Hour))...)
	require.NoError(t, err)
	ctx := context.Background()
	for i := range 2 {
		require.NoError(t, s.ob.Enqueue(ctx, backends.NewRequest([]string{fmt.Sprintf("/a/%d", i)}, nil)))
	}
	for i := range 3 {
		require.NoError(t, other.Enqueue(ctx, backends.NewRequest([]string{fmt.Sprintf("/b/%d", i)}, nil)))
	}
	down := func() backends.Backend {
		b := newBackend("cache")
		b.fail = func(backends.Request) error { return errDown }
		return b
	}
	r1, r2, r3 := startRelay(t, s.ob, down()), startRelay(t, s.ob, down()), startRelay(t, other, down())
	require.Eventually(t, func() bool {
		return r1.Stats().Retried+r2.Stats().Retried == 2 && r3.Stats().Retried == 3
	}, 20*time.Second, 5*time.Millisecond, "every row tried once and put back")
	pending, ok := obs.Value(observe.OutboxPending, "", "")
	require.True(t, ok)
	assert.Equal(t, 5.0, pending, "2 + 3 pending rows, the first table's counted once though two relays read it")
}
