package akamaitest_test

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/akamai/AkamaiOPEN-edgegrid-golang/v8/pkg/edgegrid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends/akamai/akamaitest"
)

func TestSignatureChecks(t *testing.T) {
	srv := newServer(t)
	body := objects("https://www.example.com/")
	good := signer(srv)

	zeroMaxBody := good
	zeroMaxBody.MaxBody = 0 // the documented pitfall: the empty body's hash is signed

	wrongSecret := good
	wrongSecret.ClientSecret = "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI="
	wrongClient := good
	wrongClient.ClientToken = "akab-not-the-client-token"
	wrongAccess := good
	wrongAccess.AccessToken = "akab-not-the-access-token"

	tests := []struct {
		name   string
		sign   func(*http.Request)
		want   int
		detail string
	}{
		{"edgegrid with MaxBody", good.SignRequest, http.StatusCreated, "Request accepted"},
		{"edgegrid with MaxBody 0", zeroMaxBody.SignRequest, http.StatusUnauthorized, "The signature does not match"},
		{"wrong secret", wrongSecret.SignRequest, http.StatusUnauthorized, "The signature does not match"},
		{"unknown client token", wrongClient.SignRequest, http.StatusUnauthorized, "Invalid authorization client token"},
		{"unknown access token", wrongAccess.SignRequest, http.StatusUnauthorized, "Invalid authorization access token"},
		{"no Authorization", func(*http.Request) {}, http.StatusUnauthorized, "Missing authorization header"},
		{"malformed Authorization", func(r *http.Request) {
			r.Header.Set("Authorization", "EG1-HMAC-SHA256 client_token=x;signature=y")
		}, http.StatusUnauthorized, "Invalid authorization header"},
		{"tampered signature", func(r *http.Request) {
			good.SignRequest(r)
			h := r.Header.Get("Authorization")
			i := strings.LastIndex(h, "signature=") + len("signature=")
			c := byte('A')
			if h[i] == 'A' {
				c = 'B'
			}
			r.Header.Set("Authorization", h[:i]+string(c)+h[i+1:])
		}, http.StatusUnauthorized, "The signature does not match"},
		{"body changed after signing", func(r *http.Request) {
			good.SignRequest(r)
			r.Body = http.NoBody
			r.ContentLength = 0
		}, http.StatusUnauthorized, "The signature does not match"},
		{"host changed after signing", func(r *http.Request) {
			good.SignRequest(r)
			r.Host = strings.Replace(r.URL.Host, "127.0.0.1", "localhost", 1)
		}, http.StatusUnauthorized, "The signature does not match"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := do(t, srv, request{body: body, sign: tt.sign})
			require.Equal(t, tt.want, a.status, string(a.raw))
			assert.Equal(t, tt.detail, a.body.Detail)
			if tt.want == http.StatusUnauthorized {
				assertProblem(t, a, http.StatusUnauthorized, "Not authorized")
				assert.Empty(t, a.header.Get("X-Ratelimit-Remaining"), "no rate-limit headers before authentication")
			}
		})
	}
	assert.Len(t, srv.Purges(), 1)
}

// A request sent twice with the same signature (same nonce) is refused the
// second time.
func TestReplayedNonce(t *testing.T) {
	srv := newServer(t)
	var auth string
	first := do(t, srv, request{body: objects("https://www.example.com/"), sign: func(r *http.Request) {
		signer(srv).SignRequest(r)
		auth = r.Header.Get("Authorization")
	}})
	require.Equal(t, http.StatusCreated, first.status)
	again := do(t, srv, request{body: objects("https://www.example.com/"), sign: func(r *http.Request) {
		r.Header.Set("Authorization", auth)
	}})
	assertProblem(t, again, http.StatusUnauthorized, "Not authorized")
	assert.Contains(t, again.body.Detail, "nonce")
}

// The signing library stamps requests with real time; the fake compares with
// its WithNow clock. The exact 30-second boundary is tested with Akamai's
// vectors in edgegrid_test.go.
func TestClockSkew(t *testing.T) {
	for _, tt := range []struct {
		name   string
		offset time.Duration
		want   int
	}{
		{"server 31s ahead", 31 * time.Second, http.StatusBadRequest},
		{"server 29s behind", -29 * time.Second, http.StatusCreated},
		{"server 2m behind", -2 * time.Minute, http.StatusBadRequest},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, akamaitest.WithNow(func() time.Time { return time.Now().Add(tt.offset) }))
			a := post(t, srv, urlPath, objects("https://www.example.com/"))
			require.Equal(t, tt.want, a.status, string(a.raw))
			if tt.want == http.StatusBadRequest {
				assertProblem(t, a, http.StatusBadRequest, "")
				assert.Equal(t, "Invalid timestamp", a.body.Detail)
			}
		})
	}
}

func TestHeadersToSign(t *testing.T) {
	srv := newServer(t, akamaitest.WithHeadersToSign("X-A", "X-B"))
	withHeaders := func(a, b string, sign edgegrid.Config) func(*http.Request) {
		return func(r *http.Request) {
			r.Header.Set("X-A", a)
			r.Header.Set("X-B", b)
			sign.SignRequest(r)
		}
	}
	signs := signer(srv)
	signs.HeaderToSign = []string{"X-A", "X-B"}
	body := objects("https://www.example.com/")

	assert.Equal(t, 201, do(t, srv, request{body: body, sign: withHeaders("one", "two  words", signs)}).status)
	assert.Equal(t, 401, do(t, srv, request{body: body, sign: withHeaders("one", "two", signer(srv))}).status,
		"headers the server signs must be signed")
	// The Go library lower-cases signed header values; Akamai's reference
	// signers, and so the fake, keep their case.
	assert.Equal(t, 401, do(t, srv, request{body: body, sign: withHeaders("One", "two", signs)}).status)

	// The .edgerc carries headers_to_sign.
	file := filepath.Join(t.TempDir(), ".edgerc")
	require.NoError(t, srv.WriteEdgerc(file, "ccu"))
	cfg, err := edgegrid.New(edgegrid.WithFile(file), edgegrid.WithSection("ccu"))
	require.NoError(t, err)
	assert.Equal(t, []string{"X-A", "X-B"}, cfg.HeaderToSign)
	assert.Equal(t, 201, do(t, srv, request{body: body, sign: withHeaders("a", "b", *cfg)}).status)
}
