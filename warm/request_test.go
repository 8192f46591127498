package warm_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends/localcache"
	"github.com/gormpurge/gormpurge/warm"
)

func TestFetchSendsConfiguredHeaders(t *testing.T) {
	tests := []struct {
		name  string
		opts  []warm.Option
		check func(t *testing.T, r *http.Request)
	}{
		{"defaults", nil, func(t *testing.T, r *http.Request) {
			assert.Equal(t, warm.DefaultUserAgent, r.UserAgent())
			assert.Empty(t, r.Header.Values("Cookie"))
			assert.Empty(t, r.Header.Values("Authorization"))
		}},
		{"headers", []warm.Option{warm.WithHeader("Accept-Language", "fr"), warm.WithHeader("x-warm", "1"), warm.WithHeader("X-Warm", "2")}, func(t *testing.T, r *http.Request) {
			assert.Equal(t, "fr", r.Header.Get("Accept-Language"))
			assert.Equal(t, []string{"1", "2"}, r.Header.Values("X-Warm"))
		}},
		{"cookie", []warm.Option{warm.WithHeader("Cookie", "sessionid=warmup")}, func(t *testing.T, r *http.Request) {
			c, err := r.Cookie("sessionid")
			require.NoError(t, err)
			assert.Equal(t, "warmup", c.Value)
		}},
		{"basic auth", []warm.Option{warm.WithBasicAuth("ops", "s3cr:et")}, func(t *testing.T, r *http.Request) {
			user, pass, ok := r.BasicAuth()
			assert.True(t, ok)
			assert.Equal(t, "ops", user)
			assert.Equal(t, "s3cr:et", pass)
		}},
		{"user agent", []warm.Option{warm.WithUserAgent("acme-warm/2")}, func(t *testing.T, r *http.Request) {
			assert.Equal(t, "acme-warm/2", r.UserAgent())
		}},
		{"host", []warm.Option{warm.WithHeader("Host", "www.example.com")}, func(t *testing.T, r *http.Request) {
			assert.Equal(t, "www.example.com", r.Host)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reqs := make(chan *http.Request, 1)
			srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				reqs <- r.Clone(context.Background())
			}))
			w := newWarmer(t, append([]warm.Option{warm.WithBaseURL(srv.URL)}, tt.opts...)...)

			sum := w.Fetch(context.Background(), []string{"/page"}, nil)
			require.Equal(t, 1, sum.OK, sum)
			r := <-reqs
			assert.Equal(t, http.MethodGet, r.Method)
			tt.check(t, r)
		})
	}
}

func TestFetchSendsNoCookiesItWasGiven(t *testing.T) {
	cookies := make(chan []*http.Cookie, 2)
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cookies <- r.Cookies()
		http.SetCookie(w, &http.Cookie{Name: "sessionid", Value: "new"})
	}))
	w := newWarmer(t, warm.WithBaseURL(srv.URL), warm.WithConcurrency(1))

	sum := w.Fetch(context.Background(), []string{"/first", "/second"}, nil)

	require.Equal(t, 2, sum.OK)
	assert.Empty(t, <-cookies)
	assert.Empty(t, <-cookies, "the default client has no cookie jar")
}

