package outbox_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/internal/testdb"
	"github.com/gormpurge/gormpurge/outbox"
)

// rowsByURL returns the rows in state, keyed by their first URL.
func rowsByURL(t *testing.T, ob *outbox.Outbox, state outbox.State) map[string]outbox.Row {
	t.Helper()
	rows, err := ob.Rows(context.Background(), state, 100)
	require.NoError(t, err)
	out := make(map[string]outbox.Row, len(rows))
	for _, r := range rows {
		require.NotEmpty(t, r.Request.URLs)
		out[r.Request.URLs[0]] = r
	}
	return out
}

// Issue 14: last_error was cut at 4,000 bytes in the middle of a UTF-8
// character, and a backend's error text may hold invalid UTF-8 or NUL
// bytes: PostgreSQL and MariaDB refused the UPDATE, the batch's bookkeeping
// rolled back, and its rows were sent again at every lease, never dead,
// along with the unrelated rows of the batch. Every row reaches its end
// after its attempts, with a valid error text.
func TestNonASCIIErrorsAreRecorded(t *testing.T) {
	const maxAttempts = 2
	// Invalid UTF-8 and a NUL up front, then 2-byte characters well past
	// the cut.
	long := "refusé \xff\xfe\x00 par le cache : " + strings.Repeat("é", 2500) + strings.Repeat("日本", 500)
	forEachKind(t, func(t *testing.T, kind string) {
		s := newSite(t, kind, outbox.WithMaxAttempts(maxAttempts))
		b := newBackend("cache")
		b.limits = backends.Limits{MaxObjects: 1}
		b.fail = func(r backends.Request) error {
			switch {
			case strings.HasPrefix(r.URLs[0], "/pages/bad"):
				return errors.New(long)
			case r.URLs[0] == "/pages/down":
				return errDown
			}
			return nil
		}
		ctx := context.Background()
		// Written before the relay starts: one batch holds them all.
		for _, u := range []string{"/pages/bad1", "/pages/down", "/pages/bad2", "/pages/good"} {
			require.NoError(t, s.ob.Enqueue(ctx, backends.NewRequest([]string{u}, nil)))
		}
		s.relay(t, b)

		st := settle(t, s.ob)
		assert.Equal(t, int64(3), st.Dead)
		assert.Equal(t, int64(1), st.Delivered)
		dead := rowsByURL(t, s.ob, outbox.Dead)
		require.Len(t, dead, 3)
		for _, u := range []string{"/pages/bad1", "/pages/bad2"} {
			row := dead[u]
			assert.Equal(t, maxAttempts, row.Attempts, u)
			assert.True(t, utf8.ValidString(row.LastError), "%s: last_error is not valid UTF-8", u)
			assert.NotContains(t, row.LastError, "\x00", u)
			assert.Contains(t, row.LastError, "refusé", u)
			assert.Contains(t, row.LastError, "ééé", u)
			assert.LessOrEqual(t, len(row.LastError), 4100, u)
			assert.True(t, strings.HasSuffix(row.LastError, "…"), "%s: a cut error ends with an ellipsis", u)
		}
		assert.Equal(t, maxAttempts, dead["/pages/down"].Attempts)
		assert.Contains(t, dead["/pages/down"].LastError, "cache down")
		b.mu.Lock()
		assert.Equal(t, 1, b.got["/pages/good"], "the row delivered once")
		b.mu.Unlock()

		var rowErrs int
		for _, err := range s.errs.all() {
			var re *outbox.RowError
			if assert.ErrorAs(t, err, &re) {
				rowErrs++
			}
		}
		assert.Equal(t, 3, rowErrs, "each dead row reported once, and no statement failed")
	})
}

// poisonTrigger makes the database refuse to record any last_error that
// says "poison", and to mark the row purging /pages/stuck delivered:
// outcomes a relay cannot record.
var poisonTrigger = map[string][]string{
	"sqlite": {`CREATE TRIGGER poison BEFORE UPDATE ON gormpurge_outbox
		WHEN NEW.last_error LIKE '%poison%' OR (NEW.state = 'delivered' AND OLD.urls LIKE '%/pages/stuck%')
		BEGIN SELECT RAISE(ABORT, 'poisoned'); END`},
	"postgres": {`CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF NEW.last_error LIKE '%poison%' OR (NEW.state = 'delivered' AND OLD.urls LIKE '%/pages/stuck%') THEN
				RAISE EXCEPTION 'poisoned';
			END IF;
			RETURN NEW;
		END $$`,
		`CREATE TRIGGER poison BEFORE UPDATE ON gormpurge_outbox FOR EACH ROW EXECUTE FUNCTION poison()`},
	"mysql": {`CREATE TRIGGER poison BEFORE UPDATE ON gormpurge_outbox FOR EACH ROW
		BEGIN
			IF NEW.last_error LIKE '%poison%' OR (NEW.state = 'delivered' AND OLD.urls LIKE '%/pages/stuck%') THEN
				SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'poisoned';
			END IF;
		END`},
}

