package warm_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/warm"
)

// recorder is a server on 127.0.0.1 that keeps a copy of every request it
// gets, and answers with h (200 and an empty body when h is nil).
type recorder struct {
	*httptest.Server
	host string // the server's host:port

	mu   sync.Mutex
	reqs []*http.Request
}

func newRecorder(t testing.TB, h http.Handler) *recorder {
	t.Helper()
	rec := &recorder{}
	rec.Server = newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.mu.Lock()
		rec.reqs = append(rec.reqs, r.Clone(context.Background()))
		rec.mu.Unlock()
		if h != nil {
			h.ServeHTTP(w, r)
		}
	}))
	rec.host = strings.TrimPrefix(rec.URL, "http://")
	return rec
}

// requests returns the requests received so far.
func (rec *recorder) requests() []*http.Request {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]*http.Request(nil), rec.reqs...)
}

// localhostURL returns srv's URL with "localhost" for "127.0.0.1": the same
// server under another host name.
func localhostURL(srv *recorder) string {
	return strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
}

// The secrets that the warmers of these tests are configured with; none
// may reach another host, an error or a log.
const (
	secretPassword = "pw-hunter2"
	secretToken    = "tok-hunter2"
	secretCookie   = "sessionid=cookie-hunter2"
)

// withSecrets configures basic auth, a custom header, a cookie and a Host
// override.
func withSecrets() []warm.Option {
	return []warm.Option{
		warm.WithBasicAuth("warmup", secretPassword),
		warm.WithHeader("X-Warmup-Token", secretToken),
		warm.WithHeader("Cookie", secretCookie),
		warm.WithHeader("Accept-Language", "de"),
		warm.WithHeader("Host", "www.example.com"),
	}
}

// assertCredentialed checks that r carries everything withSecrets sets.
func assertCredentialed(t *testing.T, r *http.Request) {
	t.Helper()
	user, pass, ok := r.BasicAuth()
	assert.True(t, ok && user == "warmup" && pass == secretPassword, "basic auth")
	assert.Equal(t, secretToken, r.Header.Get("X-Warmup-Token"))
	assert.Equal(t, secretCookie, r.Header.Get("Cookie"))
	assert.Equal(t, "de", r.Header.Get("Accept-Language"))
	assert.Equal(t, "www.example.com", r.Host)
}

// assertNoSecret checks that s names none of withSecrets' secrets.
func assertNoSecret(t *testing.T, s string) {
	t.Helper()
	for _, secret := range []string{secretPassword, secretToken, "cookie-hunter2", "hunter2"} {
		assert.NotContains(t, s, secret)
	}
}