func TestFetchFollowsNoRedirectByDefault(t *testing.T) {
	var hits counter
	mux := http.NewServeMux()
	mux.HandleFunc("/old", func(w http.ResponseWriter, r *http.Request) {
		hits.add(r.URL.Path)
		http.Redirect(w, r, "/new", http.StatusMovedPermanently)
	})
	mux.HandleFunc("/new", func(w http.ResponseWriter, r *http.Request) {
		hits.add(r.URL.Path)
		w.Header().Set("X-Cache-Status", "HIT")
		_, _ = w.Write([]byte("new"))
	})

	for _, mode := range []string{"network", "handler"} {
		t.Run(mode, func(t *testing.T) {
			opt := warm.WithHandler(mux)
			if mode == "network" {
				opt = warm.WithBaseURL(newServer(t, mux).URL)
			}
			w := newWarmer(t, opt)
			var got warm.Result
			sum := w.Fetch(context.Background(), []string{"/old"}, func(r warm.Result) { got = r })
			assert.NoError(t, got.Err)
			assert.Equal(t, http.StatusMovedPermanently, got.Status)
			assert.Equal(t, 1, sum.Failed, "a redirect is not a page a cache keeps")
		})
	}
	t.Run("a client of the caller's follows its own policy", func(t *testing.T) {
		srv := newServer(t, mux)
		w := newWarmer(t, warm.WithBaseURL(srv.URL), warm.WithHTTPClient(srv.Client()))
		var got warm.Result
		w.Fetch(context.Background(), []string{"/old"}, func(r warm.Result) { got = r })
		assert.Equal(t, warm.Result{URL: "/old", Status: http.StatusOK, Cache: "HIT", Duration: got.Duration, Bytes: 3}, got)
	})
	assert.Equal(t, map[string]int{"/old": 3, "/new": 1}, hits.all())
}

// A redirect to another site must not take the warm-up's headers and
// credentials there, nor count as the page warmed.
func TestFetchKeepsHeadersFromRedirectTargets(t *testing.T) {
	var elsewhere counter
	other := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.add(r.Header.Get("X-Warmup-Token") + " " + r.Header.Get("Authorization"))
		_, _ = w.Write([]byte("someone else's page"))
	}))
	origin := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/landing", http.StatusFound)
	}))
	w := newWarmer(t, warm.WithBaseURL(origin.URL), warm.WithHeader("X-Warmup-Token", "s3cret"), warm.WithBasicAuth("ops", "pw"))

	sum := w.Fetch(context.Background(), []string{"/articles/7"}, nil)

	assert.Empty(t, elsewhere.all(), "nothing was sent to the redirect's target")
	assert.Equal(t, warm.Summary{URLs: 1, Failed: 1, ByStatus: map[int]int{http.StatusFound: 1},
		Min: sum.Min, Median: sum.Median, P95: sum.P95, Max: sum.Max, Elapsed: sum.Elapsed}, sum)
}

func TestFetchAsksForGzipUnlessTold(t *testing.T) {
	noCompression := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	t.Cleanup(noCompression.CloseIdleConnections)
	tests := []struct {
		name  string
		opts  []warm.Option
		modes []string
		want  []string
	}{
		{"default", nil, []string{"network", "handler"}, []string{"gzip"}},
		{"a client whose transport asks for none", []warm.Option{warm.WithHTTPClient(noCompression)}, []string{"network"}, []string{"gzip"}},
		{"given", []warm.Option{warm.WithHeader("accept-encoding", "identity")}, []string{"network", "handler"}, []string{"identity"}},
	}
	for _, tt := range tests {
		for _, mode := range tt.modes {
			t.Run(tt.name+"/"+mode, func(t *testing.T) {
				got := make(chan []string, 1)
				h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					got <- r.Header.Values("Accept-Encoding")
				})
				opts := []warm.Option{warm.WithHandler(h)}
				if mode == "network" {
					opts = []warm.Option{warm.WithBaseURL(newServer(t, h).URL)}
				}
				w := newWarmer(t, append(opts, tt.opts...)...)
				require.Equal(t, 1, w.Fetch(context.Background(), []string{"/p"}, nil).OK)
				assert.Equal(t, tt.want, <-got)
			})
		}
	}
}

// A page that varies on Accept-Encoding is warmed in the variant browsers
// get.
func TestWarmTheGzipVariant(t *testing.T) {
	store, err := localcache.NewMemoryStore()
	require.NoError(t, err)
	site := localcache.Middleware(store, localcache.WithLogger(quiet))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Vary", "Accept-Encoding")
		_, _ = w.Write([]byte("page"))
	}))
	w := newWarmer(t, warm.WithHandler(site), warm.WithBaseURL("http://www.example.com"))
	require.Equal(t, 1, w.Fetch(context.Background(), []string{"/a"}, nil).OK)

	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "http://www.example.com/a", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	site.ServeHTTP(rec, req)
	assert.Equal(t, "HIT", rec.Header().Get(localcache.XCache))
}
