package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"gorm.io/gorm"
)

// The outbox table. Times are Unix milliseconds (BIGINT) so that every
// driver reads and compares them alike, whatever its time settings:
//
//	id            the row's number, in insertion order
//	created_at    when the row was written
//	state         pending, delivered or dead
//	available_at  pending: when a relay may claim the row (now, the end of
//	              a lease, or the next retry); delivered or dead: when it
//	              settled
//	attempts      hand-offs to the dispatcher so far
//	lease_owner   the relay holding the row, while it holds it
//	urls, tags    the request, as JSON arrays of strings
//	done_backends JSON array of the backends that already accepted it
//	last_error    why the last hand-off failed, if it did
//	trace         the W3C traceparent of the handoff that wrote the row
//	              ("" when it was not traced), so that a relay in another
//	              process links its deliveries to the writing transaction
//
// One index, (state, available_at, id), serves the claim, the pruning of
// delivered rows and the listing of dead ones.

// columns lists every column with its type per dialect, in table order.
// The migration adds any that an older table lacks.
var columns = []struct {
	name                string
	postgres, mysql, sq string
	// optional columns may be missing from a table checked with
	// WithoutMigrate: the outbox works without them, without a feature.
	optional bool
}{
	{"id", "BIGSERIAL PRIMARY KEY", "BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY", "INTEGER PRIMARY KEY AUTOINCREMENT", false},
	{"created_at", "BIGINT NOT NULL DEFAULT 0", "BIGINT NOT NULL DEFAULT 0", "INTEGER NOT NULL DEFAULT 0", false},
	{"state", "VARCHAR(16) NOT NULL DEFAULT 'pending'", "VARCHAR(16) NOT NULL DEFAULT 'pending'", "TEXT NOT NULL DEFAULT 'pending'", false},
	{"available_at", "BIGINT NOT NULL DEFAULT 0", "BIGINT NOT NULL DEFAULT 0", "INTEGER NOT NULL DEFAULT 0", false},
	{"attempts", "INTEGER NOT NULL DEFAULT 0", "INT NOT NULL DEFAULT 0", "INTEGER NOT NULL DEFAULT 0", false},
	{"lease_owner", "VARCHAR(128)", "VARCHAR(128)", "TEXT", false},
	{"urls", "TEXT NOT NULL DEFAULT '[]'", "LONGTEXT NOT NULL", "TEXT NOT NULL DEFAULT '[]'", false},
	{"tags", "TEXT NOT NULL DEFAULT '[]'", "LONGTEXT NOT NULL", "TEXT NOT NULL DEFAULT '[]'", false},
	{"done_backends", "TEXT NOT NULL DEFAULT '[]'", "TEXT NOT NULL", "TEXT NOT NULL DEFAULT '[]'", false},
	{"last_error", "TEXT NOT NULL DEFAULT ''", "TEXT NOT NULL", "TEXT NOT NULL DEFAULT ''", false},
	{"trace", "VARCHAR(64) NOT NULL DEFAULT ''", "VARCHAR(64) NOT NULL DEFAULT ''", "TEXT NOT NULL DEFAULT ''", true},
}

// traceColumn is the column that carries each row's traceparent.
const traceColumn = "trace"

// dialect holds what differs between the databases the outbox supports.
type dialect struct {
	name string // "postgres", "mysql" or "sqlite"
	// skipLocked is true where SELECT ... FOR UPDATE SKIP LOCKED works:
	// PostgreSQL, MySQL 8 and MariaDB 10.6 and later.
	skipLocked bool
}

func dialectOf(db *gorm.DB) (dialect, error) {
	switch n := db.Dialector.Name(); n {
	case "postgres":
		return dialect{name: n, skipLocked: true}, nil
	case "mysql":
		return dialect{name: n}, nil // skipLocked is probed by New
	case "sqlite":
		return dialect{name: n}, nil
	default:
		return dialect{}, fmt.Errorf("outbox: New: database %q is not supported: use PostgreSQL, MySQL/MariaDB or SQLite", n)
	}
}

// quote quotes an identifier that WithTable's rules have checked.
func (d dialect) quote(name string) string {
	if d.name == "mysql" {
		return "`" + name + "`"
	}
	return `"` + name + `"`
}

// ph returns the i-th placeholder (from 1).
func (d dialect) ph(i int) string {
	if d.name == "postgres" {
		return "$" + strconv.Itoa(i)
	}
	return "?"
}