// A row whose outcome the database refuses to record never holds back the
// other rows of its batch: they are recorded, each on its own. A failed
// row whose error text cannot be stored is recorded with a placeholder, so
// it still reaches its end.
func TestOneUnrecordableRowDoesNotHoldBackItsBatch(t *testing.T) {
	forEachKind(t, func(t *testing.T, kind string) {
		s := newSite(t, kind, outbox.WithMaxAttempts(1))
		for _, stmt := range poisonTrigger[kind] {
			require.NoError(t, s.db.Exec(stmt).Error)
		}
		b := newBackend("cache")
		b.limits = backends.Limits{MaxObjects: 1}
		b.fail = func(r backends.Request) error {
			switch r.URLs[0] {
			case "/pages/poison":
				return errors.New("poison")
			case "/pages/down":
				return errDown
			}
			return nil
		}
		ctx := context.Background()
		for _, u := range []string{"/pages/poison", "/pages/down", "/pages/good", "/pages/stuck", "/pages/fine"} {
			require.NoError(t, s.ob.Enqueue(ctx, backends.NewRequest([]string{u}, nil)))
		}
		r := s.relay(t, b)

		require.EventuallyWithT(t, func(c *assert.CollectT) {
			st, err := s.ob.Status(ctx)
			require.NoError(c, err)
			assert.Equal(c, int64(2), st.Dead)
			assert.Equal(c, int64(2), st.Delivered)
			assert.Equal(c, int64(1), st.Pending, "the row that cannot be marked delivered")
			assert.Zero(c, r.Stats().Held)
		}, 20*time.Second, 5*time.Millisecond)
		dead := rowsByURL(t, s.ob, outbox.Dead)
		require.Contains(t, dead, "/pages/poison")
		assert.NotContains(t, dead["/pages/poison"].LastError, "poison", "a placeholder in place of the error the database refused")
		assert.NotEmpty(t, dead["/pages/poison"].LastError)
		assert.Contains(t, dead["/pages/down"].LastError, "cache down")
		delivered := rowsByURL(t, s.ob, outbox.Delivered)
		assert.Contains(t, delivered, "/pages/good")
		assert.Contains(t, delivered, "/pages/fine")
		pending := rowsByURL(t, s.ob, outbox.Pending)
		assert.Contains(t, pending, "/pages/stuck")

		var failed []string
		for _, err := range s.errs.all() {
			var oe *outbox.Error
			if errors.As(err, &oe) {
				failed = append(failed, oe.Error())
			}
		}
		require.Len(t, failed, 1, "one statement failed for good: marking /pages/stuck delivered")
		assert.Contains(t, failed[0], "mark delivered")
	})
}

// Redrive with more ids than a statement may carry placeholders
// (PostgreSQL and MySQL take 65,535, SQLite 32,766) re-drives them all.
func TestRedriveManyIDs(t *testing.T) {
	forEachKind(t, func(t *testing.T, kind string) {
		s := newSite(t, kind)
		ctx := context.Background()
		for _, u := range pageURLs("dead", 3) {
			require.NoError(t, s.ob.Enqueue(ctx, backends.NewRequest([]string{u}, nil)))
		}
		require.NoError(t, s.db.Exec("UPDATE gormpurge_outbox SET state = 'dead', attempts = 10").Error)
		rows, err := s.ob.Rows(ctx, outbox.Dead, 10)
		require.NoError(t, err)
		require.Len(t, rows, 3)
		ids := make([]int64, 0, 70_000)
		for i := range int64(70_000 - 3) {
			ids = append(ids, 1_000_000+i) // no such rows
		}
		for _, r := range rows {
			ids = append(ids, r.ID)
		}

		n, err := s.ob.Redrive(ctx, ids...)
		require.NoError(t, err)
		assert.Equal(t, int64(3), n)
		st, err := s.ob.Status(ctx)
		require.NoError(t, err)
		assert.Equal(t, int64(3), st.Pending)
		assert.Zero(t, st.Dead)
	})
}

// A table managed by migration tooling may leave the text columns
// nullable. A row with NULLs in them is read as empty lists, and is neither
// a claim that fails for its whole batch at every poll nor a listing that
// fails. Such a table may also lack the trace column (added later): rows
// are then written without their traceparent.
func TestNullColumnsDoNotStopTheRelay(t *testing.T) {
	forEachKind(t, func(t *testing.T, kind string) {
		db := testdb.Open(t, kind, nil)
		id := map[string]string{
			"sqlite": "INTEGER PRIMARY KEY AUTOINCREMENT", "postgres": "BIGSERIAL PRIMARY KEY", "mysql": "BIGINT AUTO_INCREMENT PRIMARY KEY",
		}[kind]
		require.NoError(t, db.Exec(`CREATE TABLE nullable_outbox (id `+id+`, created_at BIGINT NOT NULL DEFAULT 0,
			state VARCHAR(16) NOT NULL DEFAULT 'pending', available_at BIGINT NOT NULL DEFAULT 0, attempts INT NOT NULL DEFAULT 0,
			lease_owner VARCHAR(128), urls TEXT, tags TEXT, done_backends TEXT, last_error TEXT)`).Error)
		require.NoError(t, db.Exec(`INSERT INTO nullable_outbox (urls) VALUES ('["/pages/nulls"]')`).Error)
		ob, err := outbox.New(db, fast(outbox.WithTable("nullable_outbox"), outbox.WithoutMigrate())...)
		require.NoError(t, err)
		ctx := context.Background()
		// Without the trace column (WithoutMigrate), a traced write is
		// written without its trace.
		require.NoError(t, ob.Enqueue(traced(traceParent), backends.NewRequest([]string{"/pages/fine"}, nil)))
		pending, err := ob.Rows(ctx, outbox.Pending, 10)
		require.NoError(t, err)
		require.Len(t, pending, 2)
		assert.Equal(t, []string{"/pages/nulls"}, pending[0].Request.URLs)
		assert.Empty(t, pending[0].Request.Tags)
		assert.Empty(t, pending[1].TraceParent)

		b := newBackend("cache")
		startRelay(t, ob, b)
		st := settle(t, ob)
		assert.Equal(t, int64(2), st.Delivered)
		assert.Equal(t, map[string]int{"/pages/nulls": 1, "/pages/fine": 1}, b.purged())
	})
}
