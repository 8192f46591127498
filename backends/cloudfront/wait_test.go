package cloudfront_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/cloudfront"
	"github.com/gormpurge/gormpurge/backends/cloudfront/cloudfronttest"
	"github.com/gormpurge/gormpurge/dispatcher"
)

// syncBuffer is a bytes.Buffer safe for concurrent use, to read logs.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// reports collects a dispatcher's reports.
type reports struct {
	mu   sync.Mutex
	list []dispatcher.Report
}

func (r *reports) add(rep dispatcher.Report) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.list = append(r.list, rep)
}

func (r *reports) all() []dispatcher.Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]dispatcher.Report(nil), r.list...)
}

// newDispatcher returns a dispatcher of b whose reports go to the result,
// closed at cleanup.
func newDispatcher(t *testing.T, b *cloudfront.Backend, opts ...dispatcher.Option) (*dispatcher.Dispatcher, *reports) {
	t.Helper()
	reps := &reports{}
	d, err := dispatcher.New([]backends.Backend{b}, append([]dispatcher.Option{dispatcher.WithLogger(quiet), dispatcher.WithOnResult(reps.add)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, d.Close(context.Background())) })
	return d, reps
}

// A failed status check while a batch waits for the in-progress limits
// does not fail the batch: the wait goes on. A check refused for good
// (AccessDenied) cannot pin the budget: the invalidation is freed at the
// maximum age, and the missing permission is logged once at Error.
func TestFailedStatusCheckDoesNotDropTheBatch(t *testing.T) {
	tests := []struct {
		name    string
		fail    func(*cloudfronttest.Server)
		maxAge  time.Duration
		errLogs int  // Error records naming cloudfront:GetInvalidation
		freed   bool // the fault frees an invalidation still in progress: CloudFront refuses the next, retried
	}{
		{"503 once", func(s *cloudfronttest.Server) {
			s.FailNextOn(cloudfronttest.OpGetInvalidation, http.StatusServiceUnavailable, 1)
		}, time.Hour, 0, false},
		{"network-like 500s", func(s *cloudfronttest.Server) {
			s.FailNextOn(cloudfronttest.OpGetInvalidation, http.StatusInternalServerError, 3)
		}, time.Hour, 0, false},
		{"NoSuchInvalidation", func(s *cloudfronttest.Server) { s.FailNextOn(cloudfronttest.OpGetInvalidation, http.StatusNotFound, 1) }, time.Hour, 0, true},
		{"AccessDenied for good", func(s *cloudfronttest.Server) {
			s.FailNextCodeOn(cloudfronttest.OpGetInvalidation, http.StatusForbidden, 1_000_000, "AccessDenied", "User is not authorized to perform: cloudfront:GetInvalidation")
		}, 300 * time.Millisecond, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFake(t, cloudfronttest.WithInProgressLimits(2, 15), cloudfronttest.WithCompletionDelay(100*time.Millisecond))
			var logs syncBuffer
			b := newBackend(t, srv, cloudfront.WithInProgressLimits(2, 15), cloudfront.WithWaitPoll(10*time.Millisecond),
				cloudfront.WithMaxInvalidationAge(tt.maxAge), cloudfront.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
			d, reps := newDispatcher(t, b)
			tt.fail(srv)
			for _, urls := range [][]string{{"/a", "/b"}, {"/c", "/d"}, {"/e", "/f"}} {
				require.NoError(t, d.Enqueue(t.Context(), backends.NewRequest(urls, nil)))
				require.NoError(t, d.Flush(t.Context()))
			}
			for _, r := range reps.all() {
				assert.Equal(t, dispatcher.Delivered, r.Outcome, "%v", r.Err)
				if !tt.freed {
					assert.Equal(t, 1, r.Attempts, "waiting is not an attempt")
				}
			}
			assert.ElementsMatch(t, []string{"/a", "/b", "/c", "/d", "/e", "/f"}, srv.Paths(), "each path invalidated once")
			assert.Equal(t, tt.errLogs, strings.Count(logs.String(), "level=ERROR"), logs.String())
			if tt.errLogs > 0 {
				assert.Contains(t, logs.String(), "cloudfront:GetInvalidation")
			}
		})
	}
}

