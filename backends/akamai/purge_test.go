package akamai_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/akamai"
	"github.com/gormpurge/gormpurge/backends/akamai/akamaitest"
	"github.com/gormpurge/gormpurge/dispatcher"
)

// fixture is a fake Fast Purge server, a Backend talking to it and a
// dispatcher delivering to the Backend, with every report kept.
type fixture struct {
	srv  *akamaitest.Server
	b    *akamai.Backend
	d    *dispatcher.Dispatcher
	logs *bytes.Buffer

	mu      sync.Mutex
	reports []dispatcher.Report
}

type fixtureOpts struct {
	server   []akamaitest.Option
	backend  []akamai.Option
	dispatch []dispatcher.Option
}

func newFixture(t *testing.T, o fixtureOpts) *fixture {
	t.Helper()
	f := &fixture{srv: akamaitest.NewServer(o.server...), logs: &bytes.Buffer{}}
	t.Cleanup(f.srv.Close)
	logger := slog.New(slog.NewTextHandler(&lockedWriter{w: f.logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b, err := akamai.New(append([]akamai.Option{
		akamai.WithCredentials(f.srv.Credentials()),
		akamai.WithHTTPClient(f.srv.Client()),
		akamai.WithHostnames("www.example.com"),
		akamai.WithLogger(logger),
	}, o.backend...)...)
	require.NoError(t, err)
	f.b = b
	f.d, err = dispatcher.New([]backends.Backend{b}, append([]dispatcher.Option{
		dispatcher.WithLogger(logger),
		dispatcher.WithBackoff(time.Millisecond, 10*time.Millisecond),
		dispatcher.WithOnResult(func(r dispatcher.Report) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.reports = append(f.reports, r)
		}),
	}, o.dispatch...)...)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		assert.NoError(t, f.d.Close(ctx))
	})
	return f
}

// purge enqueues r and waits until every object has an outcome.
func (f *fixture) purge(t *testing.T, r backends.Request) {
	t.Helper()
	require.NoError(t, f.d.Enqueue(t.Context(), r))
	require.NoError(t, f.d.Flush(t.Context()))
}

func (f *fixture) Reports() []dispatcher.Report {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.reports)
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func TestURLsAndTagsArriveOnceEach(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	f.purge(t, backends.NewRequest(
		[]string{"/posts/1", "http://www.example.com/posts/1", "https://www.example.com/posts/1", "https://www.example.com/tags/go", "/café"},
		[]string{"post-1", "tag-go"}))

	assert.Equal(t, []string{"https://www.example.com/caf%C3%A9", "https://www.example.com/posts/1", "https://www.example.com/tags/go"},
		sorted(f.srv.Objects(akamai.KindURL)), "one URL per page, whatever its scheme or form")
	assert.Equal(t, []string{"post-1", "tag-go"}, sorted(f.srv.Objects(akamai.KindTag)))

	purges := f.srv.Purges()
	require.Len(t, purges, 2, "one request for the URLs, one for the tags")
	for _, p := range purges {
		assert.Equal(t, akamai.Invalidate, p.Action)
		assert.Equal(t, akamai.Production, p.Network)
	}
	reports := f.Reports()
	require.Len(t, reports, 2)
	var ids []string
	for _, r := range reports {
		assert.Equal(t, dispatcher.Delivered, r.Outcome)
		assert.Equal(t, 1, r.Attempts)
		ids = append(ids, r.Result.IDs["purgeId"])
		assert.Equal(t, "5", r.Result.IDs["estimatedSeconds"])
		assert.NotEmpty(t, r.Result.IDs["supportId"])
	}
	assert.ElementsMatch(t, []string{purges[0].PurgeID, purges[1].PurgeID}, ids, "the result carries Akamai's purgeId")
	assert.Contains(t, f.logs.String(), "purgeId="+purges[0].PurgeID, "the logs show the purgeId")
	assert.Equal(t, map[int]int{http.StatusCreated: 2}, f.srv.Responses())
}

