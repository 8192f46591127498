package outbox_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
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

func forEachKind(t *testing.T, fn func(t *testing.T, kind string)) {
	for _, kind := range testdb.Kinds {
		t.Run(kind, func(t *testing.T) { fn(t, kind) })
	}
}

// A committed transaction's pages reach the backend once and the row is
// kept as delivered; rolled-back work never leaves the database.
func TestDeliversCommittedWorkOnly(t *testing.T) {
	forEachKind(t, func(t *testing.T, kind string) {
		s := newSite(t, kind)
		b := newBackend("cache")
		s.relay(t, b)

		require.NoError(t, s.db.Create(&Page{Slug: "a"}).Error)
		require.NoError(t, s.db.Transaction(func(tx *gorm.DB) error {
			require.NoError(t, tx.Create(&Page{Slug: "b"}).Error)
			_ = tx.Transaction(func(tx2 *gorm.DB) error {
				require.NoError(t, tx2.Create(&Page{Slug: "savepoint"}).Error)
				return errors.New("undo the savepoint")
			})
			return nil
		}))
		_ = s.db.Transaction(func(tx *gorm.DB) error {
			require.NoError(t, tx.Create(&Page{Slug: "rolled-back"}).Error)
			return errors.New("undo")
		})

		st := settle(t, s.ob)
		assert.Equal(t, map[string]int{"/pages/a": 1, "/pages/b": 1}, b.purged())
		assert.Equal(t, int64(2), st.Delivered)
		assert.Zero(t, st.Dead)
		rows, err := s.ob.Rows(context.Background(), outbox.Delivered, 10)
		require.NoError(t, err)
		require.Len(t, rows, 2)
		// Delivered rows are listed by delivery time: the two rows may
		// have been delivered in either order.
		slices.SortFunc(rows, func(a, b outbox.Row) int { return cmp.Compare(a.ID, b.ID) })
		assert.Equal(t, []string{"/pages/a"}, rows[0].Request.URLs)
		assert.Equal(t, []string{"/pages/b"}, rows[1].Request.URLs)
		for _, r := range rows {
			assert.Equal(t, 1, r.Attempts)
			assert.Empty(t, r.LeaseOwner)
		}
		assert.Empty(t, s.errs.all())
	})
}

// A failed hand-off is retried later with its attempts counted on the row,
// and only the backends that did not accept it are sent it again.
func TestRetriesOnlyTheBackendsThatFailed(t *testing.T) {
	forEachKind(t, func(t *testing.T, kind string) {
		s := newSite(t, kind, outbox.WithMaxAttempts(5))
		ok, flaky := newBackend("ok"), newBackend("flaky")
		flaky.fail = failTimes(2, errDown)
		r := s.relay(t, ok, flaky)

		require.NoError(t, s.db.Create(&Page{Slug: "x"}).Error)
		settle(t, s.ob)
		assert.Equal(t, map[string]int{"/pages/x": 1}, ok.purged(), "the backend that accepted it is not sent it again")
		assert.Equal(t, map[string]int{"/pages/x": 1}, flaky.purged())
		assert.Equal(t, 3, flaky.calls)
		rows, err := s.ob.Rows(context.Background(), outbox.Delivered, 10)
		require.NoError(t, err)
		require.Len(t, rows, 1)
		assert.Equal(t, 3, rows[0].Attempts)
		// The counters move just after the row is marked (a CI run read
		// them in between).
		require.Eventually(t, func() bool { return r.Stats().Delivered == 1 }, 5*time.Second, time.Millisecond)
		assert.Equal(t, uint64(2), r.Stats().Retried)
	})
}

