package dispatcher_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/dispatcher"
)

// pacedBackend is a fakeBackend that paces itself: Pace waits for delay
// (longer than the dispatcher's attempt timeout in the test) or fails with
// err.
type pacedBackend struct {
	fakeBackend
	delay time.Duration
	err   error

	mu    sync.Mutex
	paced int
}

func (p *pacedBackend) Pace(ctx context.Context, r backends.Request) error {
	p.mu.Lock()
	p.paced++
	p.mu.Unlock()
	if p.err != nil {
		return p.err
	}
	select {
	case <-time.After(p.delay):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func TestPacerWaitIsNotAnAttempt(t *testing.T) {
	t.Parallel()
	b := &pacedBackend{fakeBackend: fakeBackend{name: "paced"}, delay: 100 * time.Millisecond}
	var reports []dispatcher.Report
	var mu sync.Mutex
	d := newDispatcher(t, []backends.Backend{b},
		dispatcher.WithAttemptTimeout(20*time.Millisecond),
		dispatcher.WithOnResult(func(r dispatcher.Report) { mu.Lock(); reports = append(reports, r); mu.Unlock() }))
	require.NoError(t, d.Enqueue(t.Context(), urls("/a")))
	require.NoError(t, d.Flush(t.Context()))

	assert.Len(t, b.Attempts(), 1, "one call to Purge, after the pacing wait that outlasts the attempt timeout")
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, reports, 1)
	assert.Equal(t, dispatcher.Delivered, reports[0].Outcome)
	assert.Equal(t, 1, reports[0].Attempts)
}

func TestPacerRefusalFailsTheBatch(t *testing.T) {
	t.Parallel()
	refused := errors.New("more objects than the bucket holds")
	b := &pacedBackend{fakeBackend: fakeBackend{name: "paced"}, err: refused}
	var got []dispatcher.Report
	var mu sync.Mutex
	d := newDispatcher(t, []backends.Backend{b},
		dispatcher.WithOnResult(func(r dispatcher.Report) { mu.Lock(); got = append(got, r); mu.Unlock() }))
	require.NoError(t, d.Enqueue(t.Context(), urls("/a")))
	require.NoError(t, d.Flush(t.Context()))

	assert.Empty(t, b.Attempts(), "Purge is never called for a batch its backend cannot pace")
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, got, 1)
	assert.Equal(t, dispatcher.Failed, got[0].Outcome)
	assert.ErrorIs(t, got[0].Err, refused)
	assert.Zero(t, got[0].Attempts, "Attempts counts calls to Purge")
	assert.Equal(t, uint64(1), d.Stats().Backends[0].Failed)
}