func TestNetworkAndAction(t *testing.T) {
	for _, tc := range []struct {
		network akamai.Network
		action  akamai.Action
	}{
		{akamai.Production, akamai.Invalidate},
		{akamai.Production, akamai.Delete},
		{akamai.Staging, akamai.Invalidate},
		{akamai.Staging, akamai.Delete},
	} {
		t.Run(fmt.Sprintf("%s %s", tc.action, tc.network), func(t *testing.T) {
			f := newFixture(t, fixtureOpts{backend: []akamai.Option{akamai.WithNetwork(tc.network), akamai.WithAction(tc.action)}})
			f.purge(t, backends.NewRequest([]string{"/a"}, []string{"t"}))
			purges := f.srv.Purges()
			require.Len(t, purges, 2)
			for _, p := range purges {
				assert.Equal(t, tc.network, p.Network)
				assert.Equal(t, tc.action, p.Action)
			}
		})
	}
}

func TestCPCodes(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	res, err := f.b.PurgeCPCodes(t.Context(), 12345, 98765, 12345)
	require.NoError(t, err)
	assert.Equal(t, []string{"12345", "98765"}, f.srv.Objects(akamai.KindCPCode))
	assert.NotEmpty(t, res.IDs["purgeId"])

	_, err = f.b.PurgeCPCodes(t.Context(), -1)
	var rej *akamai.RejectedError
	require.ErrorAs(t, err, &rej)
	assert.True(t, backends.IsPermanent(err))
}

// A bulk change of 120,000 pages is sent in the fewest requests the body
// limit allows, paced so that Akamai never answers 429. Both sides run on a
// clock 400 times faster than real time, at Akamai's published limits: the
// 550 seconds the URL bucket needs pass in under two seconds.
func TestBulkPurgeUsesFewestRequestsAndNeverHitsTheRateLimit(t *testing.T) {
	clock := akamaitest.NewScaledClock(400)
	f := newFixture(t, fixtureOpts{
		server:   []akamaitest.Option{akamaitest.WithClock(clock)},
		backend:  []akamai.Option{akamai.WithClock(clock)},
		dispatch: []dispatcher.Option{dispatcher.WithWorkers(2)},
	})
	const n = 120_000
	urls := make([]string, n)
	for i := range urls {
		urls[i] = fmt.Sprintf("https://www.example.com/products/%06d", i)
	}
	f.purge(t, backends.NewRequest(urls, nil))

	// Every URL encodes to the same length, so the fewest requests is
	// n divided by how many fit in one 50,000-byte body.
	perObject := len(`"https://www.example.com/products/000000"`) + 1 // with its comma
	perRequest := (akamai.MaxBodyBytes - len(`{"objects":[]}`) + 1) / perObject
	fewest := (n + perRequest - 1) / perRequest

	responses := f.srv.Responses()
	assert.Zero(t, responses[http.StatusTooManyRequests], "no 429")
	assert.Zero(t, responses[http.StatusRequestEntityTooLarge], "no 413")
	assert.Equal(t, fewest, responses[http.StatusCreated], "requests")
	assert.Equal(t, sorted(urls), sorted(f.srv.Objects(akamai.KindURL)), "every URL exactly once")
	for _, p := range f.srv.Purges() {
		assert.LessOrEqual(t, p.BodyBytes, akamai.MaxBodyBytes)
	}
}

func TestTransientFailuresAreRetriedAndDelivered(t *testing.T) {
	for _, status := range []int{http.StatusTooManyRequests, 507, http.StatusInternalServerError, http.StatusServiceUnavailable, http.StatusGatewayTimeout} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			f := newFixture(t, fixtureOpts{})
			f.srv.FailNext(status, 2)
			f.purge(t, backends.NewRequest([]string{"/a", "/b"}, nil))

			assert.Equal(t, []string{"https://www.example.com/a", "https://www.example.com/b"}, sorted(f.srv.Objects(akamai.KindURL)))
			reports := f.Reports()
			require.Len(t, reports, 1)
			assert.Equal(t, dispatcher.Delivered, reports[0].Outcome)
			assert.Equal(t, 3, reports[0].Attempts)
			assert.Equal(t, 2, f.srv.Responses()[status])
		})
	}
}

