package outbox

import (
	"context"
	"database/sql"
	"log/slog"
	"time"

	"github.com/gormpurge/gormpurge/observe"
)

// Outcomes of the observe.OutboxRows readings besides observe.Delivered.
const (
	outcomeRetried = "retried"
	outcomeDead    = "dead"
)

// statusTimeout bounds the Status query of a collection, whatever its
// context's deadline: an observer must not hang on a database that does
// not answer.
const statusTimeout = 5 * time.Second

// statusWarnEvery is how often at most a relay logs at Warn that its
// Source could not read the table; the other failures are logged at Debug.
const statusWarnEvery = time.Minute

// watch registers the relay's Source with the Outbox's observer, if it has
// one. Relay calls it when the relay starts; the stopped hook calls
// r.unwatch.
func (r *Relay) watch() {
	if obs := r.o.cfg.observer; obs != nil {
		r.unwatch = obs.Watch(r.source)
	}
}

// source is the relay's observe.Source: the table's backlog, read with
// [Outbox.Status] within ctx, and the relay's counters. When the table
// cannot be read, it reports the counters alone.
func (r *Relay) source(ctx context.Context, add func(observe.Reading)) {
	if ctx == nil {
		ctx = context.Background()
	}
	r.readStatus(ctx, add)
	st := r.Stats()
	add(observe.Reading{Metric: observe.OutboxRows, Outcome: observe.Delivered, Value: float64(st.Delivered)})
	add(observe.Reading{Metric: observe.OutboxRows, Outcome: outcomeRetried, Value: float64(st.Retried)})
	add(observe.Reading{Metric: observe.OutboxRows, Outcome: outcomeDead, Value: float64(st.Dead)})
}

// readStatus reports the table's pending and dead rows and the age of the
// oldest pending one, or logs why it could not read them.
func (r *Relay) readStatus(ctx context.Context, add func(observe.Reading)) {
	qctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	st, err := r.o.Status(qctx)
	if err != nil {
		r.statusFailed(ctx, err)
		return
	}
	var age float64
	if !st.OldestPending.IsZero() {
		age = max(time.Since(st.OldestPending).Seconds(), 0)
	}
	// The table's figures count once however many relays read it, and add
	// up across tables; of the ages, an observer keeps one.
	table := tableOwner{r.o.db, r.o.table}
	add(observe.Reading{Metric: observe.OutboxPending, Value: float64(st.Pending), Owner: table})
	add(observe.Reading{Metric: observe.OutboxDead, Value: float64(st.Dead), Owner: table})
	add(observe.Reading{Metric: observe.OutboxOldestPendingAge, Value: age})
}

// tableOwner identifies an outbox table, the Owner of its figures.
type tableOwner struct {
	db    *sql.DB
	table string
}

// statusFailed logs that a collection could not read the table: at Warn
// once per statusWarnEvery, at Debug otherwise, so that an observer
// collecting every few seconds from a database that is down does not
// flood the log.
func (r *Relay) statusFailed(ctx context.Context, err error) {
	level := slog.LevelDebug
	now := time.Now().UnixNano()
	last := r.statusWarned.Load()
	if (last == 0 || now-last >= int64(statusWarnEvery)) && r.statusWarned.CompareAndSwap(last, now) {
		level = slog.LevelWarn
	}
	r.o.cfg.logger.LogAttrs(context.WithoutCancel(ctx), level,
		"outbox: the observer could not read the outbox table; it gets the relay's counters only",
		slog.String("table", r.o.table), slog.Any("error", err))
}