// After its last attempt a row is dead: reported, kept, visible, and
// delivered when re-driven.
func TestDeadRowsAreKeptAndRedriven(t *testing.T) {
	forEachKind(t, func(t *testing.T, kind string) {
		s := newSite(t, kind, outbox.WithMaxAttempts(2))
		b := newBackend("cache")
		var down atomic.Bool
		down.Store(true)
		b.fail = func(backends.Request) error {
			if down.Load() {
				return errDown
			}
			return nil
		}
		s.relay(t, b)

		require.NoError(t, s.db.Create(&Page{Slug: "dead"}).Error)
		st := settle(t, s.ob)
		assert.Equal(t, int64(1), st.Dead)
		dead, err := s.ob.Rows(context.Background(), outbox.Dead, 10)
		require.NoError(t, err)
		require.Len(t, dead, 1)
		assert.Equal(t, 2, dead[0].Attempts)
		assert.Contains(t, dead[0].LastError, "cache down")
		assert.Equal(t, []string{"/pages/dead"}, dead[0].Request.URLs)
		var rowErr *outbox.RowError
		require.Len(t, s.errs.all(), 1)
		require.ErrorAs(t, s.errs.all()[0], &rowErr)
		assert.True(t, rowErr.Dead)
		assert.Equal(t, dead[0].ID, rowErr.ID)
		assert.Empty(t, b.purged())

		down.Store(false)
		n, err := s.ob.Redrive(context.Background())
		require.NoError(t, err)
		assert.Equal(t, int64(1), n)
		st = settle(t, s.ob)
		assert.Zero(t, st.Dead)
		assert.Equal(t, int64(1), st.Delivered)
		assert.Equal(t, map[string]int{"/pages/dead": 1}, b.purged())
	})
}

// A permanent refusal cannot be fixed by retrying: the row dies at once.
func TestPermanentFailureKillsTheRowAtOnce(t *testing.T) {
	s := newSite(t, "sqlite", outbox.WithMaxAttempts(5))
	b := newBackend("cache")
	b.fail = func(backends.Request) error { return backends.Permanent(errors.New("403 forbidden")) }
	s.relay(t, b)
	require.NoError(t, s.db.Create(&Page{Slug: "refused"}).Error)
	st := settle(t, s.ob)
	assert.Equal(t, int64(1), st.Dead)
	assert.Equal(t, 1, b.calls)
	dead, err := s.ob.Rows(context.Background(), outbox.Dead, 10)
	require.NoError(t, err)
	require.Len(t, dead, 1)
	assert.Contains(t, dead[0].LastError, "403 forbidden")
}

// The rows of a relay that died stay claimed only until its lease runs out;
// then another relay delivers them.
func TestExpiredLeasesAreClaimedByAnotherRelay(t *testing.T) {
	forEachKind(t, func(t *testing.T, kind string) {
		s := newSite(t, kind)
		ctx := context.Background()
		for _, u := range pageURLs("orphan", 3) {
			require.NoError(t, s.ob.Enqueue(ctx, backends.NewRequest([]string{u}, nil)))
		}
		// What a relay that died mid-batch leaves behind.
		leaseEnd := time.Now().Add(1500 * time.Millisecond)
		require.NoError(t, s.db.Exec("UPDATE gormpurge_outbox SET lease_owner = ?, available_at = ?", "dead-relay", leaseEnd.UnixMilli()).Error)

		b := newBackend("cache")
		var purgedAt time.Time
		b.fail = func(backends.Request) error {
			if purgedAt.IsZero() {
				purgedAt = time.Now()
			}
			return nil
		}
		s.relay(t, b)
		settle(t, s.ob)
		assert.Len(t, b.purged(), 3)
		b.mu.Lock() // purgedAt is written under the backend's lock
		defer b.mu.Unlock()
		assert.False(t, purgedAt.Before(leaseEnd.Add(-50*time.Millisecond)), "claimed %v before the lease ended", leaseEnd.Sub(purgedAt))
	})
}

