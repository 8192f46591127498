package outbox

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// errNoListen means the driver beneath GORM is not pgx, so LISTEN cannot be
// used; the relay polls instead.
var errNoListen = errors.New("the PostgreSQL driver is not pgx (gorm.io/driver/postgres); polling instead")

// listenLoop holds one connection of the pool in LISTEN on the table's
// channel and wakes the claim loop on every notification. When the
// connection breaks it reconnects after a pause; meanwhile the poll goes on.
func (r *Relay) listenLoop() {
	for {
		err := r.listen(r.ctx)
		if r.ctx.Err() != nil {
			return
		}
		if errors.Is(err, errNoListen) {
			r.o.cfg.logger.Warn("outbox: LISTEN unavailable", "table", r.o.table, "error", err)
			return
		}
		r.report(r.ctx, &Error{Op: "listen", Table: r.o.table, Err: err})
		select {
		case <-time.After(time.Second):
		case <-r.ctx.Done():
			return
		}
	}
}

func (r *Relay) listen(ctx context.Context) error {
	conn, err := r.o.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		pc, ok := dc.(interface{ Conn() *pgx.Conn })
		if !ok {
			return errNoListen
		}
		c := pc.Conn()
		if _, err := c.Exec(ctx, "LISTEN "+pgx.Identifier{r.o.channel()}.Sanitize()); err != nil {
			return fmt.Errorf("LISTEN: %w", err)
		}
		// Rows may have been committed before the LISTEN took effect.
		r.signal()
		for {
			if _, err := c.WaitForNotification(ctx); err != nil {
				// The connection still listens: were it pooled again,
				// pgx would buffer every notification on it. Tell
				// database/sql to close it.
				return fmt.Errorf("waiting for notifications: %w (%w)", err, driver.ErrBadConn)
			}
			r.signal()
		}
	})
}
