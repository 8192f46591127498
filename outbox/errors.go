package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// Error is a database statement of the outbox or a relay that failed. The
// relay goes on; rows it could not record are sent again when their lease
// runs out.
type Error struct {
	// Op says what the statement was for: "claim", "mark delivered",
	// "record failed rows", "renew leases", "prune" or "listen"; "check
	// schema" for a table that New with [WithoutMigrate] finds unfit.
	Op string
	// Table is the outbox table.
	Table string
	// Err is the driver's error.
	Err error
}

// Error names the statement's purpose and the table, and gives the driver's error.
func (e *Error) Error() string {
	return fmt.Sprintf("outbox: %s on table %s: %v", e.Op, e.Table, e.Err)
}

// Unwrap returns Err.
func (e *Error) Unwrap() error { return e.Err }

// RowError reports a row that will not be delivered without an operator: a
// backend refused it for good, its attempts ran out, or it could not be
// decoded. The row stays in the table as dead; [Outbox.Redrive] sends it
// again.
type RowError struct {
	// Table is the outbox table.
	Table string
	// ID is the row's id.
	ID int64
	// Attempts is the number of hand-offs made.
	Attempts int
	// Dead is true when the row was marked dead.
	Dead bool
	// Err says what each failing backend answered.
	Err error
}

// Error names the row, its table and attempts, and what the backends answered.
func (e *RowError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "outbox: row %d of %s failed after %d attempts", e.ID, e.Table, e.Attempts)
	if e.Dead {
		b.WriteString(" and is dead (re-drive it with Outbox.Redrive once the cause is fixed)")
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	return b.String()
}

// Unwrap returns Err.
func (e *RowError) Unwrap() error { return e.Err }

func (o *Outbox) report(ctx context.Context, err error) {
	o.cfg.logger.LogAttrs(ctx, slog.LevelError, "outbox: "+errorKind(err), slog.Any("error", err))
	if o.cfg.onError != nil {
		func() {
			defer func() {
				if v := recover(); v != nil {
					o.cfg.logger.LogAttrs(ctx, slog.LevelError, "outbox: error handler panicked", slog.Any("panic", v))
				}
			}()
			o.cfg.onError(ctx, err)
		}()
	}
}

func errorKind(err error) string {
	var re *RowError
	if errors.As(err, &re) {
		return "row dead"
	}
	return "database statement failed"
}