// Pace called on its own reports a failed check as RetryAfter the poll
// interval, never as an error that fails the batch.
func TestPaceFailedCheckIsRetryAfter(t *testing.T) {
	srv := newFake(t, cloudfronttest.WithInProgressLimits(1, 15), cloudfronttest.WithCompletionDelay(time.Hour))
	b := newBackend(t, srv, cloudfront.WithInProgressLimits(1, 15), cloudfront.WithWaitPoll(5*time.Millisecond))
	_, err := b.Purge(t.Context(), backends.Request{URLs: []string{"/1"}})
	require.NoError(t, err)
	srv.FailNextOn(cloudfronttest.OpGetInvalidation, http.StatusServiceUnavailable, 1)
	err = b.Pace(t.Context(), backends.Request{URLs: []string{"/2"}})
	d, ok := backends.RetryDelay(err)
	require.True(t, ok, "%v", err)
	assert.Equal(t, 5*time.Millisecond, d)
	assert.False(t, backends.IsPermanent(err))
}

// A batch larger than the in-progress limits is invalidated chunk by
// chunk across attempts, each chunk once: Purge never waits inside the
// attempt's deadline (here shorter than an invalidation), it returns the
// rest as RetryAfter, and the retry creates only the rest.
func TestLargeBatchesAreInvalidatedOnce(t *testing.T) {
	var urls []string
	for i := range 20 {
		urls = append(urls, fmt.Sprintf("/w%d/*", i))
	}
	for i := range 4000 {
		urls = append(urls, fmt.Sprintf("/p/%d", i))
	}
	srv := newFake(t, cloudfronttest.WithCompletionDelay(300*time.Millisecond))
	b := newBackend(t, srv, cloudfront.WithWaitPoll(20*time.Millisecond))
	d, reps := newDispatcher(t, b, dispatcher.WithAttemptTimeout(100*time.Millisecond))
	require.NoError(t, d.Enqueue(t.Context(), backends.NewRequest(urls, nil)))
	require.NoError(t, d.Flush(t.Context()))
	for _, r := range reps.all() {
		assert.Equal(t, dispatcher.Delivered, r.Outcome, "%v", r.Err)
	}
	assert.ElementsMatch(t, urls, srv.Paths(), "every path invalidated exactly once")
	assert.Empty(t, srv.Ignored())
	paths, wild := srv.MaxInProgress()
	assert.LessOrEqual(t, paths, cloudfront.MaxPathsInProgress)
	assert.LessOrEqual(t, wild, cloudfront.MaxWildcardsInProgress)
	assert.Zero(t, srv.Calls("CreateInvalidation")-len(srv.Invalidations()), "no refused CreateInvalidation")
}

// PurgeAll while the backend's wildcard invalidations fill the limit does
// not wait inside the attempt, nor spend attempts: the dispatcher waits in
// PaceAll until the limit has room, then "/*" is invalidated at the first
// attempt, even when only one is allowed.
func TestPurgeAllWhileWildcardsAreFull(t *testing.T) {
	srv := newFake(t, cloudfronttest.WithCompletionDelay(300*time.Millisecond))
	b := newBackend(t, srv, cloudfront.WithWaitPoll(50*time.Millisecond))
	d, reps := newDispatcher(t, b, dispatcher.WithAttemptTimeout(100*time.Millisecond), dispatcher.WithMaxAttempts(1),
		dispatcher.WithEscalation("cloudfront", dispatcher.Escalation{Above: 50, All: true}))
	var wild []string
	for i := range cloudfront.MaxWildcardsInProgress {
		wild = append(wild, fmt.Sprintf("/w%d/*", i))
	}
	require.NoError(t, d.Enqueue(t.Context(), backends.NewRequest(wild, nil)))
	require.NoError(t, d.Flush(t.Context()))
	_, w := b.InProgress()
	require.Equal(t, cloudfront.MaxWildcardsInProgress, w, "the wildcard budget is full")

	many := make([]string, 100)
	for i := range many {
		many[i] = fmt.Sprintf("/products/%d", i)
	}
	require.NoError(t, d.Enqueue(t.Context(), backends.NewRequest(many, nil)))
	require.NoError(t, d.Flush(t.Context()))
	all := reps.all()
	require.Len(t, all, 2)
	assert.True(t, all[1].All)
	assert.Equal(t, dispatcher.Delivered, all[1].Outcome, "%v", all[1].Err)
	assert.Equal(t, 1, all[1].Attempts, "waiting for room is not an attempt")
	assert.ElementsMatch(t, append(wild, cloudfront.AllPath), srv.Paths(), `"/*" invalidated once`)
}

