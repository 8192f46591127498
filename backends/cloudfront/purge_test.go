package cloudfront_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/cloudfront"
	"github.com/gormpurge/gormpurge/backends/cloudfront/cloudfronttest"
	"github.com/gormpurge/gormpurge/dispatcher"
)

func TestInvalidationPath(t *testing.T) {
	tests := []struct {
		url, want string
		err       error
	}{
		{"/posts/1", "/posts/1", nil},
		{"https://www.example.com/posts/1", "/posts/1", nil},
		{"http://other.example:8080/posts/1?page=2", "/posts/1?page=2", nil},
		{"https://www.example.com", "/", nil},
		{"/caf\u00e9 au lait", "/caf%C3%A9%20au%20lait", nil},
		{"/images/*", "/images/*", nil},
		{"/search?q=*", "/search?q=*", nil},
		{"/a*b", "", cloudfront.ErrNotInvalidatable},
		{"/" + strings.Repeat("x", cloudfront.MaxPathLength), "", cloudfront.ErrNotInvalidatable},
		{"ftp://example.com/x", "", backends.ErrInvalidURL},
	}
	for _, tt := range tests {
		t.Run(tt.url[:min(len(tt.url), 40)], func(t *testing.T) {
			got, err := cloudfront.InvalidationPath(tt.url)
			if tt.err != nil {
				require.ErrorIs(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

// URLs that share a path are one invalidation path; the invalidation's id
// is reported.
func TestPurgeSendsPathsAndReportsTheInvalidation(t *testing.T) {
	srv := newFake(t)
	b := newBackend(t, srv)
	r := backends.NewRequest([]string{"/posts/1", "https://www.example.com/posts/1", "https://cdn.example.com/posts/2?page=2"}, nil)
	require.NoError(t, b.Pace(t.Context(), r))
	res, err := b.Purge(t.Context(), r)
	require.NoError(t, err)
	invs := srv.Invalidations()
	require.Len(t, invs, 1)
	assert.ElementsMatch(t, []string{"/posts/1", "/posts/2?page=2"}, invs[0].Items)
	assert.Equal(t, invs[0].ID, res.IDs["invalidationId"])
	assert.Equal(t, srv.Distribution(), res.IDs["distribution"])
	assert.Equal(t, 3, res.Objects)
}

// Without WithCacheTags, tags are refused (a distribution without a
// CacheTagConfig would ignore them): Permanent and Partial, naming them,
// while the URLs are invalidated.
func TestTagsAreRefusedByDefault(t *testing.T) {
	srv := newFake(t)
	b := newBackend(t, srv)
	assert.True(t, b.Limits().OneKind, "tags come in batches of their own")
	require.ErrorContains(t, b.CanPurgeTags(), "cloudfront.WithCacheTags()")

	res, err := b.Purge(t.Context(), backends.NewRequest([]string{"/posts/1"}, []string{"post-1", "post-2"}))
	require.Error(t, err)
	assert.True(t, backends.IsPermanent(err))
	failed, ok := backends.FailedObjects(err)
	require.True(t, ok)
	assert.Equal(t, backends.Request{Tags: []string{"post-1", "post-2"}}, failed)
	var refused *cloudfront.RefusedError
	require.ErrorAs(t, err, &refused)
	assert.Equal(t, 1, refused.Invalidated)
	assert.ErrorIs(t, err, cloudfront.ErrNotInvalidatable)
	assert.NotEmpty(t, res.IDs["invalidationId"])
	assert.Equal(t, []string{"/posts/1"}, srv.Paths())

	_, err = dispatcher.New([]backends.Backend{b}, dispatcher.WithEscalation("cloudfront", dispatcher.Escalation{Above: 10, Tags: []string{"site"}}))
	require.ErrorContains(t, err, "cannot purge tags")
}

// With WithCacheTags, tags are "#tag" items; a tag CloudFront cannot name
// is refused alone.
func TestCacheTags(t *testing.T) {
	srv := newFake(t, cloudfronttest.WithCacheTags())
	b := newBackend(t, srv, cloudfront.WithCacheTags())
	require.NoError(t, b.CanPurgeTags())
	assert.False(t, b.Limits().OneKind)

	_, err := b.Purge(t.Context(), backends.NewRequest([]string{"/p"}, []string{"product:tv", "caf\u00e9"}))
	failed, ok := backends.FailedObjects(err)
	require.True(t, ok, "%v", err)
	assert.Equal(t, []string{"caf\u00e9"}, failed.Tags)
	assert.True(t, backends.IsPermanent(err))
	assert.Equal(t, []string{"product:tv"}, srv.Tags())
	assert.ElementsMatch(t, []string{"/p", "#product:tv"}, srv.Invalidations()[0].Items)
}

func TestRefusedObjectsArePartial(t *testing.T) {
	srv := newFake(t)
	b := newBackend(t, srv)
	_, err := b.Purge(t.Context(), backends.Request{URLs: []string{"/a*b", "/ok", "/x?token=s3cret\x00"}})
	failed, ok := backends.FailedObjects(err)
	require.True(t, ok)
	assert.Equal(t, []string{"/a*b", "/x?token=s3cret\x00"}, failed.URLs)
	assert.NotContains(t, err.Error(), "s3cret", "a refused URL's query is redacted")
	assert.Equal(t, []string{"/ok"}, srv.Paths())
}

// 4,000 URLs are more than CloudFront lets be in progress: the backend
// creates 3,000, waits for them to complete (GetInvalidation), and creates
// the rest; nothing fails and the fake never refuses.
func TestInProgressLimitIsWaitedFor(t *testing.T) {
	const n = 4000
	urls := make([]string, n)
	for i := range urls {
		urls[i] = fmt.Sprintf("/posts/%d", i)
	}
	t.Run("Purge", func(t *testing.T) {
		srv := newFake(t, cloudfronttest.WithCompletionDelay(150*time.Millisecond))
		b := newBackend(t, srv)
		req := backends.NewRequest(urls, nil)
		_, err := b.Purge(t.Context(), req)
		require.ErrorIs(t, err, cloudfront.ErrInProgressLimits, "Purge does not wait")
		_, ok := backends.RetryDelay(err)
		assert.True(t, ok, "retry later")
		failed, ok := backends.FailedObjects(err)
		require.True(t, ok)
		assert.Equal(t, n-cloudfront.MaxPathsInProgress, failed.Len(), "the rest is to be retried")
		require.NoError(t, b.Pace(t.Context(), req), "Pace waits")
		res, err := b.Purge(t.Context(), req)
		require.NoError(t, err)
		assert.Equal(t, 2, srv.Calls("CreateInvalidation"))
		assert.Len(t, strings.Split(res.IDs["invalidationId"], ","), 2)
		assert.Positive(t, srv.Calls("GetInvalidation"), "it waited by asking CloudFront")
		assert.Len(t, srv.Paths(), n)
		paths, _ := srv.MaxInProgress()
		assert.LessOrEqual(t, paths, cloudfront.MaxPathsInProgress)
	})
	t.Run("Dispatcher", func(t *testing.T) {
		srv := newFake(t, cloudfronttest.WithCompletionDelay(150*time.Millisecond))
		b := newBackend(t, srv)
		d, err := dispatcher.New([]backends.Backend{b}, dispatcher.WithLogger(quiet), dispatcher.WithWorkers(4))
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, d.Close(context.Background())) })
		require.NoError(t, d.Enqueue(t.Context(), backends.NewRequest(urls, nil)))
		require.NoError(t, d.Flush(t.Context()))
		s, _ := d.Stats().Backend("cloudfront")
		assert.Zero(t, s.Failed, "no batch failed")
		assert.Len(t, srv.Paths(), n)
		assert.Zero(t, srv.Calls("CreateInvalidation")-len(srv.Invalidations()), "no refused CreateInvalidation")
		paths, _ := srv.MaxInProgress()
		assert.LessOrEqual(t, paths, cloudfront.MaxPathsInProgress)
	})
}

// 20 wildcard paths are two invalidations, the second created once the
// first has completed.
func TestWildcardLimitIsWaitedFor(t *testing.T) {
	srv := newFake(t, cloudfronttest.WithCompletionDelay(50*time.Millisecond))
	b := newBackend(t, srv)
	d, reps := newDispatcher(t, b)
	var urls []string
	for c := 'a'; c < 'a'+20; c++ {
		urls = append(urls, "/"+string(c)+"/*")
	}
	require.NoError(t, d.Enqueue(t.Context(), backends.NewRequest(urls, nil)))
	require.NoError(t, d.Flush(t.Context()))
	require.Len(t, reps.all(), 1)
	assert.Equal(t, dispatcher.Delivered, reps.all()[0].Outcome)
	invs := srv.Invalidations()
	require.Len(t, invs, 2)
	assert.Len(t, invs[0].Items, cloudfront.MaxWildcardsInProgress)
	assert.False(t, invs[1].Created.Before(invs[0].Completes), "the second waited for the first")
}

// Invalidations made by someone else fill the limits:
// TooManyInvalidationsInProgress is RetryAfter.
func TestOthersInvalidationsAreRetryAfter(t *testing.T) {
	srv := newFake(t, cloudfronttest.WithInProgressLimits(10, 15), cloudfronttest.WithCompletionDelay(time.Hour))
	other := newBackend(t, srv)
	urls := make([]string, 10)
	for i := range urls {
		urls[i] = fmt.Sprintf("/other/%d", i)
	}
	_, err := other.Purge(t.Context(), backends.NewRequest(urls, nil))
	require.NoError(t, err)

	b := newBackend(t, srv, cloudfront.WithWaitPoll(3*time.Second))
	_, err = b.Purge(t.Context(), backends.Request{URLs: []string{"/mine"}})
	d, ok := backends.RetryDelay(err)
	require.True(t, ok, "%v", err)
	assert.Equal(t, 3*time.Second, d)
	var cfErr *cloudfront.Error
	require.ErrorAs(t, err, &cfErr)
	assert.Equal(t, "TooManyInvalidationsInProgress", cfErr.Code)
	paths, _ := b.InProgress()
	assert.Zero(t, paths, "the refused invalidation holds no budget")
}

// Every CreateInvalidation has a CallerReference of its own, across
// concurrent purges and backends: CloudFront would answer a reused one
// with the earlier invalidation and invalidate nothing.
func TestCallerReferencesAreUnique(t *testing.T) {
	srv := newFake(t, cloudfronttest.WithCompletionDelay(0))
	bs := []*cloudfront.Backend{newBackend(t, srv), newBackend(t, srv)}
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				// the same paths again and again: only the reference differs
				_, err := bs[g%2].Purge(t.Context(), backends.Request{URLs: []string{"/same"}})
				assert.NoError(t, err, "purge %d/%d", g, i)
			}
		}()
	}
	wg.Wait()
	refs := map[string]bool{}
	for _, inv := range srv.Invalidations() {
		assert.False(t, refs[inv.CallerReference], "reference %s reused", inv.CallerReference)
		refs[inv.CallerReference] = true
	}
	assert.Len(t, refs, 16*25)
	assert.Empty(t, srv.Ignored(), "no purge was silently dropped")
}