// phs returns n placeholders from the i-th, separated by commas.
func (d dialect) phs(from, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(d.ph(from + i))
	}
	return b.String()
}

func (d dialect) columnType(i int) string {
	switch d.name {
	case "postgres":
		return columns[i].postgres
	case "mysql":
		return columns[i].mysql
	}
	return columns[i].sq
}

// migrate creates the table and its index if they are missing, and adds any
// column an older table lacks.
func migrate(ctx context.Context, db *gorm.DB, d dialect, table string) error {
	m := db.WithContext(ctx).Migrator()
	index := indexName(table)
	if !m.HasTable(table) {
		defs := make([]string, len(columns))
		for i, c := range columns {
			defs[i] = c.name + " " + d.columnType(i)
		}
		stmt := fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (%s)", d.quote(table), strings.Join(defs, ", "))
		if d.name == "mysql" {
			stmt = fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (%s, INDEX %s (state, available_at, id)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
				d.quote(table), strings.Join(defs, ", "), d.quote(index))
		}
		if err := db.WithContext(ctx).Exec(stmt).Error; err != nil {
			return fmt.Errorf("creating table %s: %w", table, err)
		}
	} else {
		for i, c := range columns {
			if m.HasColumn(table, c.name) {
				continue
			}
			typ := d.columnType(i)
			if d.name == "mysql" && strings.HasSuffix(typ, "TEXT NOT NULL") {
				typ = strings.TrimSuffix(typ, " NOT NULL") // MySQL gives TEXT no default
			}
			stmt := fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s %s", d.quote(table), c.name, typ)
			if err := db.WithContext(ctx).Exec(stmt).Error; err != nil {
				return fmt.Errorf("adding column %s to %s: %w", c.name, table, err)
			}
			if typ != d.columnType(i) {
				// The rows already there got NULL: give them the value
				// a new row gets.
				empty := "'[]'"
				if c.name == "last_error" {
					empty = "''"
				}
				stmt := fmt.Sprintf("UPDATE %s SET %s = %s WHERE %s IS NULL", d.quote(table), c.name, empty, c.name)
				if err := db.WithContext(ctx).Exec(stmt).Error; err != nil {
					return fmt.Errorf("filling column %s of %s: %w", c.name, table, err)
				}
			}
		}
	}
	if !m.HasIndex(table, index) {
		stmt := fmt.Sprintf("CREATE INDEX %s ON %s (state, available_at, id)", d.quote(index), d.quote(table))
		if err := db.WithContext(ctx).Exec(stmt).Error; err != nil {
			return fmt.Errorf("creating index %s on %s: %w", index, table, err)
		}
	}
	return nil
}

// checkSchema checks, without changing anything, that the table exists
// with every column the outbox needs ([WithoutMigrate]), and reports
// whether it has the trace column. A missing claim index or trace column is
// only logged.
func checkSchema(ctx context.Context, db *gorm.DB, d dialect, table string, logger *slog.Logger) (hasTrace bool, err error) {
	m := db.WithContext(ctx).Migrator()
	if !m.HasTable(table) {
		return false, &Error{Op: "check schema", Table: table, Err: errors.New("the table does not exist (WithoutMigrate: New creates nothing)")}
	}
	var missing []string
	hasTrace = true
	for i, c := range columns {
		if m.HasColumn(table, c.name) {
			continue
		}
		if c.optional {
			hasTrace = hasTrace && c.name != traceColumn
			logger.WarnContext(ctx, "outbox: a column is missing: deliveries are not linked to the traces of the transactions that wrote the rows",
				"table", table, "column", c.name, "add", fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s %s", d.quote(table), c.name, d.columnType(i)))
			continue
		}
		missing = append(missing, c.name)
	}
	if len(missing) > 0 {
		return false, &Error{Op: "check schema", Table: table, Err: fmt.Errorf(
			"not an outbox table: missing %s %s (WithoutMigrate: New alters nothing)",
			plural(len(missing), "column", "columns"), strings.Join(missing, ", "))}
	}
	if !m.HasIndex(table, indexName(table)) {
		logger.WarnContext(ctx, "outbox: the claim index is missing: claims scan the table",
			"table", table, "index", indexName(table), "columns", "state, available_at, id")
	}
	return hasTrace, nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// indexName is the claim index's name: the table's name plus a suffix,
// since PostgreSQL index names are unique per schema.
func indexName(table string) string { return table + "_claim_idx" }
