package akamaitest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/akamai/AkamaiOPEN-edgegrid-golang/v8/pkg/edgegrid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/gormpurge/gormpurge/backends/akamai"
	"github.com/gormpurge/gormpurge/backends/akamai/akamaitest"
)

// Close stops every server, its connections and the clients' idle ones: no
// goroutine may outlive the tests.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newServer(t *testing.T, opts ...akamaitest.Option) *akamaitest.Server {
	t.Helper()
	srv := akamaitest.NewServer(opts...)
	t.Cleanup(srv.Close)
	return srv
}

// signer returns the EdgeGrid configuration a client of srv uses, with
// MaxBody set as it must be.
func signer(srv *akamaitest.Server) edgegrid.Config {
	c := srv.Credentials()
	return edgegrid.Config{
		Host:         c.Host,
		ClientToken:  c.ClientToken,
		ClientSecret: c.ClientSecret,
		AccessToken:  c.AccessToken,
		MaxBody:      edgegrid.MaxBodySize,
	}
}

// answer is a response of the fake.
type answer struct {
	status int
	header http.Header
	raw    []byte
	body   body
	keys   map[string]any
}

// body is every field a Fast Purge response may have.
type body struct {
	HTTPStatus                  int    `json:"httpStatus"`
	Title                       string `json:"title"`
	Detail                      string `json:"detail"`
	SupportID                   string `json:"supportId"`
	DescribedBy                 string `json:"describedBy"`
	PurgeID                     string `json:"purgeId"`
	EstimatedSeconds            int    `json:"estimatedSeconds"`
	RateLimit                   *int   `json:"rateLimit"`
	RateLimitCurrentRequestSize *int   `json:"rateLimitCurrentRequestSize"`
	RateLimitRemaining          *int   `json:"rateLimitRemaining"`
}

// request describes a call to the fake; zero fields take defaults.
type request struct {
	method      string // POST
	path        string // /ccu/v3/invalidate/url/production
	contentType string // application/json; "-" for none
	body        string
	sign        func(*http.Request) // signer(srv).SignRequest
}

func do(t *testing.T, srv *akamaitest.Server, r request) answer {
	t.Helper()
	if r.method == "" {
		r.method = http.MethodPost
	}
	if r.path == "" {
		r.path = akamai.Path(akamai.Invalidate, akamai.KindURL, akamai.Production)
	}
	req, err := http.NewRequest(r.method, srv.URL()+r.path, strings.NewReader(r.body))
	require.NoError(t, err)
	switch r.contentType {
	case "":
		req.Header.Set("Content-Type", "application/json")
	case "-":
	default:
		req.Header.Set("Content-Type", r.contentType)
	}
	if r.sign == nil {
		r.sign = signer(srv).SignRequest
	}
	r.sign(req)
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	a := answer{status: resp.StatusCode, header: resp.Header, raw: raw}
	require.NoError(t, json.Unmarshal(raw, &a.body), string(raw))
	require.NoError(t, json.Unmarshal(raw, &a.keys), string(raw))
	return a
}

// post sends body to path, signed and as JSON.
func post(t *testing.T, srv *akamaitest.Server, path, body string) answer {
	t.Helper()
	return do(t, srv, request{path: path, body: body})
}

func objects(items ...string) string {
	b, _ := json.Marshal(map[string][]string{"objects": items})
	return string(b)
}

func path(a akamai.Action, k akamai.Kind, n akamai.Network) string { return akamai.Path(a, k, n) }

var (
	urlPath    = path(akamai.Invalidate, akamai.KindURL, akamai.Production)
	tagPath    = path(akamai.Invalidate, akamai.KindTag, akamai.Production)
	cpcodePath = path(akamai.Invalidate, akamai.KindCPCode, akamai.Production)
)

func assertProblem(t *testing.T, a answer, status int, title string) {
	t.Helper()
	require.Equal(t, status, a.status, string(a.raw))
	wantType := "application/problem+json"
	if status == http.StatusTooManyRequests || status >= 500 {
		wantType = "application/json"
	}
	assert.Equal(t, wantType, a.header.Get("Content-Type"))
	assert.Equal(t, status, a.body.HTTPStatus)
	if title != "" {
		assert.Equal(t, title, a.body.Title)
	}
	assert.NotEmpty(t, a.body.SupportID)
	assert.Equal(t, describedBy, a.body.DescribedBy)
	assert.Contains(t, a.keys, "detail")
}

// remaining returns the X-Ratelimit-Remaining (suffix "") or
// -Remaining-Objects (suffix "-Objects") header of a.
func remaining(t *testing.T, a answer, suffix string) string {
	t.Helper()
	v := a.header.Get("X-Ratelimit-Remaining" + suffix)
	require.NotEmpty(t, v)
	return v
}

const describedBy = "https://techdocs.akamai.com/purge-cache/reference/api-errors"
