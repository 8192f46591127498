package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/dispatcher"
	"github.com/gormpurge/gormpurge/internal/testdb"
	"github.com/gormpurge/gormpurge/outbox"
)

// deadRowDB returns the DSN of a fresh database of the given kind whose
// outbox holds one dead row, killed by a backend that refuses it for good,
// and one pending row; and the dead row's id.
func deadRowDB(t *testing.T, kind string) (dsn string, deadID int64) {
	t.Helper()
	dsn = testdb.DSN(t, kind)
	db := testdb.OpenDSN(t, kind, dsn, nil)
	quiet := slog.New(slog.DiscardHandler)
	died := make(chan *outbox.RowError, 1)
	ob, err := outbox.New(db, outbox.WithLogger(quiet), outbox.WithMaxAttempts(1),
		outbox.WithPollInterval(10*time.Millisecond),
		outbox.WithErrorHandler(func(_ context.Context, err error) {
			var re *outbox.RowError
			if errors.As(err, &re) {
				select {
				case died <- re:
				default:
				}
			}
		}))
	require.NoError(t, err)
	refuse := backends.Func("cdn", func(context.Context, backends.Request) (backends.Result, error) {
		return backends.Result{}, backends.Permanent(errors.New("cdn: 403 not authorised for www.example.com"))
	})
	d, err := dispatcher.New([]backends.Backend{refuse}, dispatcher.WithLogger(quiet), dispatcher.WithMaxAttempts(1))
	require.NoError(t, err)
	relay, err := ob.Relay(d)
	require.NoError(t, err)
	require.NoError(t, ob.Enqueue(t.Context(), backends.NewRequest([]string{"https://www.example.com/dead"}, []string{"post-1"})))
	var re *outbox.RowError
	select {
	case re = <-died:
	case <-t.Context().Done():
		t.Fatal("the row did not die")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, relay.Close(ctx))
	require.NoError(t, d.Close(ctx))

	// A pending row, written with no relay running.
	require.NoError(t, ob.Enqueue(t.Context(), backends.NewRequest([]string{"https://www.example.com/pending"}, nil)))
	rows, err := ob.Rows(t.Context(), outbox.Dead, 10)
	require.NoError(t, err)
	require.Len(t, rows, 1)
	require.Contains(t, re.Error(), "not authorised")
	return dsn, rows[0].ID
}

func TestOutbox(t *testing.T) {
	t.Parallel()
	for _, kind := range testdb.Kinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			dsn, id := deadRowDB(t, kind)
			ob := func(args ...string) result {
				t.Helper()
				return gormpurge(t, append(append([]string{"outbox"}, args...), "--driver", kind, "--dsn", dsn)...)
			}

			r := ob("status")
			require.Equal(t, exitOK, r.code, r.stderr)
			assert.Contains(t, r.stdout, fmt.Sprintf("Outbox table gormpurge_outbox (%s):\n  pending    1\n  delivered  0\n  dead       1\n", kind))
			assert.Regexp(t, `Oldest pending row: written \S+, \S+ ago\.`, r.stdout)
			assert.Contains(t, r.stdout, "gormpurge outbox list --state dead")

			r = ob("status", "--fail-on-dead")
			assert.Equal(t, exitFailed, r.code)
			assert.Contains(t, r.stderr, "1 dead row in table gormpurge_outbox")

			r = ob("status", "--json")
			require.Equal(t, exitOK, r.code, r.stderr)
			var st statusJSON
			require.NoError(t, json.Unmarshal([]byte(r.stdout), &st), r.stdout)
			assert.Equal(t, int64(1), st.Dead)
			assert.Equal(t, int64(1), st.Pending)
			assert.Equal(t, kind, st.Driver)
			assert.NotNil(t, st.OldestPending)

			r = ob("list")
			require.Equal(t, exitOK, r.code, r.stderr)
			assert.Regexp(t, fmt.Sprintf(`^#%d dead, written \S+ \(\S+ ago\), died \S+ \(\S+ ago\), 1 attempt, 1 URL and 1 tag\n`, id), r.stdout)
			assert.Contains(t, r.stdout, "  error: ")
			assert.Contains(t, r.stdout, "not authorised")
			assert.Contains(t, r.stdout, "  https://www.example.com/dead\n  tag post-1\n")

			r = ob("list", "--state", "pending", "--json")
			require.Equal(t, exitOK, r.code, r.stderr)
			var rows []rowJSON
			require.NoError(t, json.Unmarshal([]byte(r.stdout), &rows), r.stdout)
			require.Len(t, rows, 1)
			assert.Equal(t, []string{"https://www.example.com/pending"}, rows[0].URLs)

			r = ob("list", "--state", "delivered")
			require.Equal(t, exitOK, r.code, r.stderr)
			assert.Equal(t, "No delivered rows in table gormpurge_outbox.\n", r.stdout)

			// A row that is not dead is not re-driven: exit status 1.
			r = ob("retry-dead", fmt.Sprint(id), "999999")
			assert.Equal(t, exitFailed, r.code)
			assert.Contains(t, r.stdout, "Re-drove 1 dead row of table gormpurge_outbox")
			assert.Contains(t, r.stderr, "1 of the 2 rows named is not a dead row")

			r = ob("retry-dead", "999999")
			assert.Equal(t, exitFailed, r.code)
			assert.Contains(t, r.stdout, "Re-drove 0 dead rows of table gormpurge_outbox")
			assert.Contains(t, r.stderr, "gormpurge: row 999999 is not a dead row (no such row, or not dead)\n")

			r = ob("status", "--json")
			require.Equal(t, exitOK, r.code, r.stderr)
			require.NoError(t, json.Unmarshal([]byte(r.stdout), &st))
			assert.Equal(t, int64(0), st.Dead)
			assert.Equal(t, int64(2), st.Pending)

			r = ob("retry-dead", "--all")
			require.Equal(t, exitOK, r.code, r.stderr)
			assert.Contains(t, r.stdout, "Re-drove 0 dead rows")
		})
	}
}

