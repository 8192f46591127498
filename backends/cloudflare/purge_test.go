package cloudflare_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/cloudflare"
	"github.com/gormpurge/gormpurge/backends/cloudflare/cloudflaretest"
)

func newServer(t *testing.T, opts ...cloudflaretest.Option) *cloudflaretest.Server {
	t.Helper()
	srv := cloudflaretest.NewServer(append([]cloudflaretest.Option{cloudflaretest.WithBucket(1000, 1000)}, opts...)...)
	t.Cleanup(srv.Close)
	return srv
}

func newBackend(t *testing.T, srv *cloudflaretest.Server, opts ...cloudflare.Option) *cloudflare.Backend {
	t.Helper()
	b, err := cloudflare.New(append([]cloudflare.Option{
		cloudflare.WithEndpoint(srv.Endpoint()),
		cloudflare.WithZone(srv.Zone()),
		cloudflare.WithAPIToken(srv.Token()),
		cloudflare.WithHTTPClient(srv.Client()),
		cloudflare.WithHostnames(site),
		cloudflare.WithRate(1000, 1000),
		cloudflare.WithLogger(slog.New(slog.DiscardHandler)),
	}, opts...)...)
	require.NoError(t, err)
	return b
}

// purge paces and purges r, as the dispatcher does.
func purge(t *testing.T, b *cloudflare.Backend, r backends.Request) (backends.Result, error) {
	t.Helper()
	if err := b.Pace(t.Context(), r); err != nil {
		return backends.Result{}, err
	}
	return b.Purge(t.Context(), r)
}

func paths(n int, f string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf(f, i)
	}
	return out
}

func TestBatching(t *testing.T) {
	for _, c := range []struct {
		name      string
		opts      []cloudflare.Option
		srvOpts   []cloudflaretest.Option
		urls      int
		tags      int
		hosts     []string
		wantSizes []int
	}{
		{name: "at the limit", urls: 100, wantSizes: []int{100}},
		{name: "one over", urls: 101, wantSizes: []int{100, 1}},
		{name: "tags at the limit", tags: 100, wantSizes: []int{100}},
		{name: "URLs and tags apart", urls: 3, tags: 2, wantSizes: []int{3, 2}},
		{name: "paths on three hosts", urls: 60, hosts: []string{"a.example", "b.example"}, wantSizes: []int{100, 80}},
		{name: "smaller limit", urls: 70, opts: []cloudflare.Option{cloudflare.WithMaxItems(30)}, wantSizes: []int{30, 30, 10}},
		{name: "Enterprise URLs", urls: 1200, tags: 150,
			opts:      []cloudflare.Option{cloudflare.WithPlan(cloudflare.Enterprise), cloudflare.WithMaxItems(500)},
			srvOpts:   []cloudflaretest.Option{cloudflaretest.WithMaxFiles(500)},
			wantSizes: []int{500, 500, 200, 100, 50}},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := newServer(t, c.srvOpts...)
			opts := c.opts
			if c.hosts != nil {
				opts = append(opts, cloudflare.WithHostnames(c.hosts...))
			}
			b := newBackend(t, srv, opts...)
			r := backends.NewRequest(paths(c.urls, "/p/%04d"), paths(c.tags, "t-%04d"))
			res, err := purge(t, b, r)
			require.NoError(t, err)
			var sizes []int
			for _, p := range srv.Purges() {
				sizes = append(sizes, len(p.Files)+len(p.Tags))
				assert.True(t, len(p.Files) == 0 || len(p.Tags) == 0, "one kind a request")
			}
			assert.Equal(t, c.wantSizes, sizes)
			assert.Len(t, strings.Split(res.IDs["purgeId"], ","), len(c.wantSizes), "one purge id per request")
			assert.Equal(t, r.Len(), res.Objects)
		})
	}
}

func TestPurgeIDAndURLForms(t *testing.T) {
	srv := newServer(t)
	b := newBackend(t, srv)
	res, err := purge(t, b, backends.NewRequest([]string{"/caf\u00e9", "/a", "HTTP://WWW.Example.com:80/b", "https://www.example.com/a"}, nil))
	require.NoError(t, err)
	assert.Equal(t, []string{"https://www.example.com/a", "https://www.example.com/caf%C3%A9", "http://www.example.com/b"}, srv.Files(),
		"canonical, absolute, once each")
	require.Len(t, srv.Purges(), 1)
	assert.Equal(t, srv.Purges()[0].ID, res.IDs["purgeId"])
	assert.Equal(t, "cloudflare", res.Backend)
}