func TestRateLimitAnswerSetsTheWait(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	f.srv.FailNext(http.StatusTooManyRequests, 1)
	start := time.Now()
	f.purge(t, backends.NewRequest(nil, []string{"t1"}))
	require.Len(t, f.srv.Purges(), 1)
	// The fake says the request bucket refills within one token's time
	// (20 ms at 50/s): the retry waits about that, not the 5 s default nor
	// the test's 10 ms backoff.
	assert.Less(t, time.Since(start), 2*time.Second)
	assert.Contains(t, f.logs.String(), "rate limited")
}

func TestRefusedHostIsNamedAndNotRetriedWhileTheOthersArePurged(t *testing.T) {
	f := newFixture(t, fixtureOpts{server: []akamaitest.Option{akamaitest.WithAuthorizedHosts("www.example.com")}})
	var urls, refused []string
	for i := range 100 {
		urls = append(urls, fmt.Sprintf("/p/%d", i))
	}
	for i := range 30 {
		u := fmt.Sprintf("https://elsewhere.example.net/x/%d", i)
		urls = append(urls, u)
		refused = append(refused, u)
	}
	f.purge(t, backends.NewRequest(urls, nil))

	assert.Len(t, f.srv.Objects(akamai.KindURL), 100, "every authorised URL is purged")
	assert.Equal(t, 1, f.srv.Responses()[http.StatusForbidden], "one 403 refuses the whole host")
	reports := f.Reports()
	require.Len(t, reports, 1)
	r := reports[0]
	assert.Equal(t, dispatcher.Failed, r.Outcome)
	assert.Equal(t, 1, r.Attempts, "a 403 is not retried")
	require.Error(t, r.Err)
	assert.True(t, backends.IsPermanent(r.Err))
	assert.Contains(t, r.Err.Error(), "https://elsewhere.example.net/x/")
	assert.Contains(t, r.Err.Error(), "403")
	var rej *akamai.RejectedError
	require.ErrorAs(t, r.Err, &rej)
	assert.Equal(t, 100, rej.Purged)
	var got []string
	for _, x := range rej.Rejected {
		got = append(got, x.Object)
	}
	assert.ElementsMatch(t, refused, got)

	failed, ok := backends.FailedObjects(r.Err)
	require.True(t, ok, "the error names the objects that failed")
	assert.Equal(t, backends.NewRequest(refused, nil), failed)
	s, _ := f.d.Stats().Backend(f.b.Name())
	assert.Equal(t, uint64(30), s.Failed, "only the refused objects count as failed")
	assert.Equal(t, uint64(100), s.Delivered)
}

// The objects that failed are named as the Request held them, whatever form
// they were sent in.
func TestFailedObjectsAreNamedAsRequested(t *testing.T) {
	f := newFixture(t, fixtureOpts{
		server:  []akamaitest.Option{akamaitest.WithAuthorizedHosts("www.example.com")},
		backend: []akamai.Option{akamai.WithHostnames("www.example.com", "m.example.com")},
	})
	f.purge(t, backends.NewRequest([]string{
		"/a",                             // refused on m.example.com
		"http://www.example.com/a",       // the same page on www only: purged
		"https://www.example.com/b",      // purged
		"HTTP://Elsewhere.Example.NET/x", // refused as https://elsewhere.example.net/x
	}, []string{"good", "a;b"})) // Akamai refuses ";" in a tag

	assert.ElementsMatch(t, []string{"https://www.example.com/a", "https://www.example.com/b"}, f.srv.Objects(akamai.KindURL))
	assert.Equal(t, []string{"good"}, f.srv.Objects(akamai.KindTag))
	var failed backends.Request
	for _, r := range f.Reports() {
		require.Equal(t, dispatcher.Failed, r.Outcome)
		assert.True(t, backends.IsPermanent(r.Err))
		var rej *akamai.RejectedError
		assert.ErrorAs(t, r.Err, &rej)
		objs, ok := backends.FailedObjects(r.Err)
		require.True(t, ok)
		failed = failed.Merge(objs)
	}
	assert.Equal(t, backends.NewRequest(
		[]string{"/a", "http://elsewhere.example.net/x"}, // as the dispatcher handed them over: canonical
		[]string{"a;b"}), failed)
	s, _ := f.d.Stats().Backend(f.b.Name())
	assert.Equal(t, uint64(3), s.Failed)
	assert.Equal(t, uint64(3), s.Delivered)
}

