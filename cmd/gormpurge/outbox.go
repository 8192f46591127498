package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"gorm.io/driver/mysql"
	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/gormpurge/gormpurge/outbox"
)

// dsnEnv holds the database's DSN when --dsn is not given, so that its
// password stays out of the process list.
const dsnEnv = "GORMPURGE_DSN"

// outboxOptions are the flags shared by the outbox commands.
type outboxOptions struct {
	driver string
	dsn    string
	table  string
	json   bool
}

func newOutboxCmd(a *app) *cobra.Command {
	o := &outboxOptions{}
	cmd := &cobra.Command{
		Use:   "outbox",
		Short: "Inspect the durable purge outbox, and send its dead rows again",
		Long: `Inspect the outbox table that the gormpurge library writes purges into in durable
mode (package outbox), and send its dead rows again once their cause is fixed.

The commands connect to the application's database: --driver sqlite, postgres or
mysql (guessed from the DSN when left out), and --dsn, or the ` + dsnEnv + `
environment variable, which keeps the password out of the process list. They
never create the table: a database without it is an error (exit status 1).`,
		Example: `  export GORMPURGE_DSN='host=db user=app dbname=app sslmode=require'
  gormpurge outbox status
  gormpurge outbox list --state dead
  gormpurge outbox retry-dead 17 18
  gormpurge outbox retry-dead --all`,
		Args: cobra.ArbitraryArgs,
		RunE: noCommand,
	}
	pf := cmd.PersistentFlags()
	pf.SortFlags = false
	pf.StringVar(&o.driver, "driver", "", "the database `DRIVER`: sqlite, postgres or mysql (MariaDB too); guessed from the DSN when left out")
	pf.StringVar(&o.dsn, "dsn", "", "the database's data source `DSN`, as the gorm driver takes it; default $"+dsnEnv)
	pf.StringVar(&o.table, "table", outbox.DefaultTable, "the outbox `TABLE`, as given to outbox.WithTable")
	pf.BoolVar(&o.json, "json", false, "print JSON")
	group(pf, "Database", "driver", "dsn", "table")
	group(pf, "Output", "json")
	cmd.AddCommand(newOutboxStatusCmd(a, o), newOutboxListCmd(a, o), newOutboxRetryCmd(a, o))
	return cmd
}

func newOutboxStatusCmd(a *app, o *outboxOptions) *cobra.Command {
	var failOnDead bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Count the outbox rows by state, with the age of the oldest pending one",
		Long: `Count the outbox rows by state: pending (with those a relay holds, and those
waiting to retry), delivered (kept for the retention time) and dead; and say how
old the oldest pending row is. A growing age means the relays do not keep up, or
do not run.`,
		Example: `  gormpurge outbox status --driver postgres --dsn "$DATABASE_URL"
  gormpurge outbox status --json --fail-on-dead   # for a health check`,
		Args: noArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			return a.withOutbox(cmd.Context(), o, func(ob *outbox.Outbox, driver string) error {
				st, err := ob.Status(cmd.Context())
				if err != nil {
					return err
				}
				if err := writeStatus(a.stdout, formatOf(o.json), ob.Table(), driver, st, time.Now()); err != nil {
					return err
				}
				if failOnDead && st.Dead > 0 {
					return failedf("%s in table %s", countOf(int(st.Dead), "dead row", "dead rows"), ob.Table())
				}
				return nil
			})
		}),
	}
	cmd.Flags().BoolVar(&failOnDead, "fail-on-dead", false, "exit with status 1 when there are dead rows, for a health check")
	group(cmd.Flags(), "Output", "fail-on-dead")
	return cmd
}

