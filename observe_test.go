package gormpurge_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/gormpurge/gormpurge"
	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/observe"
	"github.com/gormpurge/gormpurge/observe/observetest"
)

const handoffTraceParent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

type callerKey struct{}

// handoffs returns the Handoffs figure of obs with outcome.
func handoffs(obs *observetest.Recorder, outcome string) float64 {
	v, _ := obs.Value(observe.Handoffs, "", outcome)
	return v
}

// ctxSink records the context each request was handed off with.
type ctxSink struct {
	mu   sync.Mutex
	ctxs []context.Context
	err  error
}

func (s *ctxSink) Enqueue(ctx context.Context, _ backends.Request) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ctxs = append(s.ctxs, ctx)
	return s.err
}

func observedDB(t *testing.T, sink gormpurge.Sink, obs observe.Observer) *gorm.DB {
	t.Helper()
	db := openSQLite(t, &Post{}, &outboxRow{})
	p := gormpurge.New(sink, gormpurge.WithObserver(obs), gormpurge.WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, p.Register(&Post{}))
	require.NoError(t, db.Use(p))
	return db
}

func TestObserverStartsEachHandoffInTheTransactionsContext(t *testing.T) {
	obs := &observetest.Recorder{TraceParent: handoffTraceParent}
	sink := &ctxSink{}
	db := observedDB(t, sink, obs)
	ctx := context.WithValue(context.Background(), callerKey{}, "request-42")
	before := time.Now()
	require.NoError(t, db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		return tx.Create(&Post{Slug: "hello"}).Error
	}))

	recs := obs.Handoffs()
	require.Len(t, recs, 1)
	assert.Equal(t, "request-42", recs[0].Parent.Value(callerKey{}), "the handoff starts in the context of the transaction")
	assert.Equal(t, []string{"/", "/posts/hello"}, recs[0].Handoff.URLs)
	assert.False(t, recs[0].Handoff.InTx)
	require.NotNil(t, recs[0].End)
	assert.Equal(t, observe.HandedOff, recs[0].End.Outcome)

	require.Len(t, sink.ctxs, 1)
	got := sink.ctxs[0]
	i, ok := obs.HandoffFrom(got)
	assert.True(t, ok, "the Sink gets the context StartHandoff returned")
	assert.Equal(t, 0, i)
	org, ok := observe.OriginFromContext(got)
	require.True(t, ok, "the Sink's context carries the handoff's origin")
	assert.Equal(t, handoffTraceParent, org.TraceParent)
	assert.False(t, org.Committed.Before(before))
	assert.Equal(t, 1.0, handoffs(obs, observe.HandedOff))
}

func TestObserverSeesRefusedHandoffs(t *testing.T) {
	obs := &observetest.Recorder{TraceParent: handoffTraceParent}
	db := observedDB(t, &ctxSink{err: errors.New("queue full")}, obs)
	require.NoError(t, db.Create(&Post{Slug: "refused"}).Error, "the write stands")
	recs := obs.Handoffs()
	require.Len(t, recs, 1)
	assert.Equal(t, observe.HandoffFailed, recs[0].End.Outcome)
	assert.ErrorContains(t, recs[0].End.Err, "queue full")
	assert.Equal(t, 1.0, handoffs(obs, observe.HandoffFailed))
	assert.Zero(t, handoffs(obs, observe.HandedOff))
}

func TestObserverSeesRequestsWrittenIntoTheTransaction(t *testing.T) {
	obs := &observetest.Recorder{TraceParent: handoffTraceParent}
	sink := &originTxSink{tableSink: tableSink{kind: "sqlite"}}
	db := observedDB(t, sink, obs)
	require.NoError(t, db.Create(&Post{Slug: "in-tx"}).Error)

	sink.fail = true // the write fails: the request goes to Enqueue after the commit
	require.NoError(t, db.Create(&Post{Slug: "fallback"}).Error)

	recs := obs.Handoffs()
	require.Len(t, recs, 2)
	assert.True(t, recs[0].Handoff.InTx)
	assert.Equal(t, observe.Written, recs[0].End.Outcome)
	assert.True(t, recs[1].Handoff.InTx)
	assert.Equal(t, observe.HandedOff, recs[1].End.Outcome, "one handoff, ended once, by the fallback")
	require.Len(t, sink.origins, 2, "EnqueueTx got the origin, to write it into the row")
	assert.NotEmpty(t, sink.origins[0].TraceParent)
}

// originTxSink is a tableSink that keeps the origin each EnqueueTx got.
type originTxSink struct {
	tableSink
	origins []observe.Origin
}

func (s *originTxSink) EnqueueTx(ctx context.Context, tx gorm.ConnPool, r backends.Request) error {
	o, _ := observe.OriginFromContext(ctx)
	s.mu.Lock()
	s.origins = append(s.origins, o)
	s.mu.Unlock()
	return s.tableSink.EnqueueTx(ctx, tx, r)
}

func TestAPanickingObserverNeverFailsTheWrite(t *testing.T) {
	sink := &ctxSink{}
	db := observedDB(t, sink, &observetest.Recorder{Panic: true})
	require.NoError(t, db.Create(&Post{Slug: "still-purged"}).Error)
	require.Len(t, sink.ctxs, 1, "the request was handed off all the same")
}

func TestWithObserverNilIsRefused(t *testing.T) {
	for _, o := range []observe.Observer{nil, (*observetest.Recorder)(nil)} {
		db := openSQLite(t, &Post{})
		err := db.Use(gormpurge.New(&ctxSink{}, gormpurge.WithObserver(o)))
		require.ErrorContains(t, err, "WithObserver(nil)")
	}
}

func TestObserverSeesSuspendedCommitsAndTheirResume(t *testing.T) {
	obs := &observetest.Recorder{TraceParent: handoffTraceParent}
	sink := &ctxSink{}
	p := gormpurge.New(sink, gormpurge.WithObserver(obs), gormpurge.WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, p.Register(&Post{}))
	db := openSQLite(t, &Post{})
	require.NoError(t, db.Use(p))

	ctx, job := p.Suspend(context.Background())
	for _, slug := range []string{"a", "b"} {
		require.NoError(t, db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			return tx.Create(&Post{Slug: slug}).Error
		}))
	}
	require.NoError(t, job.Resume())

	recs := obs.Handoffs()
	require.Len(t, recs, 3, "two commits held, then one handoff at Resume")
	assert.Equal(t, observe.Suspended, recs[0].End.Outcome)
	assert.Equal(t, observe.Suspended, recs[1].End.Outcome)
	assert.Equal(t, observe.HandedOff, recs[2].End.Outcome)
	assert.Len(t, recs[2].Handoff.URLs, 3, "the merged request")
	assert.Equal(t, 2.0, handoffs(obs, observe.Suspended))
}