// The DSN may come from the environment, and the driver from the DSN.
func TestOutboxDSNFromEnvironment(t *testing.T) {
	t.Parallel()
	dsn, _ := deadRowDB(t, "sqlite")
	r := harness{vars: map[string]string{dsnEnv: dsn}}.run(t, "outbox", "retry-dead", "--all", "--json")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.JSONEq(t, `{"table":"gormpurge_outbox","redriven":1}`, r.stdout)
}

// The commands never create the table, nor the SQLite file.
func TestOutboxMissing(t *testing.T) {
	t.Parallel()
	dsn := testdb.DSN(t, "sqlite")
	db := testdb.OpenDSN(t, "sqlite", dsn, nil)
	require.NoError(t, db.Exec("CREATE TABLE unrelated (id INTEGER)").Error)

	r := gormpurge(t, "outbox", "status", "--driver", "sqlite", "--dsn", dsn)
	assert.Equal(t, exitFailed, r.code)
	assert.Contains(t, r.stderr, "the database has no table gormpurge_outbox")
	assert.False(t, db.Migrator().HasTable(outbox.DefaultTable), "status did not create the table")

	r = gormpurge(t, "outbox", "retry-dead", "--all", "--dsn", dsn, "--table", "other_outbox")
	assert.Equal(t, exitFailed, r.code)
	assert.Contains(t, r.stderr, "no table other_outbox")

	// A table that is not an outbox is refused, and left as it was.
	for _, cmd := range [][]string{{"status"}, {"list"}, {"retry-dead", "--all"}} {
		r = gormpurge(t, append(append([]string{"outbox"}, cmd...), "--dsn", dsn, "--table", "unrelated")...)
		assert.Equal(t, exitFailed, r.code, cmd)
		assert.Contains(t, r.stderr, "table unrelated: not an outbox table: missing columns created_at", cmd)
		assert.False(t, db.Migrator().HasColumn("unrelated", "state"), "%v added no column", cmd)
		assert.False(t, db.Migrator().HasIndex("unrelated", "unrelated_claim_idx"), "%v created no index", cmd)
	}

	missing := filepath.Join(t.TempDir(), "missing.db")
	r = gormpurge(t, "outbox", "status", "--dsn", missing)
	assert.Equal(t, exitFailed, r.code)
	assert.Contains(t, r.stderr, "SQLite database")
	_, err := os.Stat(missing)
	assert.ErrorIs(t, err, os.ErrNotExist, "no file was created")
}

func TestGuessDriver(t *testing.T) {
	t.Parallel()
	for dsn, want := range map[string]string{
		"postgres://app@db/app":                          "postgres",
		"postgresql://app@db/app?sslmode=require":        "postgres",
		"host=127.0.0.1 user=postgres dbname=test":       "postgres",
		"root@tcp(127.0.0.1:3306)/test?parseTime=true":   "mysql",
		"app:secret@unix(/run/mysqld/mysqld.sock)/app":   "mysql",
		"file:/var/lib/app/app.db?_busy_timeout=5000":    "sqlite",
		"/var/lib/app/app.sqlite3":                       "sqlite",
		"something else":                                 "",
		"mysql://root@127.0.0.1/test (a URL, not a DSN)": "",
	} {
		assert.Equal(t, want, guessDriver(dsn), dsn)
	}
}

// outbox list says in which order it lists the rows, and keeps it: pending
// rows by when they are due, whenever they were written.
func TestOutboxListOrder(t *testing.T) {
	t.Parallel()
	dsn := testdb.DSN(t, "sqlite")
	db := testdb.OpenDSN(t, "sqlite", dsn, nil)
	ob, err := outbox.New(db, outbox.WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	for _, u := range []string{"https://www.example.com/older", "https://www.example.com/newer"} {
		require.NoError(t, ob.Enqueue(t.Context(), backends.NewRequest([]string{u}, nil)))
	}
	// The older row waits an hour to be retried.
	later := time.Now().Add(time.Hour).UnixMilli()
	require.NoError(t, db.Exec("UPDATE gormpurge_outbox SET available_at = ? WHERE urls LIKE ?", later, "%older%").Error)

	r := gormpurge(t, "outbox", "list", "--state", "pending", "--dsn", dsn)
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Regexp(t, `^#\d+ pending, written \S+ \(\S+ ago\), due now, 0 attempts, 1 URL and 0 tags\n`+
		`  https://www\.example\.com/newer\n\n`+
		`#\d+ pending, written \S+ \(\S+ ago\), due \S+ \(in \S+\), 0 attempts, 1 URL and 0 tags\n`+
		`  https://www\.example\.com/older\n$`, r.stdout)

	r = gormpurge(t, "outbox", "list", "--help")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.NotContains(t, r.stdout, "oldest first")
	assert.Contains(t, r.stdout, "pending\nrows in the order they are due, the earliest first")
}