func TestWholeRequestRefusalIsPermanent(t *testing.T) {
	for _, status := range []int{http.StatusBadRequest, http.StatusUnsupportedMediaType} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			f := newFixture(t, fixtureOpts{})
			f.srv.FailNext(status, 1) // an answer that names no object
			f.purge(t, backends.NewRequest([]string{"/a", "/b", "/c"}, nil))

			assert.Empty(t, f.srv.Purges())
			assert.Equal(t, map[int]int{status: 1}, f.srv.Responses(), "one request, not halved, not retried")
			reports := f.Reports()
			require.Len(t, reports, 1)
			assert.Equal(t, dispatcher.Failed, reports[0].Outcome)
			assert.Equal(t, 1, reports[0].Attempts)
			var apiErr *akamai.Error
			require.ErrorAs(t, reports[0].Err, &apiErr)
			assert.Equal(t, status, apiErr.Status)
		})
	}
}

func TestTooLargeSplitsTheBatch(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	f.srv.FailNext(http.StatusRequestEntityTooLarge, 1)
	urls := []string{"/a", "/b", "/c", "/d", "/e"}
	f.purge(t, backends.NewRequest(urls, nil))

	assert.Len(t, f.srv.Objects(akamai.KindURL), len(urls), "every URL once")
	assert.Len(t, f.srv.Purges(), 2, "in two halves")
	reports := f.Reports()
	require.Len(t, reports, 1)
	assert.Equal(t, dispatcher.Delivered, reports[0].Outcome)
	assert.Equal(t, 1, reports[0].Attempts)
}

// Called directly, without a dispatcher in front, the backend refuses what
// has no canonical form, by name and without its secret, and purges the rest.
func TestDirectCallsRefuseWhatHasNoCanonicalForm(t *testing.T) {
	f := newFixture(t, fixtureOpts{backend: []akamai.Option{akamai.WithHostnames("www.example.com")}})
	_, err := f.b.Purge(t.Context(), backends.Request{
		URLs: []string{"/ok", "https://user:s3cr3t@www.example.com/c", "//evil.example/x"},
		Tags: []string{"good", "bad tag"},
	})
	require.Error(t, err)
	assert.True(t, backends.IsPermanent(err))
	assert.NotContains(t, err.Error(), "s3cr3t")
	assert.Equal(t, []string{"https://www.example.com/ok"}, f.srv.Objects(akamai.KindURL))
	assert.Equal(t, []string{"good"}, f.srv.Objects(akamai.KindTag))
}

func TestUnsendableObjectsAreReportedAndTheRestPurged(t *testing.T) {
	f := newFixture(t, fixtureOpts{backend: []akamai.Option{}})
	long := strings.Repeat("t", akamai.MaxTagLength+1)
	f.purge(t, backends.NewRequest(nil, []string{"good", long, "a;b"}))
	assert.Equal(t, []string{"good"}, f.srv.Objects(akamai.KindTag))
	reports := f.Reports()
	require.Len(t, reports, 1)
	var rej *akamai.RejectedError
	require.ErrorAs(t, reports[0].Err, &rej)
	assert.Len(t, rej.Rejected, 2)
	assert.Contains(t, reports[0].Err.Error(), `"a;b"`)
	assert.Zero(t, f.srv.Responses()[http.StatusBadRequest], "Akamai never sees what it would refuse")
}