func newOutboxListCmd(a *app, o *outboxOptions) *cobra.Command {
	var (
		state string
		limit int
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List outbox rows in one state, the earliest due or settled first, with why they failed",
		Long: `List the outbox rows in one state (dead by default): when each was written, when
it died or was delivered (or, pending, when a relay may next take it), how often
it was handed to the dispatcher, which backends already took it, what it purges,
and the last error, which says why a dead row died.

Dead and delivered rows come in the order they died or were delivered, pending
rows in the order they are due, the earliest first ("available" in --json); rows
alike in that come by ID.`,
		Example: `  gormpurge outbox list                    # the dead rows
  gormpurge outbox list --state pending --limit 10
  gormpurge outbox list --json | jq '.[].lastError'`,
		Args: noArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			st := outbox.State(strings.ToLower(state))
			if st != outbox.Pending && st != outbox.Delivered && st != outbox.Dead {
				return usageErrorf("--state %q: use dead, pending or delivered", state)
			}
			if limit < 1 {
				return usageErrorf("--limit %d: need at least 1", limit)
			}
			return a.withOutbox(cmd.Context(), o, func(ob *outbox.Outbox, _ string) error {
				rows, err := ob.Rows(cmd.Context(), st, limit)
				if err != nil {
					return err
				}
				return writeRows(a.stdout, formatOf(o.json), ob.Table(), st, rows, time.Now())
			})
		}),
	}
	cmd.Flags().SortFlags = false
	cmd.Flags().StringVar(&state, "state", string(outbox.Dead), "the rows' `STATE`: dead, pending or delivered")
	cmd.Flags().IntVar(&limit, "limit", 100, "list at most `N` rows")
	group(cmd.Flags(), "Rows", "state", "limit")
	return cmd
}

func newOutboxRetryCmd(a *app, o *outboxOptions) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "retry-dead (ID... | --all)",
		Short: "Make dead rows pending again, so that the relays send them",
		Long: `Make the dead rows named by ID (or every dead row, with --all) pending again, with
their attempts reset: the relays send them at once to the backends that have not
taken them yet. Do it once the cause (credentials, an ACL, an outage) is fixed;
'gormpurge outbox list' shows the dead rows and why they died.

Exit status 1 when a row named is not a dead row (no such row, or not dead).`,
		Example: `  gormpurge outbox retry-dead 17 18
  gormpurge outbox retry-dead --all`,
		Args: func(cmd *cobra.Command, args []string) error {
			switch {
			case all && len(args) > 0:
				return usageErrorf("give row IDs or --all, not both")
			case !all && len(args) == 0:
				return usageErrorf("name the dead rows' IDs, or pass --all to send every dead row again")
			}
			return nil
		},
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			var ids []int64
			for _, s := range args {
				id, err := strconv.ParseInt(s, 10, 64)
				if err != nil || id <= 0 {
					return usageErrorf("row ID %q: want a positive number, as 'gormpurge outbox list' shows", s)
				}
				if !slices.Contains(ids, id) {
					ids = append(ids, id)
				}
			}
			return a.withOutbox(cmd.Context(), o, func(ob *outbox.Outbox, _ string) error {
				n, err := ob.Redrive(cmd.Context(), ids...)
				if err != nil {
					return err
				}
				if o.json {
					if err := json.NewEncoder(a.stdout).Encode(map[string]any{"table": ob.Table(), "redriven": n}); err != nil {
						return err
					}
				} else {
					fmt.Fprintf(a.stdout, "Re-drove %s of table %s: the relays send %s again now.\n",
						countOf(int(n), "dead row", "dead rows"), ob.Table(), plural(int(n), "it", "them"))
				}
				switch missing := int64(len(ids)) - n; {
				case len(ids) == 0 || missing <= 0:
				case len(ids) == 1:
					return failedf("row %d is not a dead row (no such row, or not dead)", ids[0])
				default:
					return failedf("%d of the %d rows named %s (no such row, or not dead)",
						missing, len(ids), plural(int(missing), "is not a dead row", "are not dead rows"))
				}
				return nil
			})
		}),
	}
	cmd.Flags().BoolVar(&all, "all", false, "send every dead row again")
	group(cmd.Flags(), "Rows", "all")
	return cmd
}

// noArgs refuses arguments, as a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErrorf("%s takes no arguments, got %q", cmd.CommandPath(), args)
	}
	return nil
}