// A throttled purge waits as long as CloudFront's Retry-After asks, in
// seconds or as an HTTP date, and at least ThrottleWait.
func TestThrottleHonoursRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		name       string
		retryAfter func() string
		min, max   time.Duration
	}{
		{"Seconds", func() string { return "30" }, 30 * time.Second, 30 * time.Second},
		{"HTTPDate", func() string { return time.Now().Add(31 * time.Second).UTC().Format(http.TimeFormat) }, 25 * time.Second, 31 * time.Second},
		{"PastHTTPDate", func() string { return time.Now().Add(-time.Minute).UTC().Format(http.TimeFormat) }, cloudfront.ThrottleWait, cloudfront.ThrottleWait},
		{"Garbage", func() string { return "soon" }, cloudfront.ThrottleWait, cloudfront.ThrottleWait},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFake(t)
			base := srv.Client().Transport
			client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
				resp, err := base.RoundTrip(r)
				if err == nil && resp.StatusCode >= 400 {
					resp.Header.Set("Retry-After", tc.retryAfter())
				}
				return resp, err
			})}
			b := newBackend(t, srv, cloudfront.WithHTTPClient(client))
			srv.FailNextCode(http.StatusBadRequest, 1, "Throttling", "Rate exceeded")
			_, err := b.Purge(t.Context(), backends.Request{URLs: []string{"/x"}})
			d, ok := backends.RetryDelay(err)
			require.True(t, ok, "retry-after: %v", err)
			assert.GreaterOrEqual(t, d, tc.min)
			assert.LessOrEqual(t, d, tc.max)
		})
	}
}