// Invalidations made by others fill the limits for longer than the
// dispatcher's attempts would last if each refusal were retried after the
// poll interval: the backend backs off in Pace, which is not an attempt,
// and the batch is delivered once they complete.
func TestOthersInvalidationsAreWaitedForInPace(t *testing.T) {
	srv := newFake(t, cloudfronttest.WithInProgressLimits(10, 15), cloudfronttest.WithCompletionDelay(700*time.Millisecond))
	other := newBackend(t, srv)
	urls := make([]string, 10)
	for i := range urls {
		urls[i] = fmt.Sprintf("/other/%d", i)
	}
	_, err := other.Purge(t.Context(), backends.NewRequest(urls, nil))
	require.NoError(t, err)

	b := newBackend(t, srv, cloudfront.WithWaitPoll(10*time.Millisecond))
	d, reps := newDispatcher(t, b, dispatcher.WithBackoff(time.Millisecond, 10*time.Millisecond))
	require.NoError(t, d.Enqueue(t.Context(), backends.NewRequest([]string{"/mine"}, nil)))
	require.NoError(t, d.Flush(t.Context()))
	all := reps.all()
	require.Len(t, all, 1)
	assert.Equal(t, dispatcher.Delivered, all[0].Outcome, "%v", all[0].Err)
	assert.Less(t, all[0].Attempts, dispatcher.DefaultMaxAttempts)
	assert.Contains(t, srv.Paths(), "/mine")
}

// closeCounter is an HTTP client that counts CloseIdleConnections.
type closeCounter struct {
	*http.Client
	closed atomic.Int32
}

func (c *closeCounter) CloseIdleConnections() { c.closed.Add(1) }

// Close leaves alone the HTTP client of the caller's aws.Config, which
// other AWS clients may share.
func TestCloseLeavesTheCallersClient(t *testing.T) {
	srv := newFake(t)
	shared := &closeCounter{Client: srv.Client()}
	cfg := srv.AWSConfig()
	cfg.HTTPClient = shared
	b, err := cloudfront.New(t.Context(), cloudfront.WithDistribution(srv.Distribution()), cloudfront.WithAWSConfig(cfg),
		cloudfront.WithEndpoint(srv.URL()), cloudfront.WithLogger(quiet))
	require.NoError(t, err)
	_, err = b.Purge(t.Context(), backends.Request{URLs: []string{"/a"}})
	require.NoError(t, err)
	require.NoError(t, b.Close(t.Context()))
	assert.Zero(t, shared.closed.Load(), "the caller's client is not closed")
}

// CloudFront's tags have no wildcard: tags ending in "*" do not count
// against the wildcard limit, so 20 of them are one invalidation.
func TestTagsEndingInStarAreNotWildcards(t *testing.T) {
	srv := newFake(t, cloudfronttest.WithCacheTags(), cloudfronttest.WithCompletionDelay(time.Hour))
	b := newBackend(t, srv, cloudfront.WithCacheTags())
	var tags []string
	for i := range 20 {
		tags = append(tags, fmt.Sprintf("t%d*", i))
	}
	_, err := b.Purge(t.Context(), backends.NewRequest(nil, tags))
	require.NoError(t, err)
	assert.Len(t, srv.Invalidations(), 1)
	_, wild := b.InProgress()
	assert.Zero(t, wild)
}

// With AWS_REGION=eu-west-1 and an endpoint, the SDK signs for
// eu-west-1; the fake, like CloudFront, accepts it.
func TestConfiguredRegionIsAccepted(t *testing.T) {
	srv := newFake(t)
	creds := srv.Credentials()
	t.Setenv("AWS_ACCESS_KEY_ID", creds.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", creds.SecretAccessKey)
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_REGION", "eu-west-1")
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	b, err := cloudfront.New(t.Context(), cloudfront.WithDistribution(srv.Distribution()),
		cloudfront.WithEndpoint(srv.URL()), cloudfront.WithHTTPClient(srv.Client()), cloudfront.WithLogger(quiet))
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	_, err = b.Purge(t.Context(), backends.Request{URLs: []string{"/eu"}})
	require.NoError(t, err)
	assert.Equal(t, []string{"/eu"}, srv.Paths())
}
