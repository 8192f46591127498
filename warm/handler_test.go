package warm_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/warm"
)

func TestFetchThroughHandler(t *testing.T) {
	type seen struct {
		host, remoteAddr, requestURI string
		tls                          bool
	}
	tests := []struct {
		url   string
		base  string
		hosts []string // WithAllowedHosts
		want  seen
	}{
		{"/p?q=1", "", nil, seen{host: "localhost", requestURI: "/p?q=1"}},
		{"http://LOCALHOST:80/p", "", nil, seen{host: "localhost", requestURI: "/p"}}, // the canonical host, as the local cache keys it
		{"http://ex\u00e4mple.com/p", "", []string{"EX\u00c4MPLE.com"}, seen{host: "xn--exmple-cua.com", requestURI: "/p"}},
		{"/p#frag", "https://shop.example:8443/ignored", nil, seen{host: "shop.example:8443", requestURI: "/p", tls: true}},
		{"https://other.example/x", "http://127.0.0.1:8080", []string{"Other.Example"}, seen{host: "other.example", requestURI: "/x", tls: true}},
		{"http://other.example/y", "", []string{"other.example"}, seen{host: "other.example", requestURI: "/y"}},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			var got seen
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got = seen{host: r.Host, remoteAddr: r.RemoteAddr, requestURI: r.RequestURI, tls: r.TLS != nil}
				w.Header().Set("X-Cache-Status", "MISS")
				_, _ = w.Write(make([]byte, 10_000))
				_, _ = w.Write(make([]byte, 240))
			})
			opts := []warm.Option{warm.WithHandler(h)}
			if tt.base != "" {
				opts = append(opts, warm.WithBaseURL(tt.base))
			}
			if tt.hosts != nil {
				opts = append(opts, warm.WithAllowedHosts(tt.hosts...))
			}
			w := newWarmer(t, opts...)

			var res warm.Result
			w.Fetch(context.Background(), []string{tt.url}, func(r warm.Result) { res = r })

			require.NoError(t, res.Err)
			tt.want.remoteAddr = "127.0.0.1:0"
			assert.Equal(t, tt.want, got)
			assert.Equal(t, http.StatusOK, res.Status)
			assert.Equal(t, "MISS", res.Cache)
			assert.Equal(t, int64(10_240), res.Bytes)
		})
	}
}

func TestFetchThroughHandlerFailures(t *testing.T) {
	tests := []struct {
		name    string
		h       http.HandlerFunc
		opts    []warm.Option
		want    string
		wantErr error
	}{
		{"panic", func(http.ResponseWriter, *http.Request) { panic("template missing") }, nil,
			`warm: /page: the handler panicked: template missing`, nil},
		{"abort", func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) }, nil,
			`warm: /page: the handler aborted the response`, http.ErrAbortHandler},
		{"invalid status", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(0) }, nil,
			`warm: /page: the handler panicked: invalid WriteHeader code 0`, nil},
		{"timeout", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }, []warm.Option{warm.WithTimeout(time.Nanosecond)},
			"warm: /page: context deadline exceeded", context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWarmer(t, append([]warm.Option{warm.WithHandler(tt.h)}, tt.opts...)...)
			var res warm.Result
			sum := w.Fetch(context.Background(), []string{"/page"}, func(r warm.Result) { res = r })

			require.Error(t, res.Err)
			assert.Contains(t, res.Err.Error(), tt.want)
			if tt.wantErr != nil {
				assert.ErrorIs(t, res.Err, tt.wantErr)
			}
			assert.Equal(t, 0, res.Status)
			assert.Equal(t, map[int]int{0: 1}, sum.ByStatus)
		})
	}
}