func TestClassification(t *testing.T) {
	type want struct {
		permanent bool
		retry     bool
		partial   []string // failed URLs
		codes     []int
	}
	for _, c := range []struct {
		name    string
		setup   func(srv *cloudflaretest.Server) []cloudflare.Option
		urls    []string
		tags    []string
		want    want
		errText string
	}{
		{name: "503 is temporary", setup: func(s *cloudflaretest.Server) []cloudflare.Option { s.FailNext(503, 1); return nil },
			want: want{codes: []int{10002}}},
		{name: "500 is temporary", setup: func(s *cloudflaretest.Server) []cloudflare.Option { s.FailNext(500, 1); return nil },
			want: want{codes: []int{10002}}},
		{name: "429 is retry-after", setup: func(s *cloudflaretest.Server) []cloudflare.Option { s.FailNext(429, 1); return nil },
			want: want{retry: true, codes: []int{971}}, errText: "rate limit"},
		{name: "a bad token is permanent", setup: func(*cloudflaretest.Server) []cloudflare.Option {
			return []cloudflare.Option{cloudflare.WithAPIToken("wrong")}
		}, want: want{permanent: true, codes: []int{10000}}, errText: "Cache Purge"},
		{name: "an unknown zone is permanent", setup: func(*cloudflaretest.Server) []cloudflare.Option {
			return []cloudflare.Option{cloudflare.WithZone(strings.Repeat("f", 32))}
		}, want: want{permanent: true, codes: []int{7003}}, errText: "WithZone (the zone's ID"},
		{name: "tags on a zone without them", setup: func(*cloudflaretest.Server) []cloudflare.Option { return nil },
			tags: []string{"t"}, want: want{permanent: true, codes: []int{1107}}, errText: "cannot purge by tag"},
		{name: "a refused URL fails alone", setup: func(s *cloudflaretest.Server) []cloudflare.Option {
			s.RefuseURLs("https://www.example.com/refused")
			return nil
		}, urls: []string{"/refused", "/kept"}, want: want{permanent: true, partial: []string{"/refused"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var srvOpts []cloudflaretest.Option
			if c.tags != nil {
				srvOpts = append(srvOpts, cloudflaretest.WithoutTags())
			}
			srv := newServer(t, srvOpts...)
			b := newBackend(t, srv, c.setup(srv)...)
			urls := c.urls
			if urls == nil && c.tags == nil {
				urls = []string{"/a"}
			}
			_, err := purge(t, b, backends.NewRequest(urls, c.tags))
			require.Error(t, err)
			assert.Equal(t, c.want.permanent, backends.IsPermanent(err), "permanent: %v", err)
			d, retry := backends.RetryDelay(err)
			assert.Equal(t, c.want.retry, retry, "retry-after: %v", err)
			if retry {
				assert.Equal(t, time.Second, d, "the answer's Retry-After")
			}
			var apiErr *cloudflare.Error
			if c.want.codes != nil {
				require.ErrorAs(t, err, &apiErr)
				assert.Equal(t, c.want.codes, apiErr.Codes())
			}
			if c.errText != "" {
				assert.Contains(t, err.Error(), c.errText)
			}
			failed, partial := backends.FailedObjects(err)
			if c.want.partial != nil {
				require.True(t, partial, "%v", err)
				assert.Equal(t, c.want.partial, failed.URLs)
				assert.Equal(t, []string{"https://www.example.com/kept"}, srv.Files(), "the others were purged")
			}
		})
	}
}

// A path without hostnames and tags Cloudflare would refuse fail on their
// own, by name, while the rest is purged.
func TestUnsendableObjectsFailAlone(t *testing.T) {
	srv := newServer(t)
	b, err := cloudflare.New(cloudflare.WithEndpoint(srv.Endpoint()), cloudflare.WithZone(srv.Zone()), cloudflare.WithAPIToken(srv.Token()),
		cloudflare.WithHTTPClient(srv.Client()), cloudflare.WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	long := strings.Repeat("x", cloudflare.MaxTagLength+1)
	_, err = purge(t, b, backends.Request{URLs: []string{"/path", "https://www.example.com/ok"}, Tags: []string{"ok", long, "caf\u00e9"}})
	require.Error(t, err)
	assert.True(t, backends.IsPermanent(err))
	failed, ok := backends.FailedObjects(err)
	require.True(t, ok)
	assert.Equal(t, []string{"/path"}, failed.URLs)
	assert.Equal(t, []string{long, "caf\u00e9"}, failed.Tags)
	assert.Contains(t, err.Error(), "WithHostnames")
	assert.Equal(t, []string{"https://www.example.com/ok"}, srv.Files())
	assert.Equal(t, []string{"ok"}, srv.Tags())
	assert.NoError(t, cloudflare.CheckTag(strings.Repeat("x", cloudflare.MaxTagLength)))
}

func TestPurgeAll(t *testing.T) {
	srv := newServer(t)
	b := newBackend(t, srv)
	require.NoError(t, b.CanPurgeAll())
	res, err := b.PurgeAll(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 1, srv.Everything())
	assert.Equal(t, srv.Purges()[0].ID, res.IDs["purgeId"])
	assert.Equal(t, "Purged everything", res.Detail)

	srv.FailNext(http.StatusForbidden, 1)
	_, err = b.PurgeAll(t.Context())
	assert.True(t, backends.IsPermanent(err))
	assert.Equal(t, 1, srv.Everything())
}

// A burst of tag purges beyond the request bucket draws no 429: the pacer
// waits for the tokens. The fake's bucket and the backend's pacing are
// small and fast: 3 at once, 40 a second. The burst is sent as fast as the
// pacer lets it, one request after the other, as one dispatcher worker
// does.
func TestPacingKeepsToTheBucket(t *testing.T) {
	// The fake's bucket has one token more than the pacer's: the slack a
	// real client needs against scheduling jitter on a loaded machine
	// (seen once here under -race with other tests running), as it would
	// against network jitter.
	srv := newServer(t, cloudflaretest.WithBucket(40, 4))
	b := newBackend(t, srv, cloudflare.WithRate(40, 3))
	const n = 15
	start := time.Now()
	for i := range n {
		_, err := purge(t, b, backends.NewRequest(nil, []string{fmt.Sprintf("burst-%d", i)}))
		require.NoError(t, err, "request %d after %v: %v", i, time.Since(start), srv.Responses())
	}
	took := time.Since(start)
	assert.Equal(t, map[int]int{200: n}, srv.Responses(), "no 429")
	assert.GreaterOrEqual(t, took, (n-3)*time.Second/40, "the pacer waited for the refill")
}

// Concurrent callers share the bucket first come, first served: none is
// refused, and the burst takes the refill time.
func TestPacingConcurrentCallers(t *testing.T) {
	srv := newServer(t)
	b := newBackend(t, srv, cloudflare.WithRate(40, 3))
	const n = 15
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		wg.Go(func() {
			_, err := purge(t, b, backends.NewRequest(nil, []string{fmt.Sprintf("burst-%d", i)}))
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	assert.GreaterOrEqual(t, time.Since(start), (n-3)*time.Second/40)
	assert.Len(t, srv.Tags(), n)
}

// Pace with a deadline shorter than the wait takes nothing and says how
// long to wait; a 429 stops the following requests until its Retry-After.
func TestPaceDeadlineAndRetryAfter(t *testing.T) {
	srv := newServer(t)
	b := newBackend(t, srv, cloudflare.WithRate(1, 1))
	r := backends.NewRequest(nil, []string{"x"})
	require.NoError(t, b.Pace(t.Context(), r)) // the one token
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	err := b.Pace(ctx, r)
	require.ErrorIs(t, err, cloudflare.ErrRateLimited)
	d, ok := backends.RetryDelay(err)
	require.True(t, ok)
	assert.InDelta(t, time.Second.Seconds(), d.Seconds(), 0.1)

	cctx, ccancel := context.WithCancel(t.Context())
	ccancel()
	assert.ErrorIs(t, b.Pace(cctx, r), context.Canceled)
	_, err = b.Purge(cctx, r)
	assert.ErrorIs(t, err, context.Canceled)
	assert.Empty(t, srv.Tags())
}

// Single-file purges (URLs) take no token of the request bucket: Cloudflare
// limits them in URLs a second only. With a request bucket of one token an
// hour, URL purges go on without waiting, and the one token is still
// there for a purge by tag.
func TestURLPurgesTakeNoRequestToken(t *testing.T) {
	srv := newServer(t, cloudflaretest.WithBucket(1.0/3600, 1))
	b := newBackend(t, srv, cloudflare.WithRate(1.0/3600, 1))
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	for i := range 5 {
		r := backends.NewRequest([]string{fmt.Sprintf("/u/%d", i)}, nil)
		require.NoError(t, b.Pace(ctx, r), "URL purge %d waits for no request token", i)
		_, err := b.Purge(ctx, r)
		require.NoError(t, err)
	}
	tag := backends.NewRequest(nil, []string{"t"})
	require.NoError(t, b.Pace(ctx, tag))
	_, err := b.Purge(ctx, tag)
	require.NoError(t, err)
	err = b.Pace(ctx, backends.NewRequest(nil, []string{"t2"}))
	require.ErrorIs(t, err, cloudflare.ErrRateLimited, "a second tag purge needs the next token, an hour away")
	assert.Len(t, srv.Files(), 5)
	assert.Equal(t, map[int]int{200: 6}, srv.Responses())
}

func TestCloseClosesOnlyItsOwnClient(t *testing.T) {
	t.Setenv(cloudflare.EnvAPIToken, token)
	t.Setenv(cloudflare.EnvZoneID, zone)
	b, err := cloudflare.New()
	require.NoError(t, err)
	require.NoError(t, b.Close(t.Context()))
	require.NoError(t, b.Close(t.Context()))

	srv := newServer(t)
	shared := srv.Client()
	b2 := newBackend(t, srv, cloudflare.WithHTTPClient(shared))
	_, err = purge(t, b2, backends.NewRequest([]string{"/a"}, nil))
	require.NoError(t, err)
	require.NoError(t, b2.Close(t.Context()))
	_, err = purge(t, b2, backends.NewRequest([]string{"/b"}, nil))
	require.NoError(t, err, "a Backend still purges after Close")
	assert.True(t, slices.Contains(srv.Files(), "https://www.example.com/b"))
	assert.False(t, errors.Is(err, context.Canceled))
}

// refusingServer answers each purge request with refusal when it names
// one of the objects of refused, else with success, in Cloudflare's
// envelope, and counts the requests.
func refusingServer(t *testing.T, refused []string, refusal []cloudflare.APIError) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var calls atomic.Int32
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		raw, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		for _, o := range refused {
			if strings.Contains(string(raw), `"`+o+`"`) {
				w.WriteHeader(http.StatusBadRequest)
				_ = json.NewEncoder(w).Encode(map[string]any{"success": false, "errors": refusal, "messages": []string{}, "result": nil})
				return
			}
		}
		_, _ = io.WriteString(w, `{"success":true,"errors":[],"messages":[],"result":{"id":"0123456789abcdef0123456789abcdef"}}`)
	}))
	t.Cleanup(ts.Close)
	return ts, &calls
}