// A URL that is not on the base URL's scheme, host and port is not
// fetched: neither the warm-up's credentials nor its headers, nor the
// request itself, reach another host. Values that look like paths but
// would name another host to a lax parser stay on the base URL's host.
func TestFetchSendsNothingToAnotherHost(t *testing.T) {
	// {a} is the other host's host:port, {A} the same under the name
	// localhost; {site} is the base URL's host:port.
	tests := []struct {
		url     string
		refused string // the host named by the error wrapping ErrRefused; "" if not refused
	}{
		{"http://{a}/x", "{a}"}, // the plugin's WithBaseURL made it from "/" + "/{a}/x"
		{"http://{A}/x", "{A}"}, // another name and port
		{"https://{site}/x", "{site}"},
		{"http://{site}/x", ""}, // the site itself: fetched, with the credentials
		{"//{a}/x", ""},
		{"/\\{a}/x", ""},
		{"/%2F%2F{a}/x", ""},
		{"/%5C%5C{a}/x", ""},
		{"http:/\\{a}/x", ""},
		{"http:\\\\{a}/x", ""},
		{"\\\\{a}/x", ""},
		{"/..//{a}/x", ""},
		{"http:{a}/x", ""},
		{"http://{site}@{a}/x", "{a}"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			attacker := newRecorder(t, nil)
			site := newRecorder(t, nil)
			fill := strings.NewReplacer("{a}", attacker.host, "{A}", strings.TrimPrefix(localhostURL(attacker), "http://"),
				"{site}", site.host).Replace
			raw := fill(tt.url)
			var logs bytes.Buffer
			onResult, results := results()
			w := newWarmer(t, append(withSecrets(), warm.WithBaseURL(site.URL), onResult,
				warm.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))...)

			sum := w.Fetch(context.Background(), []string{raw}, nil)
			res := <-results
			w.Enqueue(raw)
			if res.Err == nil {
				res = <-results // a background fetch: wait for it
			}
			require.NoError(t, w.Close(context.Background()))

			assert.Empty(t, attacker.requests(), "the other host got nothing")
			for _, r := range site.requests() {
				assertCredentialed(t, r)
			}
			assertNoSecret(t, sum.String())
			if res.Err != nil {
				assertNoSecret(t, res.Err.Error())
			}
			assertNoSecret(t, logs.String())
			if tt.refused == "" {
				assert.NotErrorIs(t, res.Err, warm.ErrRefused)
				return
			}
			assert.ErrorIs(t, res.Err, warm.ErrRefused)
			assert.Contains(t, res.Err.Error(), fmt.Sprintf("host %q", fill(tt.refused)))
			assert.Equal(t, 1, sum.Refused)
			assert.Equal(t, warm.Stats{Failed: 2, Refused: 2}, w.Stats(), "Fetch and Enqueue count it")
			assert.Contains(t, logs.String(), `msg="warm: URL refused, not enqueued"`)
			assert.Contains(t, logs.String(), "host="+fill(tt.refused))
		})
	}
}

// A host given to WithAllowedHosts is fetched as an anonymous visitor: none
// of the credentials and headers of the site, directly or by a redirect.
func TestAllowedHostsGetNoSecret(t *testing.T) {
	static := newRecorder(t, nil) // 127.0.0.1, allowed
	site := newRecorder(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/moved" {
			http.Redirect(w, r, static.URL+"/landing", http.StatusFound)
		}
	}))
	siteURL := localhostURL(site) // the site is "localhost"
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	w := newWarmer(t, append(withSecrets(), warm.WithBaseURL(siteURL), warm.WithAllowedHosts("127.0.0.1"),
		warm.WithUserAgent("acme-warm/2"), warm.WithHeader("Accept-Encoding", "identity"),
		warm.WithHTTPClient(&http.Client{Transport: tr}))...)

	sum := w.Fetch(context.Background(), []string{"/page", static.URL + "/direct", "/moved"}, nil)

	assert.Equal(t, 3, sum.OK, sum)
	require.Len(t, site.requests(), 2)
	for _, r := range site.requests() {
		assertCredentialed(t, r)
		assert.Equal(t, "identity", r.Header.Get("Accept-Encoding"))
	}
	var paths []string
	for _, r := range static.requests() {
		paths = append(paths, r.URL.Path)
		assert.Equal(t, static.host, r.Host)
		want := http.Header{"User-Agent": {"acme-warm/2"}, "Accept-Encoding": {"gzip"}}
		assert.Equal(t, want, r.Header, "the anonymous headers only, no Referer")
	}
	assert.ElementsMatch(t, []string{"/direct", "/landing"}, paths)
}

// Without a base URL, no credentials can be configured: absolute URLs are
// fetched on any host, or only on the allowed hosts when some are given.
func TestWithoutABaseURL(t *testing.T) {
	srv := newRecorder(t, nil)
	tests := []struct {
		name    string
		opts    []warm.Option
		refused bool
	}{
		{"any host", nil, false},
		{"allowed", []warm.Option{warm.WithAllowedHosts("localhost", "127.0.0.1")}, false},
		{"not allowed", []warm.Option{warm.WithAllowedHosts("localhost", "[::1]")}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWarmer(t, tt.opts...)
			var res warm.Result
			w.Fetch(context.Background(), []string{srv.URL + "/" + tt.name}, func(r warm.Result) { res = r })
			if tt.refused {
				assert.ErrorIs(t, res.Err, warm.ErrRefused)
				assert.ErrorContains(t, res.Err, "WithAllowedHosts")
				return
			}
			assert.NoError(t, res.Err)
			assert.Equal(t, http.StatusOK, res.Status)
		})
	}
	var paths []string
	for _, r := range srv.requests() {
		paths = append(paths, r.URL.Path)
	}
	assert.Equal(t, []string{"/any host", "/allowed"}, paths)
}