func TestSecretsStayOutOfLogs(t *testing.T) {
	srv := akamaitest.NewServer()
	t.Cleanup(srv.Close)
	creds := srv.Credentials()
	b, err := akamai.New(akamai.WithCredentials(creds), akamai.WithHTTPClient(srv.Client()))
	require.NoError(t, err)
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	logger.Info("config", "credentials", creds, "backend", b)
	logger.Info("text", "s", fmt.Sprintf("%v %+v %#v %s", b, b, b, creds))
	for _, s := range []string{creds.ClientSecret, creds.ClientToken, creds.AccessToken} {
		assert.NotContains(t, buf.String(), s)
	}
	assert.Contains(t, buf.String(), creds.Host)
}

func TestWrongSecretIsPermanent(t *testing.T) {
	srv := akamaitest.NewServer()
	t.Cleanup(srv.Close)
	creds := srv.Credentials()
	creds.ClientSecret = "not-the-secret"
	b, err := akamai.New(akamai.WithCredentials(creds), akamai.WithHTTPClient(srv.Client()))
	require.NoError(t, err, "New makes no network call")

	_, err = b.Purge(t.Context(), backends.NewRequest([]string{"https://www.example.com/a"}, nil))
	require.Error(t, err)
	assert.True(t, backends.IsPermanent(err))
	var apiErr *akamai.Error
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, http.StatusUnauthorized, apiErr.Status)
	assert.Contains(t, err.Error(), "check the credentials")
	assert.NotContains(t, err.Error(), "not-the-secret")
	assert.Empty(t, srv.Purges())
}

func TestPaceWaitsForTheBucketAndReportsTheWaitUnderADeadline(t *testing.T) {
	srv := akamaitest.NewServer()
	t.Cleanup(srv.Close)
	b, err := akamai.New(akamai.WithCredentials(srv.Credentials()), akamai.WithHTTPClient(srv.Client()),
		akamai.WithRateLimits(akamai.RateLimits{Tags: akamai.Bucket{Burst: 3, PerSecond: 2}}))
	require.NoError(t, err)
	three := backends.NewRequest(nil, []string{"a", "b", "c"})
	require.NoError(t, b.Pace(t.Context(), three), "a full bucket")

	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	err = b.Pace(ctx, three)
	require.ErrorIs(t, err, akamai.ErrRateLimited)
	wait, ok := backends.RetryDelay(err)
	require.True(t, ok)
	assert.LessOrEqual(t, wait, 1500*time.Millisecond*102/100, "three tags at two a second, less a 1% margin")
	assert.Greater(t, wait, time.Second, "three tags at two a second")

	start := time.Now()
	require.NoError(t, b.Pace(t.Context(), backends.NewRequest(nil, []string{"d"})))
	// Half a second for one tag; two if the refused call had taken its three.
	assert.Less(t, time.Since(start), 1900*time.Millisecond, "nothing was taken by the refused call")

	assert.Equal(t, akamai.Bucket{Burst: 5000, PerSecond: 500.0 / 60}, akamai.PublishedRateLimits().Tags)
	assert.True(t, errors.Is(err, akamai.ErrRateLimited))
}

// Akamai forbids ':' in a cache tag; read tags hold one ("posts:42"): the
// backend sends the tag in its Akamai form, the one pages name in their
// Edge-Cache-Tag header (akamai.EdgeCacheTagHeader).
func TestTagsAreSentInTheirAkamaiForm(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	f.purge(t, backends.NewRequest(nil, []string{"posts:42", "posts", "posts:#0a1b2c3d4e5f6a7b"}))
	assert.Equal(t, []string{"posts", "posts.#0a1b2c3d4e5f6a7b", "posts.42"}, sorted(f.srv.Objects(akamai.KindTag)))
	require.NoError(t, akamai.CheckTag("posts:42"))
	value, ok := akamai.EdgeCacheTagHeader().Fits([]string{"posts:42", "tags:7"})
	require.True(t, ok)
	assert.Equal(t, "posts.42,tags.7", value)
}