func TestErrorClassification(t *testing.T) {
	type class int
	const (
		temporary class = iota
		permanent
		retryAfter
	)
	tests := []struct {
		name   string
		status int
		code   string
		want   class
	}{
		{"AccessDenied", http.StatusForbidden, "AccessDenied", permanent},
		{"NoSuchDistribution", http.StatusNotFound, "NoSuchDistribution", permanent},
		{"InvalidArgument", http.StatusBadRequest, "InvalidArgument", permanent},
		{"BatchTooLarge", http.StatusRequestEntityTooLarge, "BatchTooLarge", permanent},
		{"Throttling", http.StatusBadRequest, "Throttling", retryAfter},
		{"TooManyInvalidationsInProgress", http.StatusBadRequest, "TooManyInvalidationsInProgress", retryAfter},
		{"429", http.StatusTooManyRequests, "TooManyRequestsException", retryAfter},
		{"InvalidationBatchAlreadyExists", http.StatusConflict, "InvalidationBatchAlreadyExists", temporary},
		{"ServiceUnavailable", http.StatusServiceUnavailable, "ServiceUnavailable", temporary},
		{"InternalError", http.StatusInternalServerError, "InternalError", temporary},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFake(t)
			b := newBackend(t, srv)
			srv.FailNextCode(tt.status, 1, tt.code, "the fake says no")
			_, err := b.Purge(t.Context(), backends.Request{URLs: []string{"/x"}})
			require.Error(t, err)
			var cfErr *cloudfront.Error
			require.ErrorAs(t, err, &cfErr)
			assert.Equal(t, tt.code, cfErr.Code)
			assert.Equal(t, tt.status, cfErr.Status)
			assert.NotEmpty(t, cfErr.RequestID)
			_, delayed := backends.RetryDelay(err)
			assert.Equal(t, tt.want == permanent, backends.IsPermanent(err), "permanent: %v", err)
			assert.Equal(t, tt.want == retryAfter, delayed, "retry-after: %v", err)
			paths, _ := b.InProgress()
			assert.Zero(t, paths, "a failed invalidation holds no budget")
		})
	}
	t.Run("UnknownDistribution", func(t *testing.T) {
		srv := newFake(t)
		b := newBackend(t, srv, cloudfront.WithDistribution("EOTHER"))
		_, err := b.Purge(t.Context(), backends.Request{URLs: []string{"/x"}})
		assert.True(t, backends.IsPermanent(err))
		assert.ErrorContains(t, err, "NoSuchDistribution")
	})
	t.Run("WrongSecret", func(t *testing.T) {
		srv := newFake(t)
		cfg := srv.AWSConfig()
		good := srv.Credentials()
		cfg.Credentials = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: good.AccessKeyID, SecretAccessKey: "wrong-secret-value-1234567890"}, nil
		})
		b := newBackend(t, srv, cloudfront.WithAWSConfig(cfg))
		_, err := b.Purge(t.Context(), backends.Request{URLs: []string{"/x"}})
		assert.True(t, backends.IsPermanent(err))
		assert.ErrorContains(t, err, "SignatureDoesNotMatch")
		assert.NotContains(t, err.Error(), "wrong-secret-value")
		assert.NotContains(t, err.Error(), good.SecretAccessKey)
	})
	t.Run("NoAnswer", func(t *testing.T) {
		srv := newFake(t)
		b := newBackend(t, srv, cloudfront.WithEndpoint("http://127.0.0.1:1"))
		_, err := b.Purge(t.Context(), backends.Request{URLs: []string{"/x"}})
		require.Error(t, err)
		_, delayed := backends.RetryDelay(err)
		assert.False(t, backends.IsPermanent(err) || delayed, "%v", err)
	})
}