// A refusal names objects only in the form the backend reads without
// guessing: every error after the first ends with ": " and an object of the
// request. Any other refusal fails the whole request, permanently, and
// nothing of it is resent: a tag called "invalid" is not taken for the
// object of "Request is invalid".
func TestRefusalNamesObjectsOrFailsTheRequest(t *testing.T) {
	const a = "https://www.example.com/a"
	for name, tt := range map[string]struct {
		req     backends.Request
		refused []string // objects the server refuses
		refusal []cloudflare.APIError
		failed  []string // the objects reported failed; nil: the whole request
		calls   int32
	}{
		"one URL named": {
			req:     backends.NewRequest([]string{"/a", "/b"}, nil),
			refused: []string{a},
			refusal: []cloudflare.APIError{{Code: 1016, Message: "One or more cache purge errors"}, {Code: 1099, Message: "Invalid URL: " + a}},
			failed:  []string{"/a"},
			calls:   2,
		},
		"a message that ends like a tag": {
			req:     backends.NewRequest(nil, []string{"invalid", "other"}),
			refused: []string{"invalid"},
			refusal: []cloudflare.APIError{{Code: 1012, Message: "Request is invalid"}},
			calls:   1,
		},
		"an error that names no object": {
			req:     backends.NewRequest([]string{"/a", "/b"}, nil),
			refused: []string{a},
			refusal: []cloudflare.APIError{{Code: 1016, Message: "One or more cache purge errors"}, {Code: 1099, Message: "Invalid URL: " + a}, {Code: 1234, Message: "Something else went wrong"}},
			calls:   1,
		},
		"a message that ends with an object without a colon": {
			req:     backends.NewRequest([]string{"/a", "/b"}, nil),
			refused: []string{a},
			refusal: []cloudflare.APIError{{Code: 1016, Message: "One or more cache purge errors"}, {Code: 1099, Message: "Not purging " + a}},
			calls:   1,
		},
	} {
		t.Run(name, func(t *testing.T) {
			ts, calls := refusingServer(t, tt.refused, tt.refusal)
			b, err := cloudflare.New(cloudflare.WithEndpoint(ts.URL), cloudflare.WithZone(zone), cloudflare.WithAPIToken(token),
				cloudflare.WithHTTPClient(ts.Client()), cloudflare.WithHostnames(site), cloudflare.WithRate(1000, 1000),
				cloudflare.WithLogger(slog.New(slog.DiscardHandler)))
			require.NoError(t, err)
			_, err = purge(t, b, tt.req)
			require.Error(t, err)
			assert.True(t, backends.IsPermanent(err), "%v", err)
			failed, ok := backends.FailedObjects(err)
			if tt.failed == nil {
				assert.False(t, ok, "the whole request failed, not %v", failed)
				var apiErr *cloudflare.Error
				require.ErrorAs(t, err, &apiErr)
				assert.Equal(t, http.StatusBadRequest, apiErr.Status)
			} else {
				require.True(t, ok, "%v", err)
				assert.Equal(t, tt.failed, failed.URLs)
			}
			assert.Equal(t, tt.calls, calls.Load(), "requests sent")
		})
	}
}