// tableName is what outbox.WithTable accepts.
var tableName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,47}$`)

// withOutbox opens the outbox the flags name, calls fn with it and the
// driver's name, and closes the database.
func (a *app) withOutbox(ctx context.Context, o *outboxOptions, fn func(ob *outbox.Outbox, driver string) error) error {
	if !tableName.MatchString(o.table) {
		return usageErrorf("--table %q: want letters, digits and underscores, at most 48, not starting with a digit", o.table)
	}
	dsn := o.dsn
	if dsn == "" {
		dsn = a.variable(dsnEnv)
	}
	if dsn == "" {
		return usageErrorf("no database: pass --dsn, or set %s", dsnEnv)
	}
	driver := strings.ToLower(o.driver)
	if driver == "" {
		driver = guessDriver(dsn)
		if driver == "" {
			return usageErrorf("cannot tell the database from the DSN: pass --driver sqlite, postgres or mysql")
		}
	}
	var dialector gorm.Dialector
	switch driver {
	case "sqlite", "sqlite3":
		driver = "sqlite"
		if p := sqlitePath(dsn); p != "" {
			// The driver would create a missing file: say it is missing.
			if _, err := os.Stat(p); err != nil {
				return failedf("SQLite database: %v", err)
			}
		}
		dialector = sqlite.Open(dsn)
	case "postgres", "postgresql", "pgx":
		driver = "postgres"
		dialector = postgres.Open(dsn)
	case "mysql", "mariadb":
		driver = "mysql"
		dialector = mysql.Open(dsn)
	default:
		return usageErrorf("--driver %q: use sqlite, postgres or mysql", o.driver)
	}

	gormLogger := logger.Discard
	if a.verbose {
		gormLogger = logger.New(log.New(a.stderr, "", log.LstdFlags), logger.Config{LogLevel: logger.Info})
	}
	db, err := gorm.Open(dialector, &gorm.Config{Logger: gormLogger})
	if err != nil {
		return failedf("opening the %s database: %v", driver, err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return failedf("opening the %s database: %v", driver, err)
	}
	defer sqlDB.Close()
	if err := sqlDB.PingContext(ctx); err != nil {
		return failedf("reaching the %s database: %v", driver, err)
	}
	if !db.WithContext(ctx).Migrator().HasTable(o.table) {
		return failedf("the database has no table %s: check --table and the database (the application creates the table with outbox.New)", o.table)
	}
	// The commands read and update rows; the schema is the application's.
	ob, err := outbox.NewContext(ctx, db, outbox.WithTable(o.table), outbox.WithLogger(a.logger), outbox.WithoutMigrate())
	if err != nil {
		return failedf("%v", err)
	}
	return fn(ob, driver)
}

// guessDriver returns the driver a DSN is for, or "".
func guessDriver(dsn string) string {
	lower := strings.ToLower(dsn)
	switch {
	case strings.HasPrefix(lower, "postgres://"), strings.HasPrefix(lower, "postgresql://"):
		return "postgres"
	case strings.HasPrefix(lower, "mysql://"):
		return "" // not a DSN the mysql driver takes
	case strings.Contains(dsn, "@tcp("), strings.Contains(dsn, "@unix("), strings.HasPrefix(dsn, "@/"), strings.Contains(dsn, "@/"):
		return "mysql"
	case strings.HasPrefix(lower, "file:"), strings.HasSuffix(lower, ".db"), strings.HasSuffix(lower, ".sqlite"),
		strings.HasSuffix(lower, ".sqlite3"):
		return "sqlite"
	case strings.Contains(lower, "host=") || strings.Contains(lower, "dbname="):
		return "postgres"
	}
	return ""
}

// sqlitePath returns the file a SQLite DSN opens, or "" for an in-memory
// database.
func sqlitePath(dsn string) string {
	p := strings.TrimPrefix(dsn, "file:")
	if i := strings.IndexByte(p, '?'); i >= 0 {
		if strings.Contains(p[i:], "mode=memory") {
			return ""
		}
		p = p[:i]
	}
	if p == ":memory:" || p == "" {
		return ""
	}
	return p
}

// statusJSON is the JSON form of an outbox status.
type statusJSON struct {
	Table                   string     `json:"table"`
	Driver                  string     `json:"driver"`
	Pending                 int64      `json:"pending"`
	Held                    int64      `json:"held"`
	Retrying                int64      `json:"retrying"`
	Delivered               int64      `json:"delivered"`
	Dead                    int64      `json:"dead"`
	OldestPending           *time.Time `json:"oldestPending,omitempty"`
	OldestPendingAgeSeconds float64    `json:"oldestPendingAgeSeconds,omitempty"`
}

func writeStatus(w io.Writer, f outputFormat, table, driver string, st outbox.Status, now time.Time) error {
	if f == jsonOutput {
		out := statusJSON{Table: table, Driver: driver, Pending: st.Pending, Held: st.Held, Retrying: st.Retrying,
			Delivered: st.Delivered, Dead: st.Dead}
		if !st.OldestPending.IsZero() {
			t := st.OldestPending.UTC()
			out.OldestPending = &t
			out.OldestPendingAgeSeconds = now.Sub(st.OldestPending).Seconds()
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Outbox table %s (%s):\n", table, driver)
	fmt.Fprintf(&b, "  pending    %d", st.Pending)
	if st.Held > 0 || st.Retrying > 0 {
		fmt.Fprintf(&b, " (%d held by a relay, %d waiting to retry)", st.Held, st.Retrying)
	}
	fmt.Fprintf(&b, "\n  delivered  %d\n  dead       %d\n", st.Delivered, st.Dead)
	if !st.OldestPending.IsZero() {
		fmt.Fprintf(&b, "Oldest pending row: written %s, %s ago.\n",
			st.OldestPending.UTC().Format(time.RFC3339), age(now.Sub(st.OldestPending)))
	}
	if st.Dead > 0 {
		b.WriteString("See why the dead rows died with 'gormpurge outbox list --state dead', and send them again\n" +
			"with 'gormpurge outbox retry-dead' once the cause is fixed.\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// age rounds d for display.
func age(d time.Duration) time.Duration {
	switch {
	case d >= time.Hour:
		return d.Round(time.Minute)
	case d >= time.Minute:
		return d.Round(time.Second)
	default:
		return d.Round(time.Millisecond)
	}
}

// rowJSON is the JSON form of an outbox row.
type rowJSON struct {
	ID           int64     `json:"id"`
	State        string    `json:"state"`
	Created      time.Time `json:"created"`
	Available    time.Time `json:"available"`
	Attempts     int       `json:"attempts"`
	LeaseOwner   string    `json:"leaseOwner,omitempty"`
	URLs         []string  `json:"urls,omitempty"`
	Tags         []string  `json:"tags,omitempty"`
	DoneBackends []string  `json:"doneBackends,omitempty"`
	LastError    string    `json:"lastError,omitempty"`
}

// rowObjects is how many objects the text listing shows per row.
const rowObjects = 5

func writeRows(w io.Writer, f outputFormat, table string, state outbox.State, rows []outbox.Row, now time.Time) error {
	if f == jsonOutput {
		out := make([]rowJSON, len(rows))
		for i, r := range rows {
			out[i] = rowJSON{ID: r.ID, State: string(r.State), Created: r.Created.UTC(), Available: r.Available.UTC(),
				Attempts: r.Attempts, LeaseOwner: r.LeaseOwner, URLs: r.Request.URLs, Tags: r.Request.Tags,
				DoneBackends: r.DoneBackends, LastError: r.LastError}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(out)
	}
	var b strings.Builder
	if len(rows) == 0 {
		fmt.Fprintf(&b, "No %s rows in table %s.\n", state, table)
	}
	for i, r := range rows {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "#%d %s, written %s (%s ago), %s, %s, %s and %s",
			r.ID, r.State, r.Created.UTC().Format(time.RFC3339), age(now.Sub(r.Created)), availability(r, now),
			countOf(r.Attempts, "attempt", "attempts"),
			countOf(len(r.Request.URLs), "URL", "URLs"),
			countOf(len(r.Request.Tags), "tag", "tags"))
		if len(r.DoneBackends) > 0 {
			fmt.Fprintf(&b, "; taken by %s", strings.Join(r.DoneBackends, ", "))
		}
		b.WriteString("\n")
		if r.LastError != "" {
			fmt.Fprintf(&b, "  error: %s\n", r.LastError)
		}
		objs := slices.Concat(r.Request.URLs, prefixed("tag ", r.Request.Tags))
		for j, s := range objs {
			if j == rowObjects {
				fmt.Fprintf(&b, "  ... and %d more (--json lists every one)\n", len(objs)-j)
				break
			}
			fmt.Fprintf(&b, "  %s\n", s)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// availability says when row r died or was delivered, or, pending, when a
// relay may next take it: what the rows are listed by.
func availability(r outbox.Row, now time.Time) string {
	at := r.Available.UTC().Format(time.RFC3339)
	switch {
	case r.State == outbox.Dead:
		return fmt.Sprintf("died %s (%s ago)", at, age(now.Sub(r.Available)))
	case r.State == outbox.Delivered:
		return fmt.Sprintf("delivered %s (%s ago)", at, age(now.Sub(r.Available)))
	case r.Available.After(now):
		return fmt.Sprintf("due %s (in %s)", at, age(r.Available.Sub(now)))
	}
	return "due now"
}

// prefixed returns each of ss with p before it.
func prefixed(p string, ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = p + s
	}
	return out
}