// PurgeAll is one invalidation of "/*", and the dispatcher's escalation
// turns a large handoff into it.
func TestPurgeAllAndEscalation(t *testing.T) {
	srv := newFake(t)
	b := newBackend(t, srv)
	require.NoError(t, b.CanPurgeAll())
	d, err := dispatcher.New([]backends.Backend{b}, dispatcher.WithLogger(quiet),
		dispatcher.WithEscalation("cloudfront", dispatcher.Escalation{Above: 100, All: true}))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, d.Close(context.Background())) })

	urls := make([]string, 500)
	for i := range urls {
		urls[i] = fmt.Sprintf("/products/%d", i)
	}
	require.NoError(t, d.Enqueue(t.Context(), backends.NewRequest(urls, nil)))
	require.NoError(t, d.Flush(t.Context()))
	assert.Equal(t, []string{"/*"}, srv.Paths(), "one path billed instead of 500")

	require.NoError(t, d.Enqueue(t.Context(), backends.NewRequest(urls[:3], nil)))
	require.NoError(t, d.Flush(t.Context()))
	assert.Len(t, srv.Paths(), 4, "a small handoff is invalidated path by path")
}

func TestNewRefusesBadOptions(t *testing.T) {
	srv := newFake(t)
	tests := []struct {
		name string
		opts []cloudfront.Option
		want string
	}{
		{"no distribution", []cloudfront.Option{cloudfront.WithAWSConfig(srv.AWSConfig())}, "WithDistribution: no distribution"},
		{"bad distribution", []cloudfront.Option{cloudfront.WithDistribution("e-1/x")}, "WithDistribution"},
		{"nil option", []cloudfront.Option{cloudfront.WithDistribution("E1"), nil}, "an Option is nil"},
		{"endpoint", []cloudfront.Option{cloudfront.WithDistribution("E1"), cloudfront.WithEndpoint("https://key:s3cret@x.example")}, "WithEndpoint"},
		{"poll", []cloudfront.Option{cloudfront.WithDistribution("E1"), cloudfront.WithWaitPoll(0)}, "WithWaitPoll"},
		{"limits", []cloudfront.Option{cloudfront.WithDistribution("E1"), cloudfront.WithInProgressLimits(3001, 15)}, "WithInProgressLimits"},
		{"wildcards", []cloudfront.Option{cloudfront.WithDistribution("E1"), cloudfront.WithInProgressLimits(10, 16)}, "WithInProgressLimits"},
		{"logger", []cloudfront.Option{cloudfront.WithDistribution("E1"), cloudfront.WithLogger(nil)}, "WithLogger"},
		{"client", []cloudfront.Option{cloudfront.WithDistribution("E1"), cloudfront.WithHTTPClient(nil)}, "WithHTTPClient"},
		{"name", []cloudfront.Option{cloudfront.WithDistribution("E1"), cloudfront.WithName(" ")}, "WithName"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := cloudfront.New(t.Context(), tt.opts...)
			assert.Nil(t, b)
			var ce *cloudfront.ConfigError
			require.ErrorAs(t, err, &ce)
			assert.ErrorContains(t, err, tt.want)
			assert.NotContains(t, err.Error(), "s3cret")
		})
	}
}