// Two relays on one table deliver every row, and no row is delivered by
// both.
func TestTwoRelaysShareTheTable(t *testing.T) {
	const rows = 10_000
	forEachKind(t, func(t *testing.T, kind string) {
		s := newSite(t, kind)
		// A second process in spirit: its own pool and outbox value. Both
		// relays run before the rows are written, so that both find work
		// (started one after the other, the first could deliver every row
		// before the second claimed any: a CI run saw it on SQLite).
		other := testdb.OpenDSN(t, kind, s.dsn, nil)
		ob2, err := outbox.New(other, fast()...)
		require.NoError(t, err)
		b1, b2 := newBackend("cache"), newBackend("cache")
		// Each purge takes a moment, as a real one does: a relay that is
		// delivering leaves the next claim to the other (on SQLite an
		// instant backend let one relay claim every batch).
		slow := func(backends.Request) error { time.Sleep(time.Millisecond); return nil }
		b1.fail, b2.fail = slow, slow
		r1 := s.relay(t, b1)
		r2 := startRelay(t, ob2, b2)

		// Write the rows in a few transactions, as the plugin would: each
		// request is one row.
		urls := pageURLs("p", rows)
		ctx := context.Background()
		sqlDB, err := s.db.DB()
		require.NoError(t, err)
		for i := 0; i < rows; i += 1000 {
			tx, err := sqlDB.BeginTx(ctx, nil)
			require.NoError(t, err)
			for _, u := range urls[i : i+1000] {
				require.NoError(t, s.ob.EnqueueTx(ctx, tx, backends.NewRequest([]string{u}, nil)))
			}
			require.NoError(t, tx.Commit())
		}
		st := settle(t, s.ob)
		assert.Equal(t, int64(rows), st.Delivered)

		// The counters move just after the rows are marked.
		require.Eventually(t, func() bool { return r1.Stats().Delivered+r2.Stats().Delivered == rows }, 5*time.Second, time.Millisecond)
		got1, got2 := b1.purged(), b2.purged()
		for _, u := range urls {
			n := got1[u] + got2[u]
			if !assert.Equal(t, 1, n, "%s delivered %d times", u, n) {
				break
			}
		}
		assert.Equal(t, len(got1), int(r1.Stats().Delivered), "relay 1 purged what it marked")
		assert.Equal(t, len(got2), int(r2.Stats().Delivered), "relay 2 purged what it marked")
		if kind != "sqlite" {
			// SQLite's lock is not fair: a relay waiting in its busy
			// handler can lose every claim to one that keeps taking the
			// lock (seen under CI load), which shares nothing but is
			// correct. The servers' row locks share the work.
			assert.NotZero(t, r1.Stats().Delivered, "relay 1 did no work")
			assert.NotZero(t, r2.Stats().Delivered, "relay 2 did no work")
		}
		assert.Zero(t, r1.Stats().LostLeases+r2.Stats().LostLeases)
		t.Logf("%s: relay 1 delivered %d rows, relay 2 %d", kind, r1.Stats().Delivered, r2.Stats().Delivered)
	})
}

// On PostgreSQL a commit in another process wakes an idle relay through
// LISTEN/NOTIFY, long before its next poll.
func TestNotifyWakesRelaysElsewhere(t *testing.T) {
	s := newSite(t, "postgres", outbox.WithPollInterval(time.Hour))
	b := newBackend("cache")
	s.relay(t, b)
	// Wait until the relay listens; it claims once right after.
	require.Eventually(t, func() bool {
		var n int64
		s.db.Raw("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN %'").Scan(&n)
		return n > 0
	}, 10*time.Second, 5*time.Millisecond)

	other := testdb.OpenDSN(t, "postgres", s.dsn, nil)
	ob2, err := outbox.New(other, fast()...)
	require.NoError(t, err)
	require.NoError(t, ob2.Enqueue(context.Background(), backends.NewRequest([]string{"/pages/notified"}, nil)))
	require.Eventually(t, func() bool { return b.purged()["/pages/notified"] == 1 }, 10*time.Second, 5*time.Millisecond,
		"the relay polls hourly: only NOTIFY can have woken it")
}