// A client given to WithHTTPClient may follow redirects; one that leads to
// another host does not take the warm-up's credentials and headers there.
// net/http keeps Authorization on a redirect to the same host name on
// another port, and every other header everywhere.
func TestRedirectsOfAClientCarryNoSecretElsewhere(t *testing.T) {
	attacker := newRecorder(t, nil)
	site := newRecorder(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/moved" {
			http.Redirect(w, r, attacker.URL+"/landing", http.StatusFound)
		}
	}))
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	var logs bytes.Buffer
	w := newWarmer(t, append(withSecrets(), warm.WithBaseURL(site.URL), warm.WithHTTPClient(&http.Client{Transport: tr}),
		warm.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))...)

	var res warm.Result
	sum := w.Fetch(context.Background(), []string{"/moved"}, func(r warm.Result) { res = r })

	assert.Empty(t, attacker.requests(), "the redirect was not followed to another host")
	require.Len(t, site.requests(), 1)
	assertCredentialed(t, site.requests()[0])
	assert.Equal(t, 1, sum.Failed)
	assert.Equal(t, 1, sum.Refused)
	assert.ErrorIs(t, res.Err, warm.ErrRefused)
	assert.Contains(t, res.Err.Error(), attacker.host, "the error names the host refused")
	assertNoSecret(t, res.Err.Error())
	assertNoSecret(t, logs.String())
}

// Credentials and headers are sent only to the base URL's site: without a
// base URL there is no site to send them to, and New says so.
func TestNewRefusesSecretsWithoutABaseURL(t *testing.T) {
	tests := []struct {
		name string
		opt  warm.Option
		want string
	}{
		{"basic auth", warm.WithBasicAuth("warmup", secretPassword), "WithBasicAuth"},
		{"header", warm.WithHeader("X-Warmup-Token", secretToken), "WithHeader"},
		{"host", warm.WithHeader("Host", "www.example.com"), "WithHeader"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := warm.New(tt.opt, warm.WithLogger(quiet))
			if w != nil {
				require.NoError(t, w.Close(context.Background()))
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.Contains(t, err.Error(), "WithBaseURL")
			assertNoSecret(t, err.Error())
		})
	}
}

// A URL with a user and password would send them to its host as basic
// auth: it is refused, and the password never reaches an error or a log.
func TestURLsWithCredentialsAreRefused(t *testing.T) {
	site := newRecorder(t, nil)
	var logs bytes.Buffer
	onResult, results := results()
	w := newWarmer(t, warm.WithBaseURL(site.URL), onResult, warm.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	urls := []string{
		"http://warmup:" + secretPassword + "@" + site.host + "/x",
		"http://" + secretPassword + "@" + site.host + "/x",
		"http://warmup:" + secretPassword + "@" + site.host + "/%zz",
	}
	for _, raw := range urls {
		t.Run(raw, func(t *testing.T) {
			var res warm.Result
			w.Fetch(context.Background(), []string{raw}, func(r warm.Result) { res = r })
			<-results
			require.Error(t, res.Err)
			assertNoSecret(t, res.Err.Error())
			w.Enqueue(raw)
			<-results
		})
	}
	assert.Empty(t, site.requests())
	assertNoSecret(t, logs.String())

	for _, base := range []string{"http://warmup:" + secretPassword + "@" + site.host, "http://warmup:" + secretPassword + "@[::1"} {
		w, err := warm.New(warm.WithBaseURL(base), warm.WithLogger(quiet))
		if w != nil {
			require.NoError(t, w.Close(context.Background()))
		}
		require.Error(t, err, base)
		assert.Contains(t, err.Error(), "WithBaseURL")
		assertNoSecret(t, err.Error())
	}
}