// Without WithAWSConfig the SDK's default chain is used: here the
// environment's access key.
func TestDefaultCredentialChain(t *testing.T) {
	srv := newFake(t)
	creds := srv.Credentials()
	t.Setenv("AWS_ACCESS_KEY_ID", creds.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", creds.SecretAccessKey)
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	b, err := cloudfront.New(t.Context(), cloudfront.WithDistribution(srv.Distribution()),
		cloudfront.WithEndpoint(srv.URL()), cloudfront.WithHTTPClient(srv.Client()), cloudfront.WithLogger(quiet))
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	_, err = b.Purge(t.Context(), backends.Request{URLs: []string{"/from-env"}})
	require.NoError(t, err)
	assert.Equal(t, []string{"/from-env"}, srv.Paths())
	assert.NotContains(t, fmt.Sprintf("%v %#v %+v", b, b, b.LogValue()), creds.SecretAccessKey)
}

// A purge waiting for the in-progress limits ends with its ctx.
func TestWaitEndsWithContext(t *testing.T) {
	srv := newFake(t, cloudfronttest.WithInProgressLimits(1, 15), cloudfronttest.WithCompletionDelay(time.Hour))
	b := newBackend(t, srv, cloudfront.WithInProgressLimits(1, 15))
	_, err := b.Purge(t.Context(), backends.Request{URLs: []string{"/1"}})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	err = b.Pace(ctx, backends.Request{URLs: []string{"/2"}})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.True(t, errors.Is(err, context.DeadlineExceeded))
	assert.Equal(t, 1, srv.Calls("CreateInvalidation"))
}
