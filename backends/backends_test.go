package backends_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends"
)

func TestRequestIsNormalised(t *testing.T) {
	urls := []string{"/b", "", "/a", "/b"}
	r := backends.NewRequest(urls, []string{"t2", "t1", "t2"})
	assert.Equal(t, []string{"/a", "/b"}, r.URLs)
	assert.Equal(t, []string{"t1", "t2"}, r.Tags)
	assert.Equal(t, []string{"/b", "", "/a", "/b"}, urls, "the caller's slice is not modified")
	assert.Equal(t, 4, r.Len())

	m := r.Merge(backends.Request{URLs: []string{"/c", "/a"}})
	assert.Equal(t, []string{"/a", "/b", "/c"}, m.URLs)
	assert.Equal(t, []string{"/a", "/b"}, r.URLs, "Merge leaves its receiver alone")

	assert.True(t, backends.NewRequest(nil, []string{""}).Empty())
	assert.Nil(t, backends.NewRequest([]string{""}, nil).URLs)
}

func TestLimits(t *testing.T) {
	r := backends.NewRequest([]string{"/aa", "/bb"}, []string{"t"})
	for _, tc := range []struct {
		limits backends.Limits
		size   int
		fits   bool
	}{
		{backends.Limits{}, 3 + 3 + 3 + 3 + 1 + 3, true},
		{backends.Limits{MaxObjects: 3}, 16, true},
		{backends.Limits{MaxObjects: 2}, 16, false},
		{backends.Limits{MaxBytes: 16}, 16, true},
		{backends.Limits{MaxBytes: 15}, 16, false},
		{backends.Limits{MaxBytes: 100, Size: func(r backends.Request) int { return 101 }}, 101, false},
		{backends.Limits{MaxURLs: 2}, 16, true},
		{backends.Limits{MaxURLs: 1}, 16, false},
		{backends.Limits{MaxTags: 1}, 16, true},
		{backends.Limits{MaxTags: 1, MaxURLs: 2, OneKind: true}, 16, false},
	} {
		t.Run(fmt.Sprintf("%+v", tc.limits), func(t *testing.T) {
			assert.Equal(t, tc.size, tc.limits.SizeOf(r))
			assert.Equal(t, tc.fits, tc.limits.Fits(r))
		})
	}
}

func TestErrorClassifiers(t *testing.T) {
	base := errors.New("403 Forbidden")
	assert.Nil(t, backends.Permanent(nil))
	assert.Nil(t, backends.RetryAfter(time.Second, nil))

	perm := fmt.Errorf("node 1: %w", backends.Permanent(base))
	assert.True(t, backends.IsPermanent(perm))
	assert.ErrorIs(t, perm, base, "the cause stays reachable")
	assert.False(t, backends.IsPermanent(base))

	retry := fmt.Errorf("akamai: %w", backends.RetryAfter(3*time.Second, base))
	d, ok := backends.RetryDelay(retry)
	require.True(t, ok)
	assert.Equal(t, 3*time.Second, d)
	assert.ErrorIs(t, retry, base)
	_, ok = backends.RetryDelay(base)
	assert.False(t, ok)
}

func TestFunc(t *testing.T) {
	b := backends.Func("custom", func(_ context.Context, r backends.Request) (backends.Result, error) {
		return backends.Result{Objects: r.Len()}, nil
	})
	assert.Equal(t, "custom", b.Name())
	assert.Equal(t, backends.Limits{}, b.Limits())
	res, err := b.Purge(context.Background(), backends.NewRequest([]string{"/x"}, nil))
	require.NoError(t, err)
	assert.Equal(t, 1, res.Objects)
}

func TestPartial(t *testing.T) {
	base := errors.New("2 objects refused")
	failed := backends.NewRequest([]string{"/b"}, []string{"t2"})
	assert.Nil(t, backends.Partial(failed, nil))

	tests := []struct {
		name      string
		err       error
		permanent bool
		delay     time.Duration
	}{
		{"alone", backends.Partial(failed, base), false, 0},
		{"wrapped", fmt.Errorf("cdn: %w", backends.Partial(failed, base)), false, 0},
		{"inside permanent", backends.Permanent(backends.Partial(failed, base)), true, 0},
		{"around permanent", backends.Partial(failed, backends.Permanent(base)), true, 0},
		{"inside retry after", backends.RetryAfter(time.Second, backends.Partial(failed, base)), false, time.Second},
		{"around retry after", backends.Partial(failed, backends.RetryAfter(time.Second, base)), false, time.Second},
		{"joined", errors.Join(errors.New("other"), backends.Partial(failed, base)), false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := backends.FailedObjects(tt.err)
			require.True(t, ok)
			assert.Equal(t, failed, got)
			assert.Equal(t, tt.permanent, backends.IsPermanent(tt.err))
			d, _ := backends.RetryDelay(tt.err)
			assert.Equal(t, tt.delay, d)
			assert.ErrorIs(t, tt.err, base, "the cause stays reachable")
			assert.Contains(t, tt.err.Error(), base.Error())
		})
	}

	assert.Equal(t, base.Error(), backends.Partial(failed, base).Error(), "Partial adds nothing to the message")
	for _, err := range []error{nil, base, backends.Permanent(base), backends.Partial(backends.Request{}, base)} {
		got, ok := backends.FailedObjects(err)
		assert.False(t, ok, "%v", err)
		assert.True(t, got.Empty())
	}
}

func TestRejectedError(t *testing.T) {
	tests := []struct {
		name string
		err  *backends.RejectedError
		want string
	}{
		{
			"named",
			&backends.RejectedError{Backend: "akamai", Rejected: []backends.Rejected{{Object: "https://a.example/x", Reason: "403"}}, Purged: 2},
			`akamai: 1 objects not purged (2 purged): "https://a.example/x": 403`,
		},
		{
			"unnamed",
			&backends.RejectedError{Rejected: []backends.Rejected{{Object: "t", Reason: "bad"}, {Object: "u", Reason: "worse"}}},
			`2 objects not purged (0 purged): "t": bad; "u": worse`,
		},
		{
			"more than five",
			&backends.RejectedError{Backend: "cdn", Rejected: []backends.Rejected{{"a", "r"}, {"b", "r"}, {"c", "r"}, {"d", "r"}, {"e", "r"}, {"f", "r"}, {"g", "r"}}, Purged: 1},
			`cdn: 7 objects not purged (1 purged): "a": r; "b": r; "c": r; "d": r; "e": r; and 2 more`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.err.Error())
			err := backends.Permanent(backends.Partial(backends.NewRequest([]string{"/x"}, nil), fmt.Errorf("wrapped: %w", tt.err)))
			var got *backends.RejectedError
			require.ErrorAs(t, err, &got)
			assert.Same(t, tt.err, got)
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		header string
		want   time.Duration
		ok     bool
	}{
		{"seconds", "7", 7 * time.Second, true},
		{"spaces", " 7 ", 7 * time.Second, true},
		{"zero", "0", 0, true},
		{"date ahead", now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{"date past", now.Add(-time.Minute).Format(http.TimeFormat), -time.Minute, true},
		{"huge", "99999999999999999999999", time.Duration(math.MaxInt64), true},
		{"missing", "", 0, false},
		{"negative", "-5", 0, false},
		{"fraction", "1.5", 0, false},
		{"garbage", "soon", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.header != "" {
				h.Set("Retry-After", tt.header)
			}
			got, ok := backends.ParseRetryAfter(h, now)
			assert.Equal(t, tt.ok, ok)
			assert.Equal(t, tt.want, got)
		})
	}
}
