package dispatcher_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/dispatcher"
	"github.com/gormpurge/gormpurge/purgetest"
)

func TestRateLimits(t *testing.T) {
	t.Parallel()
	t.Run("objects per second caps the batch", func(t *testing.T) {
		t.Parallel()
		a := &fakeBackend{name: "a", limits: backends.Limits{MaxObjects: 100}}
		d := newDispatcher(t, []backends.Backend{a}, dispatcher.WithRateLimit("a", 0, 1000))
		many := make([]string, 2500)
		for i := range many {
			many[i] = fmt.Sprintf("/%d", i)
		}
		require.NoError(t, d.Enqueue(t.Context(), urls(many...)))
		require.NoError(t, d.Flush(t.Context()))
		for _, r := range a.Delivered() {
			assert.LessOrEqual(t, r.Len(), 100, "the backend's own limit is smaller than the burst")
		}
		assert.Equal(t, 2500, a.Union().Len())
	})
	t.Run("requests per second spaces calls", func(t *testing.T) {
		t.Parallel()
		a := &fakeBackend{name: "a", limits: backends.Limits{MaxObjects: 1}}
		b := &fakeBackend{name: "b", limits: backends.Limits{MaxObjects: 1}}
		d := newDispatcher(t, []backends.Backend{a, b}, dispatcher.WithRateLimit("a", 50, 0), dispatcher.WithWorkers(4))
		start := time.Now()
		require.NoError(t, d.Enqueue(t.Context(), urls("/1", "/2", "/3", "/4", "/5")))
		require.NoError(t, d.Flush(t.Context()))
		// Burst 1 at 50/s: the 5th call cannot start before 4 intervals.
		assert.GreaterOrEqual(t, time.Since(start), 4*20*time.Millisecond)
		assert.Len(t, a.Delivered(), 5)
		assert.Len(t, b.Delivered(), 5)
	})
	t.Run("objects per second smaller than backend limit", func(t *testing.T) {
		t.Parallel()
		a := &fakeBackend{name: "a", limits: backends.Limits{MaxObjects: 100}}
		d := newDispatcher(t, []backends.Backend{a}, dispatcher.WithRateLimit("a", 0, 200))
		require.NoError(t, d.Enqueue(t.Context(), urls("/1", "/2", "/3")))
		require.NoError(t, d.Flush(t.Context()))
		require.Len(t, a.Delivered(), 1)
	})
}

func TestLogRecords(t *testing.T) {
	t.Parallel()
	var buf syncBuffer
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a := &fakeBackend{name: "akamai", fn: func(_ context.Context, _ backends.Request, n int) (backends.Result, error) {
		if n == 0 {
			return backends.Result{}, errors.New("503")
		}
		return backends.Result{IDs: map[string]string{"purgeId": "p-9", "supportId": "s-9"}}, nil
	}}
	d := newDispatcher(t, []backends.Backend{a}, dispatcher.WithLogger(logger))
	require.NoError(t, d.Enqueue(t.Context(), urls("/a", "/b")))
	require.NoError(t, d.Flush(t.Context()))

	var records []map[string]any
	for line := range strings.Lines(buf.String()) {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m))
		records = append(records, m)
	}
	require.Len(t, records, 2)
	assert.Equal(t, "WARN", records[0]["level"])
	assert.Equal(t, "retry", records[0]["outcome"])
	assert.Equal(t, "503", records[0]["error"])
	assert.Equal(t, "DEBUG", records[1]["level"], "success is logged only when asked")
	assert.Equal(t, "akamai", records[1]["backend"])
	assert.Equal(t, "delivered", records[1]["outcome"])
	assert.EqualValues(t, 2, records[1]["attempt"])
	assert.EqualValues(t, 2, records[1]["objects"])
	assert.Equal(t, map[string]any{"purgeId": "p-9", "supportId": "s-9"}, records[1]["ids"])
}

func TestNewRejectsInvalidConfiguration(t *testing.T) {
	t.Parallel()
	a := &fakeBackend{name: "a"}
	tests := []struct {
		name string
		bs   []backends.Backend
		opt  dispatcher.Option
		want string
	}{
		{"no backends", nil, nil, "at least one backend"},
		{"nil backend", []backends.Backend{a, nil}, nil, "backend 1 is nil"},
		{"duplicate names", []backends.Backend{a, &fakeBackend{name: "a"}}, nil, `two backends are named "a"`},
		{"workers", nil, dispatcher.WithWorkers(0), "at least 1 worker"},
		{"queue size", nil, dispatcher.WithQueueSize(0), "at least 1 request"},
		{"policy", nil, dispatcher.WithFullPolicy(7), "use Block, DropOldest or Reject"},
		{"linger", nil, dispatcher.WithLinger(-1), "use 0 to send at once"},
		{"attempts", nil, dispatcher.WithMaxAttempts(0), "use 1 to disable retries"},
		{"elapsed", nil, dispatcher.WithMaxElapsed(-1), "use 0 for no bound"},
		{"backoff", nil, dispatcher.WithBackoff(time.Second, time.Millisecond), "0 < initial <= max"},
		{"timeout", nil, dispatcher.WithAttemptTimeout(0), "positive deadline"},
		{"rate unknown backend", nil, dispatcher.WithRateLimit("akamai", 1, 1), `no backend has that name`},
		{"rate negative", nil, dispatcher.WithRateLimit("a", -1, 1), "rates must be positive"},
		{"nil logger", nil, dispatcher.WithLogger(nil), "slog.DiscardHandler"},
		{"nil OnResult", nil, dispatcher.WithOnResult(nil), "WithOnResult(nil): pass a function, or leave the option out"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			bs := tt.bs
			if bs == nil && tt.opt != nil {
				bs = []backends.Backend{a}
			}
			var opts []dispatcher.Option
			if tt.opt != nil {
				opts = append(opts, tt.opt)
			}
			d, err := dispatcher.New(bs, opts...)
			require.Error(t, err)
			assert.Nil(t, d, "nothing started")
			assert.Contains(t, err.Error(), tt.want)
			assert.Contains(t, err.Error(), "dispatcher: invalid configuration")
		})
	}
}

func TestNewRejectsANilOption(t *testing.T) {
	t.Parallel()
	d, err := dispatcher.New([]backends.Backend{&fakeBackend{name: "a"}}, dispatcher.WithWorkers(1), nil)
	require.ErrorContains(t, err, "an Option is nil")
	assert.Nil(t, d, "nothing started")
}

func TestPanickingOnResultHookIsContained(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	rec := purgetest.NewRecorder()
	d := newDispatcher(t, []backends.Backend{rec},
		dispatcher.WithLogger(slog.New(slog.DiscardHandler)),
		dispatcher.WithOnResult(func(dispatcher.Report) {
			calls.Add(1)
			panic("hook bug")
		}))
	require.NoError(t, d.Enqueue(t.Context(), urls("/a")))
	require.NoError(t, d.Flush(t.Context()))
	require.NoError(t, d.Enqueue(t.Context(), urls("/b")))
	require.NoError(t, d.Flush(t.Context()))
	assert.EqualValues(t, 2, calls.Load(), "the worker survived the first panic")
	st, ok := d.Stats().Backend(rec.Name())
	require.True(t, ok)
	assert.Equal(t, uint64(2), st.Delivered)
}