// Closing a relay whose context ends first gives its rows back, unsettled
// and without an attempt counted, for another relay.
func TestCloseGivesRowsBack(t *testing.T) {
	s := newSite(t, "sqlite")
	release := make(chan struct{})
	b := newBackend("stuck")
	b.fail = func(backends.Request) error { <-release; return nil }
	d := newDispatcher(t, b)
	r := mustRelay(t, s.ob, d)
	require.NoError(t, s.db.Create(&Page{Slug: "stuck"}).Error)
	require.Eventually(t, func() bool { return r.Stats().Held == 1 }, 5*time.Second, 5*time.Millisecond)

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := r.Close(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, err.Error(), "1 rows unsettled")
	close(release)
	require.NoError(t, d.Close(context.Background()))

	pending, err := s.ob.Rows(context.Background(), outbox.Pending, 10)
	require.NoError(t, err)
	require.Len(t, pending, 1)
	assert.Empty(t, pending[0].LeaseOwner)
	assert.Zero(t, pending[0].Attempts)
	assert.Equal(t, uint64(1), r.Stats().Released)
}

// Delivered rows are pruned after the retention time, or deleted at once
// when so configured.
func TestPruneAndDeleteDelivered(t *testing.T) {
	s := newSite(t, "sqlite", outbox.WithRetention(0))
	s.relay(t, newBackend("cache"))
	require.NoError(t, s.db.Create(&Page{Slug: "old"}).Error)
	assert.Equal(t, int64(1), settle(t, s.ob).Delivered)
	time.Sleep(2 * time.Millisecond)
	n, err := s.ob.Prune(context.Background())
	require.NoError(t, err)
	assert.Equal(t, int64(1), n)
	assert.Zero(t, settle(t, s.ob).Delivered)

	s2 := newSite(t, "sqlite", outbox.WithDeleteDelivered())
	s2.relay(t, newBackend("cache"))
	require.NoError(t, s2.db.Create(&Page{Slug: "gone"}).Error)
	require.Eventually(t, func() bool {
		var n int64
		require.NoError(t, s2.db.Table("gormpurge_outbox").Count(&n).Error)
		return n == 0
	}, 10*time.Second, 5*time.Millisecond)
}

