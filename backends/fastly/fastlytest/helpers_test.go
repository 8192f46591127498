package fastlytest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/gormpurge/gormpurge/backends/fastly/fastlytest"
)

// Close stops every server, its connections and the clients' idle ones: no
// goroutine may outlive the tests.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newServer(t *testing.T, opts ...fastlytest.Option) *fastlytest.Server {
	t.Helper()
	srv := fastlytest.NewServer(opts...)
	t.Cleanup(srv.Close)
	return srv
}

// answer is a response of the fake.
type answer struct {
	status int
	header http.Header
	body   map[string]any
}

// post sends a POST to the fake at path (the request URI) with the given
// headers and body, and reads the answer.
func post(t *testing.T, srv *fastlytest.Server, path string, header map[string]string, body string) answer {
	t.Helper()
	return do(t, srv, http.MethodPost, path, header, body)
}

func do(t *testing.T, srv *fastlytest.Server, method, path string, header map[string]string, body string) answer {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, srv.URL()+path, strings.NewReader(body))
	require.NoError(t, err)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	a := answer{status: resp.StatusCode, header: resp.Header}
	require.NoError(t, json.Unmarshal(raw, &a.body), "every answer is JSON: %s", raw)
	return a
}

// key returns the Fastly-Key header of srv's token, plus extra headers.
func key(srv *fastlytest.Server, extra ...string) map[string]string {
	h := map[string]string{"Fastly-Key": srv.Token()}
	for i := 0; i+1 < len(extra); i += 2 {
		h[extra[i]] = extra[i+1]
	}
	return h
}
