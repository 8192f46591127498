package cloudfront_test

import (
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/gormpurge/gormpurge/backends/cloudfront"
	"github.com/gormpurge/gormpurge/backends/cloudfront/cloudfronttest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var quiet = slog.New(slog.DiscardHandler)

// newFake starts a fake CloudFront API, stopped at cleanup.
func newFake(t testing.TB, opts ...cloudfronttest.Option) *cloudfronttest.Server {
	t.Helper()
	srv := cloudfronttest.NewServer(opts...)
	t.Cleanup(srv.Close)
	return srv
}

// fakeOptions point a backend at srv's first distribution.
func fakeOptions(srv *cloudfronttest.Server) []cloudfront.Option {
	return []cloudfront.Option{
		cloudfront.WithDistribution(srv.Distribution()),
		cloudfront.WithAWSConfig(srv.AWSConfig()),
		cloudfront.WithEndpoint(srv.URL()),
		cloudfront.WithWaitPoll(5 * time.Millisecond),
		cloudfront.WithLogger(quiet),
	}
}

// newBackend returns a backend for srv with opts added, closed at cleanup.
func newBackend(t testing.TB, srv *cloudfronttest.Server, opts ...cloudfront.Option) *cloudfront.Backend {
	t.Helper()
	b, err := cloudfront.New(t.Context(), append(fakeOptions(srv), opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close(t.Context()) })
	return b
}

// roundTripFunc is an http.RoundTripper calling itself.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