// New creates the table once, adds what an older table lacks, and refuses
// bad settings with an error naming them.
func TestNewMigratesAndValidates(t *testing.T) {
	forEachKind(t, func(t *testing.T, kind string) {
		db := testdb.Open(t, kind, nil)
		// An older table: without done_backends, last_error and trace.
		require.NoError(t, db.Exec(`CREATE TABLE old_outbox (id `+map[string]string{
			"sqlite": "INTEGER PRIMARY KEY AUTOINCREMENT", "postgres": "BIGSERIAL PRIMARY KEY", "mysql": "BIGINT AUTO_INCREMENT PRIMARY KEY",
		}[kind]+`, created_at BIGINT NOT NULL, state VARCHAR(16) NOT NULL, available_at BIGINT NOT NULL, attempts INT NOT NULL, lease_owner VARCHAR(128), urls TEXT NOT NULL, tags TEXT NOT NULL)`).Error)
		require.NoError(t, db.Exec(`INSERT INTO old_outbox (created_at, state, available_at, attempts, urls, tags) VALUES (1, 'pending', 1, 0, '["/old"]', '[]')`).Error)
		for range 2 {
			ob, err := outbox.New(db, outbox.WithTable("old_outbox"), outbox.WithLogger(quiet))
			require.NoError(t, err)
			require.NoError(t, ob.Enqueue(context.Background(), backends.NewRequest([]string{"/x"}, nil)))
		}
		assert.True(t, db.Migrator().HasColumn("old_outbox", "done_backends"))
		assert.True(t, db.Migrator().HasColumn("old_outbox", "last_error"))
		assert.True(t, db.Migrator().HasColumn("old_outbox", "trace"))
		assert.True(t, db.Migrator().HasIndex("old_outbox", "old_outbox_claim_idx"))
		ob, err := outbox.New(db, outbox.WithTable("old_outbox"), outbox.WithLogger(quiet))
		require.NoError(t, err)
		st, err := ob.Status(context.Background())
		require.NoError(t, err)
		assert.Equal(t, int64(3), st.Pending)
		rows, err := ob.Rows(context.Background(), outbox.Pending, 10)
		require.NoError(t, err, "the row from before the migration reads like the others")
		require.Len(t, rows, 3)
		assert.Equal(t, []string{"/old"}, rows[0].Request.URLs)
		assert.Empty(t, rows[0].DoneBackends)
		assert.Empty(t, rows[0].TraceParent)
		b := newBackend("cache")
		startRelay(t, ob, b)
		settle(t, ob)
		assert.Contains(t, b.purged(), "/old")
		assert.Contains(t, b.purged(), "/x") // the two rows may be merged into one purge
	})

	db := testdb.Open(t, "sqlite", nil)
	for _, tc := range []struct {
		opt  outbox.Option
		want string
	}{
		{outbox.WithTable("drop table; --"), `WithTable("drop table; --")`},
		{outbox.WithTable("1abc"), `WithTable("1abc")`},
		{outbox.WithTable("other.gormpurge_outbox"), `WithTable("other.gormpurge_outbox")`},
		{outbox.WithTable(""), `WithTable("")`},
		{outbox.WithBatchSize(0), "WithBatchSize(0)"},
		{outbox.WithConcurrency(0), "WithConcurrency(0)"},
		{outbox.WithLease(time.Millisecond), "WithLease(1ms)"},
		{outbox.WithPollInterval(0), "WithPollInterval(0s)"},
		{outbox.WithMaxAttempts(0), "WithMaxAttempts(0)"},
		{outbox.WithBackoff(time.Second, time.Millisecond), "WithBackoff(1s, 1ms)"},
		{outbox.WithRetention(-time.Second), "WithRetention(-1s)"},
		{outbox.WithLogger(nil), "WithLogger(nil)"},
		{outbox.WithErrorHandler(nil), "WithErrorHandler(nil): pass a function"},
		{outbox.WithObserver(nil), "WithObserver(nil): pass an observe.Observer"},
		{nil, "an Option is nil: remove it, or pass one made by a With... function"},
	} {
		_, err := outbox.New(db, tc.opt)
		require.Error(t, err, tc.want)
		assert.Contains(t, err.Error(), tc.want)
	}
	var noCtx context.Context
	for _, tc := range []struct {
		name string
		ctx  context.Context
		db   *gorm.DB
		opts []outbox.Option
		want []string
	}{
		{"nil db", t.Context(), nil, nil, []string{"outbox: New: invalid configuration", "db is nil: pass the *gorm.DB that gorm.Open returned"}},
		{"db built by hand", t.Context(), &gorm.DB{}, nil, []string{"db has no dialector"}},
		{"nil ctx", noCtx, db, nil, []string{"NewContext(nil, ...): pass a context"}},
		{"every problem at once", t.Context(), nil, []outbox.Option{nil, outbox.WithBatchSize(0)},
			[]string{"db is nil", "an Option is nil", "WithBatchSize(0)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ob, err := outbox.NewContext(tc.ctx, tc.db, tc.opts...)
			assert.Nil(t, ob)
			require.Error(t, err)
			for _, w := range tc.want {
				assert.ErrorContains(t, err, w)
			}
		})
	}
	_, err := outbox.New(nil)
	assert.ErrorContains(t, err, "db is nil")
	_, err = outbox.New(db, outbox.WithRetry(dispatcher.RetryPolicy{InitialBackoff: time.Second, MaxBackoff: time.Second, MaxAttempts: 3, MaxElapsed: time.Hour}))
	assert.ErrorContains(t, err, "WithRetry: MaxElapsed 1h0m0s")
}

