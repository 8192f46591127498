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

func TestNewRejectsInvalidOptions(t *testing.T) {
	tests := []struct {
		opts []warm.Option
		want string
	}{
		{[]warm.Option{warm.WithConcurrency(0)}, "WithConcurrency(0): need at least 1"},
		{[]warm.Option{warm.WithDelay(-time.Second)}, "WithDelay(-1s): use 0 to fetch at once"},
		{[]warm.Option{warm.WithBaseURL("example.com")}, `WithBaseURL("example.com"): need an absolute http or https URL`},
		{[]warm.Option{warm.WithBaseURL("ftp://example.com")}, `WithBaseURL("ftp://example.com"): need an absolute http or https URL`},
		{[]warm.Option{warm.WithBaseURL("http://example.com/?page=1")}, `WithBaseURL("http://example.com/?page=1"): remove the query`},
		{[]warm.Option{warm.WithBaseURL("http://[::1")}, `WithBaseURL("http://[::1"): missing ']' in host`},
		{[]warm.Option{warm.WithAllowedHosts("static.example.com:443")}, `WithAllowedHosts("static.example.com:443"): give a host name`},
		{[]warm.Option{warm.WithAllowedHosts("https://static.example.com")}, `WithAllowedHosts("https://static.example.com"): give a host name`},
		{[]warm.Option{warm.WithAllowedHosts("")}, `WithAllowedHosts(""): give a host name`},
		{[]warm.Option{warm.WithHandler(nil)}, "WithHandler(nil): pass the application's http.Handler"},
		{[]warm.Option{warm.WithHandler((*nilHandler)(nil))}, "WithHandler((*warm_test.nilHandler)(nil)): the handler is a nil *warm_test.nilHandler: pass the application's http.Handler"},
		{[]warm.Option{warm.WithHandler(http.HandlerFunc(nil))}, "WithHandler((http.HandlerFunc)(nil)): the handler is a nil http.HandlerFunc"},
		{[]warm.Option{warm.WithHTTPClient(nil)}, "WithHTTPClient(nil): pass an *http.Client"},
		{[]warm.Option{warm.WithHandler(http.NotFoundHandler()), warm.WithHTTPClient(http.DefaultClient)}, "WithHandler and WithHTTPClient: use one"},
		{[]warm.Option{warm.WithTimeout(0)}, "WithTimeout(0s): need a positive duration"},
		{[]warm.Option{warm.WithHeader("", "x")}, `WithHeader("", ...): the name must be`},
		{[]warm.Option{warm.WithHeader("X Warm", "x")}, `WithHeader("X Warm", ...): the name must be`},
		{[]warm.Option{warm.WithHeader("X-Warm", "a\r\nb")}, `WithHeader("X-Warm", ...): the value must not contain CR, LF or NUL`},
		{[]warm.Option{warm.WithBasicAuth("", "pw")}, `WithBasicAuth("", ...): the user must be non-empty`},
		{[]warm.Option{warm.WithBasicAuth("a:b", "pw")}, `WithBasicAuth("a:b", ...): the user must be non-empty and must not contain a colon`},
		{[]warm.Option{warm.WithUserAgent("")}, `WithUserAgent(""): name the client`},
		{[]warm.Option{warm.WithQueueSize(0)}, "WithQueueSize(0): need room for at least 1 URL"},
		{[]warm.Option{warm.WithLogger(nil)}, "WithLogger(nil): pass slog.New(slog.DiscardHandler)"},
		{[]warm.Option{warm.WithOnResult(nil)}, "WithOnResult(nil): pass a function"},
		{[]warm.Option{warm.WithObserver(nil)}, "WithObserver(nil): pass an observe.Observer"},
		{[]warm.Option{warm.WithObserver((*observer)(nil))}, "WithObserver((*warm_test.observer)(nil)): the Observer is a nil *warm_test.observer: pass an observe.Observer"},
		{[]warm.Option{nil}, "an Option is nil: remove it, or pass one made by a With... function"},
		{[]warm.Option{warm.WithConcurrency(2), nil, warm.WithQueueSize(10)}, "an Option is nil: remove it, or pass one made by a With... function"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			w, err := warm.New(tt.opts...)
			assert.Nil(t, w)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "warm: invalid configuration:\n")
			assert.Contains(t, err.Error(), tt.want)
		})
	}

	t.Run("every problem is reported", func(t *testing.T) {
		_, err := warm.New(warm.WithConcurrency(-1), warm.WithQueueSize(-1))
		assert.ErrorContains(t, err, "WithConcurrency(-1)")
		assert.ErrorContains(t, err, "WithQueueSize(-1)")
	})
	t.Run("a nil Option does not hide the others' problems", func(t *testing.T) {
		_, err := warm.New(nil, warm.WithConcurrency(-1))
		assert.ErrorContains(t, err, "an Option is nil")
		assert.ErrorContains(t, err, "WithConcurrency(-1)")
	})
	t.Run("valid", func(t *testing.T) {
		w, err := warm.New(warm.WithOnResult(func(warm.Result) {}), warm.WithBaseURL("https://www.example.com/"), warm.WithLogger(quiet))
		require.NoError(t, err)
		assert.NoError(t, w.Close(context.Background()))
	})
}

// nilHandler is an http.Handler whose nil pointer WithHandler must refuse.
type nilHandler struct{}

func (*nilHandler) ServeHTTP(http.ResponseWriter, *http.Request) {}