// Relay refuses a dispatcher that cannot deliver, and starts nothing.
func TestRelayRejectsInvalidDispatcher(t *testing.T) {
	s := newSite(t, "sqlite")
	for _, tc := range []struct {
		name string
		d    *dispatcher.Dispatcher
		want string
	}{
		{"nil", nil, "Relay(nil): pass the *dispatcher.Dispatcher"},
		{"zero", &dispatcher.Dispatcher{}, "the dispatcher has no backends"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := s.ob.Relay(tc.d)
			require.Error(t, err)
			assert.Nil(t, r)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

// Close twice, and concurrently, is safe: later calls return nil.
func TestRelayCloseTwice(t *testing.T) {
	s := newSite(t, "sqlite")
	d := newDispatcher(t, newBackend("a"))
	r := mustRelay(t, s.ob, d)
	errs := make(chan error, 2)
	for range 2 {
		go func() { errs <- r.Close(t.Context()) }()
	}
	assert.NoError(t, <-errs)
	assert.NoError(t, <-errs)
	assert.NoError(t, r.Close(t.Context()))
	require.NoError(t, d.Close(t.Context()))
}

// A row that does not decode (edited by hand) is killed with an error
// naming it, and the others are delivered.
func TestUndecodableRowIsKilled(t *testing.T) {
	s := newSite(t, "sqlite")
	ctx := context.Background()
	require.NoError(t, s.ob.Enqueue(ctx, backends.NewRequest([]string{"/pages/fine"}, nil)))
	require.NoError(t, s.db.Exec(`INSERT INTO gormpurge_outbox (created_at, state, available_at, attempts, urls, tags, done_backends, last_error) VALUES (0, 'pending', 0, 0, 'not json', '[]', '[]', '')`).Error)
	b := newBackend("cache")
	s.relay(t, b)
	st := settle(t, s.ob)
	assert.Equal(t, int64(1), st.Dead)
	assert.Equal(t, map[string]int{"/pages/fine": 1}, b.purged())
	dead, err := s.ob.Rows(ctx, outbox.Dead, 1)
	require.NoError(t, err)
	require.Len(t, dead, 1)
	assert.True(t, strings.Contains(dead[0].LastError, fmt.Sprintf("row %d", dead[0].ID)), dead[0].LastError)
}

// A row the dispatcher does not take (its queue is full) goes back without
// an attempt counted: a burst is delayed, never killed.
func TestFullDispatcherDoesNotKillRows(t *testing.T) {
	s := newSite(t, "sqlite", outbox.WithMaxAttempts(1))
	ctx := context.Background()
	for _, u := range pageURLs("burst", 200) {
		require.NoError(t, s.ob.Enqueue(ctx, backends.NewRequest([]string{u}, nil)))
	}
	b := newBackend("slow")
	b.fail = func(backends.Request) error { time.Sleep(time.Millisecond); return nil }
	d := mustDispatcher(t, []backends.Backend{b}, dispatcher.WithLogger(quiet), dispatcher.WithLinger(0),
		dispatcher.WithQueueSize(5), dispatcher.WithFullPolicy(dispatcher.Reject), dispatcher.WithWorkers(1))
	r := mustRelay(t, s.ob, d)
	t.Cleanup(func() {
		require.NoError(t, r.Close(ctx))
		require.NoError(t, d.Close(ctx))
	})
	st := settle(t, s.ob)
	assert.Zero(t, st.Dead)
	assert.Equal(t, int64(200), st.Delivered)
	assert.Len(t, b.purged(), 200)
	assert.NotZero(t, r.Stats().Released, "the queue was full at times")
}

// The insert inside the user's transaction has no deadline of its own: an
// outbox table locked for longer than the plugin's handoff timeout delays
// the commit, and never fails it.
func TestSlowOutboxWriteDoesNotFailTheCommit(t *testing.T) {
	for _, kind := range []string{"postgres", "mysql"} {
		t.Run(kind, func(t *testing.T) {
			dsn := testdb.DSN(t, kind)
			db := testdb.OpenDSN(t, kind, dsn, nil)
			require.NoError(t, db.AutoMigrate(&Page{}))
			ob, err := outbox.New(db, fast()...)
			require.NoError(t, err)
			p := gormpurge.New(ob, gormpurge.WithLogger(quiet), gormpurge.WithHandoffTimeout(100*time.Millisecond))
			require.NoError(t, p.Register(&Page{}))
			require.NoError(t, db.Use(p))

			locker := testdb.OpenDSN(t, kind, dsn, nil)
			sqlDB, err := locker.DB()
			require.NoError(t, err)
			conn, err := sqlDB.Conn(context.Background())
			require.NoError(t, err)
			defer conn.Close()
			ctx := context.Background()
			if kind == "postgres" {
				_, err = conn.ExecContext(ctx, "BEGIN")
				require.NoError(t, err)
				_, err = conn.ExecContext(ctx, "LOCK TABLE gormpurge_outbox IN EXCLUSIVE MODE")
			} else {
				_, err = conn.ExecContext(ctx, "LOCK TABLES gormpurge_outbox WRITE")
			}
			require.NoError(t, err)
			time.AfterFunc(500*time.Millisecond, func() {
				if kind == "postgres" {
					_, _ = conn.ExecContext(ctx, "COMMIT")
				} else {
					_, _ = conn.ExecContext(ctx, "UNLOCK TABLES")
				}
			})

			require.NoError(t, db.Create(&Page{Slug: "waited"}).Error)
			var n int64
			require.NoError(t, db.Model(&Page{}).Where("slug = ?", "waited").Count(&n).Error)
			assert.Equal(t, int64(1), n, "the user's write was committed")
			st, err := ob.Status(ctx)
			require.NoError(t, err)
			assert.Equal(t, int64(1), st.Pending, "with its outbox row")
		})
	}
}

// With WithoutMigrate, New creates and alters nothing: a table that lacks
// outbox columns, or no table at all, is an *outbox.Error naming the table
// and what is missing; a proper outbox table works.
func TestNewWithoutMigrate(t *testing.T) {
	forEachKind(t, func(t *testing.T, kind string) {
		db := testdb.Open(t, kind, nil)
		require.NoError(t, db.Exec(`CREATE TABLE users (id BIGINT PRIMARY KEY, state VARCHAR(16), name VARCHAR(64))`).Error)
		_, err := outbox.New(db, outbox.WithTable("users"), outbox.WithLogger(quiet), outbox.WithoutMigrate())
		var oe *outbox.Error
		require.ErrorAs(t, err, &oe)
		assert.Equal(t, "users", oe.Table)
		assert.ErrorContains(t, err, "missing columns created_at, available_at, attempts, lease_owner, urls, tags, done_backends, last_error")
		assert.False(t, db.Migrator().HasColumn("users", "created_at"), "nothing added")
		assert.False(t, db.Migrator().HasIndex("users", "users_claim_idx"), "no index created")

		_, err = outbox.New(db, outbox.WithTable("absent_outbox"), outbox.WithLogger(quiet), outbox.WithoutMigrate())
		require.ErrorAs(t, err, &oe)
		assert.ErrorContains(t, err, "absent_outbox")
		assert.False(t, db.Migrator().HasTable("absent_outbox"), "nothing created")

		// A proper table, made by New; then WithoutMigrate uses it.
		_, err = outbox.New(db, outbox.WithTable("real_outbox"), outbox.WithLogger(quiet))
		require.NoError(t, err)
		ob, err := outbox.New(db, outbox.WithTable("real_outbox"), outbox.WithLogger(quiet), outbox.WithoutMigrate())
		require.NoError(t, err)
		require.NoError(t, ob.Enqueue(context.Background(), backends.NewRequest([]string{"/x"}, nil)))
		st, err := ob.Status(context.Background())
		require.NoError(t, err)
		assert.Equal(t, int64(1), st.Pending)
	})
}
