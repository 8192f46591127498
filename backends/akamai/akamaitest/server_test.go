package akamaitest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/akamai/AkamaiOPEN-edgegrid-golang/v8/pkg/edgegrid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends/akamai"
	"github.com/gormpurge/gormpurge/backends/akamai/akamaitest"
	"github.com/gormpurge/gormpurge/internal/testclock"
)

const describedBy = "https://techdocs.akamai.com/purge-cache/reference/api-errors"

func TestAcceptsEveryEndpoint(t *testing.T) {
	srv := newServer(t)
	bodies := map[akamai.Kind]string{
		akamai.KindURL:    objects("https://www.example.com/a", "http://www.example.com/b?x=1"),
		akamai.KindTag:    objects("black-friday", "electronics"),
		akamai.KindCPCode: `{"objects":[12345,98765]}`,
	}
	want := map[akamai.Kind][]string{
		akamai.KindURL:    {"https://www.example.com/a", "http://www.example.com/b?x=1"},
		akamai.KindTag:    {"black-friday", "electronics"},
		akamai.KindCPCode: {"12345", "98765"},
	}
	prefix := map[akamai.Kind]string{akamai.KindURL: "edup-", akamai.KindTag: "edtp-", akamai.KindCPCode: "edcp-"}
	ids := map[string]bool{}
	var wantPurges []akamaitest.Purge
	for _, action := range []akamai.Action{akamai.Invalidate, akamai.Delete} {
		for _, kind := range []akamai.Kind{akamai.KindURL, akamai.KindTag, akamai.KindCPCode} {
			for _, network := range []akamai.Network{akamai.Production, akamai.Staging, ""} {
				p := "/ccu/v3/" + string(action) + "/" + string(kind)
				if network != "" {
					p += "/" + string(network)
				}
				t.Run(p, func(t *testing.T) {
					a := post(t, srv, p, bodies[kind])
					require.Equal(t, http.StatusCreated, a.status, string(a.raw))
					assert.Equal(t, "application/json", a.header.Get("Content-Type"))
					assert.Equal(t, http.StatusCreated, a.body.HTTPStatus)
					assert.Equal(t, 5, a.body.EstimatedSeconds)
					assert.Equal(t, "Request accepted", a.body.Detail)
					assert.True(t, strings.HasPrefix(a.body.PurgeID, prefix[kind]), a.body.PurgeID)
					assert.Len(t, a.body.PurgeID, len("edcp-NZbXzFpHBjcJeryhw6PVgG"))
					assert.Equal(t, a.body.PurgeID, a.body.SupportID)
					assert.False(t, ids[a.body.PurgeID], "purge IDs are unique")
					ids[a.body.PurgeID] = true
					for _, h := range []string{"Limit", "Remaining", "Limit-Per-Second", "Seconds-To-Refresh-Limit"} {
						assert.NotEmpty(t, a.header.Get("X-Ratelimit-"+h), h)
						assert.NotEmpty(t, a.header.Get("X-Ratelimit-"+h+"-Objects"), h+"-Objects")
					}
					n := network
					if n == "" {
						n = akamai.Production
					}
					wantPurges = append(wantPurges, akamaitest.Purge{
						Action: action, Network: n, Kind: kind, Objects: want[kind],
						PurgeID: a.body.PurgeID, SupportID: a.body.PurgeID, BodyBytes: len(bodies[kind]),
					})
				})
			}
		}
	}
	got := srv.Purges()
	for i := range got {
		assert.False(t, got[i].At.IsZero())
		got[i].At = time.Time{}
	}
	assert.Equal(t, wantPurges, got)
	assert.Equal(t, map[int]int{http.StatusCreated: 18}, srv.Responses())
}

// The fake's bodies have the fields of Akamai's examples, and its headers
// are those of the documented rate-limit headers.
func TestShapesMatchAkamaiExamples(t *testing.T) {
	keysOf := func(t *testing.T, file string) []string {
		data, err := os.ReadFile(filepath.Join("testdata", "ccu-v3", file))
		require.NoError(t, err)
		var m map[string]any
		require.NoError(t, json.Unmarshal(data, &m))
		return sortedKeys(m)
	}
	srv := newServer(t,
		akamaitest.WithRateLimits(akamai.RateLimits{URLs: akamai.Bucket{Burst: 1, PerSecond: 1}}),
		akamaitest.WithAuthorizedHosts("www.example.com"))

	ok := post(t, srv, urlPath, objects("https://www.example.com/"))
	require.Equal(t, http.StatusCreated, ok.status)
	assert.Equal(t, keysOf(t, "201.json"), sortedKeys(ok.keys))

	var headers map[string]any
	data, err := os.ReadFile("testdata/ccu-v3/headers.json")
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &headers))
	var got []string
	for k := range ok.header {
		if strings.HasPrefix(k, "X-Ratelimit-") {
			got = append(got, k)
		}
	}
	assert.ElementsMatch(t, sortedKeys(headers), got)

	tooMany := post(t, srv, urlPath, objects("https://www.example.com/"))
	require.Equal(t, http.StatusTooManyRequests, tooMany.status)
	assert.Equal(t, keysOf(t, "url-429.json"), sortedKeys(tooMany.keys))

	forbidden := post(t, srv, urlPath, objects("http://fpj-test.bad-ideas2.org/"))
	require.Equal(t, http.StatusForbidden, forbidden.status)
	assert.Equal(t, keysOf(t, "403.json"), sortedKeys(forbidden.keys))

	srv.FailNext(http.StatusInternalServerError, 1)
	internal := post(t, srv, urlPath, objects("https://www.example.com/"))
	require.Equal(t, http.StatusInternalServerError, internal.status)
	assert.Equal(t, keysOf(t, "500.json"), sortedKeys(internal.keys))
	var example map[string]any
	data, err = os.ReadFile("testdata/ccu-v3/500.json")
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &example))
	assert.Equal(t, example["title"], internal.body.Title)
	assert.Equal(t, example["detail"], internal.body.Detail)
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

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

func TestMethodAndPath(t *testing.T) {
	srv := newServer(t)
	for _, method := range []string{http.MethodGet, http.MethodPut, http.MethodDelete, http.MethodPatch} {
		t.Run(method, func(t *testing.T) {
			a := do(t, srv, request{method: method, path: urlPath, body: objects("https://www.example.com/")})
			assertProblem(t, a, http.StatusMethodNotAllowed, "")
			assert.Equal(t, http.MethodPost, a.header.Get("Allow"))
			assert.NotEmpty(t, a.header.Get("X-Ratelimit-Remaining-Objects"))
		})
	}
	for _, p := range []string{
		"/",
		"/ccu/v2/queues/default",
		"/ccu/v3/invalidate",
		"/ccu/v3/invalidate/url/",
		"/ccu/v3/invalidate/url/prod",
		"/ccu/v3/invalidate/urls",
		"/ccu/v3/remove/url/production",
		"/ccu/v3/invalidate/url/production/extra",
		"/ccu/v3/rate-limit-status/url",
		"/CCU/v3/invalidate/url",
	} {
		t.Run(p, func(t *testing.T) {
			a := post(t, srv, p, objects("https://www.example.com/"))
			assertProblem(t, a, http.StatusNotFound, "not found")
			assert.NotEmpty(t, a.header.Get("X-Ratelimit-Remaining"))
		})
	}
	assert.Empty(t, srv.Purges())
}

func TestContentType(t *testing.T) {
	srv := newServer(t)
	for _, tt := range []struct {
		contentType string
		want        int
	}{
		{"-", http.StatusUnsupportedMediaType},
		{"text/plain", http.StatusUnsupportedMediaType},
		{"application/x-www-form-urlencoded", http.StatusUnsupportedMediaType},
		{"application/problem+json", http.StatusUnsupportedMediaType},
		{"application/json; charset=utf-8", http.StatusCreated},
		{"Application/JSON", http.StatusCreated},
	} {
		t.Run(tt.contentType, func(t *testing.T) {
			a := do(t, srv, request{contentType: tt.contentType, body: objects("https://www.example.com/")})
			if tt.want == http.StatusCreated {
				require.Equal(t, tt.want, a.status, string(a.raw))
			} else {
				assertProblem(t, a, tt.want, "unsupported media type")
			}
		})
	}
}

func TestBodySize(t *testing.T) {
	srv := newServer(t)
	base := objects("https://www.example.com/")
	pad := func(n int) string { return base + strings.Repeat(" ", n-len(base)) } // JSON allows trailing white space

	a := post(t, srv, urlPath, pad(akamai.MaxBodyBytes))
	require.Equal(t, http.StatusCreated, a.status, string(a.raw))

	a = post(t, srv, urlPath, pad(akamai.MaxBodyBytes+1))
	assertProblem(t, a, http.StatusRequestEntityTooLarge, "request entity too large")
	assert.NotEmpty(t, a.header.Get("X-Ratelimit-Remaining-Objects"))

	// A body larger than the signature's max_body is still verified (on
	// its first max_body bytes) before it is refused as too large.
	a = post(t, srv, urlPath, pad(edgegrid.MaxBodySize+10))
	assertProblem(t, a, http.StatusRequestEntityTooLarge, "")

	require.Len(t, srv.Purges(), 1)
	assert.Equal(t, akamai.MaxBodyBytes, srv.Purges()[0].BodyBytes)
	assert.Equal(t, map[int]int{http.StatusCreated: 1, http.StatusRequestEntityTooLarge: 2}, srv.Responses())
}

func TestSchema(t *testing.T) {
	srv := newServer(t)
	long := strings.Repeat("t", 128)
	tests := []struct {
		name   string
		kind   akamai.Kind
		body   string
		want   int
		title  string
		detail string // contained in the detail
	}{
		// Accepted.
		{"url", akamai.KindURL, objects("https://www.example.com/a?b=c#d"), 201, "", ""},
		{"url with port", akamai.KindURL, objects("https://www.example.com:8443/a"), 201, "", ""},
		{"percent-encoded url", akamai.KindURL, objects("https://www.example.com/caf%C3%A9"), 201, "", ""},
		{"upper-case scheme", akamai.KindURL, objects("HTTPS://www.example.com/"), 201, "", ""},
		{"arl", akamai.KindURL, `{"objects":["/L/512/6848/1h/www.example1.com/","/L/512/6849/1h/www.example2.com/"]}`, 201, "", ""},
		{"hostname and paths", akamai.KindURL, `{"hostname":"origin.qux.com","objects":["/some/path/object1","/some/other/path/object2"]}`, 201, "", ""},
		{"128-character tag", akamai.KindTag, objects(long), 201, "", ""},
		{"tag with dots and dashes", akamai.KindTag, objects("a.b-c_d~e!f#g$h%i&j'k+l.m|n^o`p"), 201, "", ""},
		{"cp codes", akamai.KindCPCode, `{"objects": [ 1, 2147483647 ] }`, 201, "", ""},

		// Malformed.
		{"not json", akamai.KindURL, `{"objects":`, 400, "bad request", ""},
		{"not an object", akamai.KindURL, `["https://www.example.com/"]`, 400, "bad request", ""},
		{"null", akamai.KindURL, `null`, 400, "bad request", ""},
		{"trailing data", akamai.KindURL, objects("https://www.example.com/") + "x", 400, "bad request", ""},
		{"empty body", akamai.KindURL, ``, 400, "bad request", ""},

		// Schema.
		{"extra key", akamai.KindURL, `{"objects":["https://www.example.com/"],"action":"remove"}`, 400, "invalid attribute", "action"},
		{"hostname on a tag request", akamai.KindTag, `{"hostname":"www.example.com","objects":["t"]}`, 400, "invalid attribute", "hostname"},
		{"hostname on a cpcode request", akamai.KindCPCode, `{"hostname":"www.example.com","objects":[1]}`, 400, "invalid attribute", "hostname"},
		{"no objects", akamai.KindURL, `{}`, 400, "invalid attribute", "objects"},
		{"objects not an array", akamai.KindURL, `{"objects":"https://www.example.com/"}`, 400, "invalid attribute", "array"},
		{"objects null", akamai.KindURL, `{"objects":null}`, 400, "invalid attribute", "array"},
		{"empty objects", akamai.KindURL, `{"objects":[]}`, 400, "invalid attribute", "empty"},
		{"number as url", akamai.KindURL, `{"objects":[12345]}`, 400, "invalid attribute", "objects[0]"},
		{"null as url", akamai.KindURL, `{"objects":["https://www.example.com/",null]}`, 400, "invalid attribute", "objects[1]"},
		{"bool as tag", akamai.KindTag, `{"objects":[true]}`, 400, "invalid attribute", "objects[0]"},
		{"string as cp code", akamai.KindCPCode, `{"objects":["12345"]}`, 400, "invalid attribute", "objects[0]"},
		{"fraction as cp code", akamai.KindCPCode, `{"objects":[1.5]}`, 400, "invalid attribute", "objects[0]"},
		{"exponent as cp code", akamai.KindCPCode, `{"objects":[1e3]}`, 400, "invalid attribute", "objects[0]"},
		{"negative cp code", akamai.KindCPCode, `{"objects":[-1]}`, 400, "invalid attribute", "objects[0]"},
		{"zero cp code", akamai.KindCPCode, `{"objects":[0]}`, 400, "invalid attribute", "objects[0]"},
		{"hostname not a string", akamai.KindURL, `{"hostname":1,"objects":["/a"]}`, 400, "invalid attribute", "hostname"},

		// URLs.
		{"no scheme", akamai.KindURL, objects("www.example.com/a"), 400, "bad URL", "www.example.com/a"},
		{"ftp", akamai.KindURL, objects("ftp://www.example.com/a"), 400, "bad URL", "ftp://www.example.com/a"},
		{"no host", akamai.KindURL, objects("https:///a"), 400, "bad URL", "https:///a"},
		{"space in host", akamai.KindURL, objects("https://www.exa mple.com/"), 400, "bad URL", "https://www.exa mple.com/"},
		{"space in path", akamai.KindURL, objects("https://www.example.com/a b"), 400, "bad URL", "https://www.example.com/a b"},
		{"non-ASCII path", akamai.KindURL, objects("https://www.example.com/café"), 400, "bad URL", "https://www.example.com/café"},
		{"non-ASCII host", akamai.KindURL, objects("https://bücher.example/"), 400, "bad URL", "https://bücher.example/"},
		{"escaped non-ASCII", akamai.KindURL, `{"objects":["https://www.example.com/caf\u00e9"]}`, 400, "bad URL", "https://www.example.com/café"},
		{"control character", akamai.KindURL, `{"objects":["https://www.example.com/a\tb"]}`, 400, "bad URL", "https://www.example.com/a\tb"},
		{"bad port", akamai.KindURL, objects("https://www.example.com:99999/"), 400, "bad URL", "99999"},
		{"user info", akamai.KindURL, objects("https://user:pw@www.example.com/"), 400, "bad URL", "www.example.com"},
		{"second url bad", akamai.KindURL, objects("https://www.example.com/ok", "https://www.example.com/not ok"), 400, "bad URL", "https://www.example.com/not ok"},
		{"path without hostname", akamai.KindURL, objects("/a/b"), 400, "bad URL", "/a/b"},
		{"url with hostname", akamai.KindURL, `{"hostname":"www.example.com","objects":["https://www.example.com/a"]}`, 400, "bad URL", "https://www.example.com/a"},
		{"bad hostname", akamai.KindURL, `{"hostname":"bad host","objects":["/a"]}`, 400, "bad URL hostname", "Invalid or malformed hostname"},
		{"empty hostname", akamai.KindURL, `{"hostname":"","objects":["/a"]}`, 400, "bad URL hostname", ""},

		// Tags.
		{"empty tag", akamai.KindTag, objects(""), 400, "bad tag", ""},
		{"129-character tag", akamai.KindTag, objects(long + "t"), 400, "bad tag", long},
		{"non-ASCII tag", akamai.KindTag, objects("café"), 400, "bad tag", "café"},
	}
	for _, c := range ` ,"=()?;/[]<>*@\{}:` {
		tests = append(tests, struct {
			name   string
			kind   akamai.Kind
			body   string
			want   int
			title  string
			detail string
		}{fmt.Sprintf("tag with %q", c), akamai.KindTag, objects("a" + string(c) + "b"), 400, "bad tag", "a" + string(c) + "b"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := post(t, srv, path(akamai.Invalidate, tt.kind, akamai.Production), tt.body)
			if tt.want == http.StatusCreated {
				require.Equal(t, http.StatusCreated, a.status, string(a.raw))
				return
			}
			assertProblem(t, a, tt.want, tt.title)
			assert.Contains(t, a.body.Detail, tt.detail)
			assert.NotEmpty(t, a.header.Get("X-Ratelimit-Remaining-Objects"))
		})
	}
}

// A "bad URL" or "unauthorized arl" detail is the object itself, so that a
// client can find it in its batch.
func TestBadURLDetailIsTheObject(t *testing.T) {
	srv := newServer(t)
	a := post(t, srv, urlPath, objects("https://www.example.com/a b"))
	assertProblem(t, a, http.StatusBadRequest, "bad URL")
	assert.Equal(t, "https://www.example.com/a b", a.body.Detail)
}

func TestAuthorizedHosts(t *testing.T) {
	srv := newServer(t, akamaitest.WithAuthorizedHosts("www.example.com", "Static.Example.com"))
	tests := []struct {
		name   string
		path   string
		body   string
		want   int
		detail string
	}{
		{"authorised", urlPath, objects("https://www.example.com/a"), 201, ""},
		{"authorised, any case and port", urlPath, objects("http://WWW.example.com:8080/a", "https://static.example.com/b"), 201, ""},
		{"one unauthorised", urlPath, objects("https://www.example.com/a", "http://fpj-test.bad-ideas2.org/"), 403, "http://fpj-test.bad-ideas2.org/"},
		{"subdomain is another host", urlPath, objects("https://a.www.example.com/"), 403, "https://a.www.example.com/"},
		{"hostname form", urlPath, `{"hostname":"other.example.com","objects":["/a"]}`, 403, "https://other.example.com/a"},
		{"hostname form authorised", urlPath, `{"hostname":"www.example.com","objects":["/a"]}`, 201, ""},
		{"arl of another origin", urlPath, objects("/L/512/6848/1h/origin.example.net/a"), 403, "/L/512/6848/1h/origin.example.net/a"},
		{"tags are not checked", tagPath, objects("t"), 201, ""},
		{"cp codes are not checked", cpcodePath, `{"objects":[1]}`, 201, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := post(t, srv, tt.path, tt.body)
			if tt.want == http.StatusCreated {
				require.Equal(t, tt.want, a.status, string(a.raw))
				return
			}
			assertProblem(t, a, http.StatusForbidden, "unauthorized arl")
			assert.Equal(t, tt.detail, a.body.Detail)
		})
	}

	none := newServer(t, akamaitest.WithAuthorizedHosts())
	assertProblem(t, post(t, none, urlPath, objects("https://www.example.com/")), http.StatusForbidden, "unauthorized arl")
}

// remaining returns the X-Ratelimit-Remaining (suffix "") or
// -Remaining-Objects (suffix "-Objects") header of a.
func remaining(t *testing.T, a answer, suffix string) string {
	t.Helper()
	v := a.header.Get("X-Ratelimit-Remaining" + suffix)
	require.NotEmpty(t, v)
	return v
}

func TestObjectBucket(t *testing.T) {
	clock := testclock.New()
	srv := newServer(t, akamaitest.WithClock(clock),
		akamaitest.WithRateLimits(akamai.RateLimits{URLs: akamai.Bucket{Burst: 3, PerSecond: 1}}))
	u := func(n int) string {
		var items []string
		for i := range n {
			items = append(items, fmt.Sprintf("https://www.example.com/%d", i))
		}
		return objects(items...)
	}

	a := post(t, srv, urlPath, u(2))
	require.Equal(t, http.StatusCreated, a.status)
	assert.Equal(t, "99", remaining(t, a, ""))
	assert.Equal(t, "1", remaining(t, a, "-Objects"))

	a = post(t, srv, urlPath, u(2))
	assertProblem(t, a, http.StatusTooManyRequests, "URL Rate Limit exceeded")
	assert.Equal(t, "", a.body.Detail)
	assert.True(t, strings.HasPrefix(a.body.SupportID, "edup-"), a.body.SupportID)
	assert.Equal(t, 3, *a.body.RateLimit)
	assert.Equal(t, 2, *a.body.RateLimitCurrentRequestSize)
	assert.Equal(t, 1, *a.body.RateLimitRemaining)
	assert.Equal(t, http.Header{
		"X-Ratelimit-Limit":                            {"100"},
		"X-Ratelimit-Limit-Per-Second":                 {"50.00"},
		"X-Ratelimit-Remaining":                        {"99"}, // the refused request spent nothing
		"X-Ratelimit-Seconds-To-Refresh-Limit":         {"0.020000"},
		"X-Ratelimit-Limit-Objects":                    {"3"},
		"X-Ratelimit-Limit-Per-Second-Objects":         {"1.00"},
		"X-Ratelimit-Remaining-Objects":                {"1"},
		"X-Ratelimit-Seconds-To-Refresh-Limit-Objects": {"2.000000"},
	}, rateHeaders(a.header))
	assert.Empty(t, a.header.Get("Retry-After"), "Akamai documents no Retry-After")

	// Nothing was spent: one object still fits.
	a = post(t, srv, urlPath, u(1))
	require.Equal(t, http.StatusCreated, a.status)
	assert.Equal(t, "98", remaining(t, a, ""))
	assert.Equal(t, "0", remaining(t, a, "-Objects"))

	// The wait computed from the headers is enough, and not much more.
	wait := waitFor(t, a.header, 2)
	assert.Equal(t, 2*time.Second, wait)
	clock.Advance(wait - time.Millisecond)
	a = post(t, srv, urlPath, u(2))
	require.Equal(t, http.StatusTooManyRequests, a.status)
	clock.Advance(time.Millisecond)
	a = post(t, srv, urlPath, u(2))
	require.Equal(t, http.StatusCreated, a.status, string(a.raw))

	assert.Equal(t, map[int]int{201: 3, 429: 2}, srv.Responses())
	assert.Len(t, srv.Objects(akamai.KindURL), 5)
}

func TestRequestBucket(t *testing.T) {
	clock := testclock.New()
	srv := newServer(t, akamaitest.WithClock(clock),
		akamaitest.WithRateLimits(akamai.RateLimits{Requests: akamai.Bucket{Burst: 2, PerSecond: 0.5}}))
	for range 2 {
		require.Equal(t, http.StatusCreated, post(t, srv, tagPath, objects("t")).status)
	}
	a := post(t, srv, tagPath, objects("t"))
	assertProblem(t, a, http.StatusTooManyRequests, "Rate Limit exceeded")
	assert.Equal(t, 2, *a.body.RateLimit)
	assert.Equal(t, 1, *a.body.RateLimitCurrentRequestSize)
	assert.Equal(t, 0, *a.body.RateLimitRemaining)
	assert.Equal(t, "0", remaining(t, a, ""))
	assert.Equal(t, "4.000000", a.header.Get("X-Ratelimit-Seconds-To-Refresh-Limit"))
	assert.Equal(t, "0.50", a.header.Get("X-Ratelimit-Limit-Per-Second"))
	assert.Equal(t, "4998", remaining(t, a, "-Objects"), "the tag bucket is untouched by the refused request")

	clock.Advance(waitFor(t, a.header, 1))
	require.Equal(t, http.StatusCreated, post(t, srv, tagPath, objects("t")).status)
}

// Akamai's published limits, as in its examples.
func TestPublishedBuckets(t *testing.T) {
	clock := testclock.New()
	srv := newServer(t, akamaitest.WithClock(clock))
	assert.Equal(t, akamai.PublishedRateLimits(), srv.Limits())

	var tags []string
	for i := range 5000 {
		tags = append(tags, fmt.Sprintf("t%d", i))
	}
	a := post(t, srv, tagPath, objects(tags...))
	require.Equal(t, http.StatusCreated, a.status, string(a.raw))
	assert.Equal(t, "5000", a.header.Get("X-Ratelimit-Limit-Objects"))
	assert.Equal(t, "8.333333", a.header.Get("X-Ratelimit-Limit-Per-Second-Objects"))
	assert.Equal(t, "0", remaining(t, a, "-Objects"))
	assert.Equal(t, "600.000000", a.header.Get("X-Ratelimit-Seconds-To-Refresh-Limit-Objects"))

	a = post(t, srv, tagPath, objects("one-more"))
	assertProblem(t, a, http.StatusTooManyRequests, "TAG Rate Limit exceeded")
	assert.True(t, strings.HasPrefix(a.body.SupportID, "edtp-"), a.body.SupportID)
	assert.Equal(t, []int{5000, 1, 0}, []int{*a.body.RateLimit, *a.body.RateLimitCurrentRequestSize, *a.body.RateLimitRemaining})

	clock.Advance(waitFor(t, a.header, 1))
	require.Equal(t, http.StatusCreated, post(t, srv, tagPath, objects("one-more")).status)

	// More CP codes than the bucket holds never fit.
	cps := make([]int, 301)
	for i := range cps {
		cps[i] = i + 1
	}
	b, _ := json.Marshal(map[string][]int{"objects": cps})
	a = post(t, srv, cpcodePath, string(b))
	assertProblem(t, a, http.StatusTooManyRequests, "CPCODE Rate Limit exceeded")
	assert.True(t, strings.HasPrefix(a.body.SupportID, "edcp-"), a.body.SupportID)
	assert.Equal(t, []int{300, 301, 300}, []int{*a.body.RateLimit, *a.body.RateLimitCurrentRequestSize, *a.body.RateLimitRemaining})
	assert.Equal(t, "0.50", a.header.Get("X-Ratelimit-Limit-Per-Second-Objects"))
	assert.Equal(t, "10000", post(t, srv, urlPath, objects("https://www.example.com/")).header.Get("X-Ratelimit-Limit-Objects"))
}

func rateHeaders(h http.Header) http.Header {
	out := http.Header{}
	for k, v := range h {
		if strings.HasPrefix(k, "X-Ratelimit-") {
			out[k] = v
		}
	}
	return out
}

// waitFor is how a client computes, from the headers of the last response,
// how long to wait before a request of n objects: the longer of the waits
// for one request token and for n object tokens.
func waitFor(t *testing.T, h http.Header, n int) time.Duration {
	t.Helper()
	need := func(suffix string, n int) float64 {
		var left, rate float64
		_, err := fmt.Sscan(h.Get("X-Ratelimit-Remaining"+suffix), &left)
		require.NoError(t, err)
		_, err = fmt.Sscan(h.Get("X-Ratelimit-Limit-Per-Second"+suffix), &rate)
		require.NoError(t, err)
		return max(0, (float64(n)-left)/rate)
	}
	secs := max(need("", 1), need("-Objects", n))
	return time.Duration(secs * float64(time.Second)).Round(time.Microsecond)
}

// A client that paces itself from the headers on a ScaledClock shared with
// the fake spends minutes of Akamai time in a fraction of a second, and is
// never refused.
func TestPacingOnScaledClock(t *testing.T) {
	clock := akamaitest.NewScaledClock(2000)
	srv := newServer(t, akamaitest.WithClock(clock))
	start := clock.Now()
	cps := make([]int, 50)
	var last http.Header
	for i := range 12 {
		if last != nil {
			require.NoError(t, clock.Sleep(t.Context(), waitFor(t, last, len(cps))))
		}
		for j := range cps {
			cps[j] = i*len(cps) + j + 1
		}
		b, _ := json.Marshal(map[string][]int{"objects": cps})
		a := post(t, srv, cpcodePath, string(b))
		require.Equal(t, http.StatusCreated, a.status, "request %d: %s", i, a.raw)
		last = a.header
	}
	// 600 CP codes at 300 per burst and 30 per minute: 10 minutes.
	assert.GreaterOrEqual(t, clock.Now().Sub(start), 10*time.Minute)
	assert.Len(t, srv.Objects(akamai.KindCPCode), 600)
	assert.Equal(t, map[int]int{201: 12}, srv.Responses())
	purges := srv.Purges()
	assert.True(t, slices.IsSortedFunc(purges, func(a, b akamaitest.Purge) int { return a.At.Compare(b.At) }))
}

func TestRefillOnScaledClock(t *testing.T) {
	// Slow enough that the few real milliseconds between two requests
	// (more on a loaded machine) refill nothing that matters.
	clock := akamaitest.NewScaledClock(10)
	srv := newServer(t, akamaitest.WithClock(clock),
		akamaitest.WithRateLimits(akamai.RateLimits{CPCodes: akamai.Bucket{Burst: 2, PerSecond: 0.5}}))
	require.Equal(t, http.StatusCreated, post(t, srv, cpcodePath, `{"objects":[1,2]}`).status)
	a := post(t, srv, cpcodePath, `{"objects":[3]}`)
	require.Equal(t, http.StatusTooManyRequests, a.status)
	realStart := time.Now()
	require.NoError(t, clock.Sleep(t.Context(), waitFor(t, a.header, 1))) // 2 s on the clock, 200 ms real
	assert.Less(t, time.Since(realStart), time.Second)
	require.Equal(t, http.StatusCreated, post(t, srv, cpcodePath, `{"objects":[3]}`).status)
}

func TestFailNext(t *testing.T) {
	for _, status := range []int{400, 401, 403, 413, 429, 500, 502, 503, 504, 507} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			srv := newServer(t)
			srv.FailNext(status, 2)
			for range 2 {
				a := post(t, srv, urlPath, objects("https://www.example.com/a"))
				assertProblem(t, a, status, "")
				assert.NotEmpty(t, a.body.Title)
				if status == http.StatusUnauthorized {
					continue
				}
				assert.Equal(t, "10000", remaining(t, a, "-Objects"), "injected failures spend nothing")
				if status == http.StatusTooManyRequests {
					// Says the request bucket is empty, back in one token's time.
					assert.Equal(t, "0", remaining(t, a, ""))
					assert.Equal(t, "Rate Limit exceeded", a.body.Title)
					assert.Equal(t, []int{100, 1, 0}, []int{*a.body.RateLimit, *a.body.RateLimitCurrentRequestSize, *a.body.RateLimitRemaining})
					assert.Equal(t, "0.020000", a.header.Get("X-Ratelimit-Seconds-To-Refresh-Limit"))
				} else {
					assert.Equal(t, "100", remaining(t, a, ""), "injected failures spend nothing")
				}
				if status == http.StatusForbidden {
					assert.Equal(t, "https://www.example.com/a", a.body.Detail)
				}
			}
			a := post(t, srv, urlPath, objects("https://www.example.com/a"))
			require.Equal(t, http.StatusCreated, a.status)
			assert.Len(t, srv.Purges(), 1)
			assert.Equal(t, map[int]int{status: 2, 201: 1}, srv.Responses())
		})
	}
}

func TestFailNextQueues(t *testing.T) {
	srv := newServer(t)
	srv.FailNext(500, 1)
	srv.FailNext(429, 2)
	srv.FailNext(503, 0) // nothing
	var got []int
	for range 4 {
		got = append(got, post(t, srv, tagPath, objects("t")).status)
	}
	assert.Equal(t, []int{500, 429, 429, 201}, got)

	// A failure is taken only by a correctly signed request.
	srv.FailNext(500, 1)
	require.Equal(t, 401, do(t, srv, request{path: tagPath, body: objects("t"), sign: func(*http.Request) {}}).status)
	require.Equal(t, 500, post(t, srv, tagPath, objects("t")).status)

	assert.Panics(t, func() { srv.FailNext(99, 1) })
	assert.Panics(t, func() { srv.FailNext(600, 1) })
}

func TestRespond(t *testing.T) {
	srv := newServer(t)
	var mu sync.Mutex
	var calls []akamaitest.Call
	srv.Respond(func(c akamaitest.Call) (int, bool) {
		mu.Lock()
		calls = append(calls, c)
		mu.Unlock()
		if slices.Contains(c.Objects, "https://www.example.com/poison") {
			return http.StatusServiceUnavailable, true
		}
		return 0, false
	})
	require.Equal(t, 201, post(t, srv, urlPath, objects("https://www.example.com/a")).status)
	a := post(t, srv, path(akamai.Delete, akamai.KindURL, akamai.Staging), objects("https://www.example.com/poison"))
	assertProblem(t, a, http.StatusServiceUnavailable, "service unavailable")
	require.Equal(t, 404, post(t, srv, "/ccu/v3/nowhere", objects("x")).status)

	require.Len(t, calls, 3)
	assert.Equal(t, 1, calls[0].Seq)
	assert.Equal(t, akamaitest.Call{
		Seq: 2, Method: http.MethodPost, Path: "/ccu/v3/delete/url/staging",
		Action: akamai.Delete, Network: akamai.Staging, Kind: akamai.KindURL,
		Objects: []string{"https://www.example.com/poison"},
		Header:  calls[1].Header, Body: []byte(objects("https://www.example.com/poison")),
	}, calls[1])
	assert.NotEmpty(t, calls[1].Header.Get("Authorization"))
	assert.Equal(t, akamaitest.Call{Seq: 3, Method: http.MethodPost, Path: "/ccu/v3/nowhere",
		Header: calls[2].Header, Body: []byte(objects("x"))}, calls[2])

	srv.FailNext(500, 1) // FailNext comes first and the hook does not see it
	require.Equal(t, 500, post(t, srv, urlPath, objects("https://www.example.com/poison")).status)
	require.Len(t, calls, 3)

	srv.Respond(nil)
	require.Equal(t, 201, post(t, srv, urlPath, objects("https://www.example.com/poison")).status)
	assert.Equal(t, []string{"https://www.example.com/a", "https://www.example.com/poison"}, srv.Objects(akamai.KindURL))
}

func TestRecordsAndReset(t *testing.T) {
	clock := testclock.New()
	srv := newServer(t, akamaitest.WithClock(clock))
	require.Equal(t, 201, post(t, srv, urlPath, objects("https://www.example.com/1", "https://www.example.com/2")).status)
	clock.Advance(time.Second)
	require.Equal(t, 201, post(t, srv, path(akamai.Delete, akamai.KindTag, akamai.Staging), objects("a", "b")).status)
	require.Equal(t, 201, post(t, srv, "/ccu/v3/delete/cpcode", `{"objects":[12345, 98765]}`).status)
	require.Equal(t, 201, post(t, srv, urlPath, `{"hostname":"www.example.com","objects":["/3"]}`).status)
	require.Equal(t, 400, post(t, srv, urlPath, `{"objects":[]}`).status)

	assert.Equal(t, []string{"https://www.example.com/1", "https://www.example.com/2", "/3"}, srv.Objects(akamai.KindURL))
	assert.Equal(t, []string{"a", "b"}, srv.Objects(akamai.KindTag))
	assert.Equal(t, []string{"12345", "98765"}, srv.Objects(akamai.KindCPCode))

	purges := srv.Purges()
	require.Len(t, purges, 4)
	assert.Equal(t, clock.Now().Add(-time.Second), purges[0].At)
	assert.Equal(t, clock.Now(), purges[1].At)
	assert.Equal(t, akamaitest.Purge{
		Action: akamai.Delete, Network: akamai.Staging, Kind: akamai.KindTag, Objects: []string{"a", "b"},
		PurgeID: purges[1].PurgeID, SupportID: purges[1].PurgeID, BodyBytes: len(objects("a", "b")), At: clock.Now(),
	}, purges[1])
	assert.Equal(t, akamai.Production, purges[2].Network)
	assert.Equal(t, "www.example.com", purges[3].Hostname)

	purges[0].Objects[0] = "changed"
	assert.Equal(t, "https://www.example.com/1", srv.Purges()[0].Objects[0], "Purges returns copies")
	assert.Equal(t, map[int]int{201: 4, 400: 1}, srv.Responses())

	srv.FailNext(500, 5)
	srv.Respond(func(akamaitest.Call) (int, bool) { return 503, true })
	srv.Reset()
	assert.Empty(t, srv.Purges())
	assert.Empty(t, srv.Objects(akamai.KindURL))
	assert.Empty(t, srv.Responses())
	a := post(t, srv, urlPath, objects("https://www.example.com/"))
	require.Equal(t, 201, a.status, "Reset cancels failures and the hook")
	assert.Equal(t, "99", remaining(t, a, ""), "Reset fills the buckets")
	assert.Equal(t, "9999", remaining(t, a, "-Objects"))
}

func TestConcurrentUse(t *testing.T) {
	srv := newServer(t, akamaitest.WithRateLimits(akamai.RateLimits{Requests: akamai.Bucket{Burst: 1000, PerSecond: 1000}}))
	var wg sync.WaitGroup
	for g := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 5 {
				a := post(t, srv, tagPath, objects(fmt.Sprintf("g%d-%d", g, i)))
				assert.Equal(t, http.StatusCreated, a.status)
				_ = srv.Purges()
				_ = srv.Responses()
			}
		}()
	}
	wg.Wait()
	purges := srv.Purges()
	require.Len(t, purges, 100)
	ids := map[string]bool{}
	for _, p := range purges {
		ids[p.PurgeID] = true
	}
	assert.Len(t, ids, 100)
	assert.Len(t, srv.Objects(akamai.KindTag), 100)
}

func TestCredentials(t *testing.T) {
	a, b := newServer(t), newServer(t)
	ca, cb := a.Credentials(), b.Credentials()
	assert.Equal(t, "https://"+ca.Host, a.URL())
	assert.True(t, strings.HasPrefix(ca.Host, "127.0.0.1:"), ca.Host)
	assert.NotEqual(t, ca.ClientToken, cb.ClientToken)
	assert.NotEqual(t, ca.ClientSecret, cb.ClientSecret)
	assert.NotEqual(t, ca.AccessToken, cb.AccessToken)
	assert.NotContains(t, fmt.Sprint(ca), ca.ClientSecret)

	// One server's credentials do not open another.
	assert.Equal(t, 401, do(t, b, request{body: objects("https://www.example.com/"), sign: func(r *http.Request) {
		signer(a).SignRequest(r)
	}}).status)

	a.Close()
	a.Close() // twice is fine
}

func TestWriteEdgerc(t *testing.T) {
	srv := newServer(t)
	file := filepath.Join(t.TempDir(), ".edgerc")
	require.NoError(t, os.WriteFile(file, []byte("old"), 0o644))
	require.NoError(t, srv.WriteEdgerc(file, "ccu"))

	info, err := os.Stat(file)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())

	cfg, err := edgegrid.New(edgegrid.WithFile(file), edgegrid.WithSection("ccu"))
	require.NoError(t, err)
	c := srv.Credentials()
	assert.Equal(t, []string{c.Host, c.ClientToken, c.ClientSecret, c.AccessToken},
		[]string{cfg.Host, cfg.ClientToken, cfg.ClientSecret, cfg.AccessToken})
	assert.Equal(t, edgegrid.MaxBodySize, cfg.MaxBody)
	a := do(t, srv, request{body: objects("https://www.example.com/"), sign: cfg.SignRequest})
	require.Equal(t, http.StatusCreated, a.status, string(a.raw))

	require.NoError(t, srv.WriteEdgerc(file, ""))
	_, err = edgegrid.New(edgegrid.WithFile(file))
	require.NoError(t, err, "an empty section name writes [default]")

	assert.Error(t, srv.WriteEdgerc(file, "a]b"))
	assert.Error(t, srv.WriteEdgerc(filepath.Join(t.TempDir(), "missing", ".edgerc"), "ccu"))
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

func TestOptionsPanicOnMistakes(t *testing.T) {
	assert.Panics(t, func() { akamaitest.WithRateLimits(akamai.RateLimits{Tags: akamai.Bucket{Burst: 1}}) })
	assert.Panics(t, func() { akamaitest.WithRateLimits(akamai.RateLimits{Tags: akamai.Bucket{Burst: -1, PerSecond: 1}}) })
	assert.Panics(t, func() { akamaitest.WithMaxBody(-1) })
	assert.Panics(t, func() { akamaitest.NewScaledClock(0) })
	// nil is a mistake too, never a request for the default.
	assert.PanicsWithValue(t, "akamaitest: WithClock(nil): pass a clock such as akamaitest.NewScaledClock(100), or leave the option out for the system clock",
		func() { akamaitest.WithClock(nil) })
	assert.PanicsWithValue(t, "akamaitest: WithNow(nil): pass a function such as time.Now, or leave the option out",
		func() { akamaitest.WithNow(nil) })
	assert.PanicsWithValue(t, "akamaitest: WithLatency(nil): pass a function, or leave the option out for no delay",
		func() { akamaitest.WithLatency(nil) })
	assert.NotPanics(t, func() {
		akamaitest.WithRateLimits(akamai.RateLimits{Tags: akamai.Bucket{Burst: 1_000_000, PerSecond: 1e6}})
	})
}

func TestScaledClock(t *testing.T) {
	c := akamaitest.NewScaledClock(100)
	realStart, start := time.Now(), c.Now()
	require.NoError(t, c.Sleep(t.Context(), 5*time.Second))
	elapsed := time.Since(realStart)
	assert.GreaterOrEqual(t, c.Now().Sub(start), 5*time.Second, "Sleep waits the whole duration on the clock")
	assert.GreaterOrEqual(t, elapsed, 50*time.Millisecond)
	assert.Less(t, elapsed, 2*time.Second)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	assert.ErrorIs(t, c.Sleep(ctx, time.Hour), context.Canceled)
	assert.ErrorIs(t, c.Sleep(ctx, 0), context.Canceled)
	assert.NoError(t, c.Sleep(t.Context(), -time.Second))

	ctx, cancel = context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, c.Sleep(ctx, time.Hour), context.DeadlineExceeded)
}

// With network latency, a request spends its tokens when it arrives, from
// buckets refilled up to that moment, and is recorded at that time.
func TestLatencyDebitsOnArrival(t *testing.T) {
	clock := testclock.New()
	start := clock.Now()
	const arrive, answer = 1500 * time.Millisecond, 250 * time.Millisecond
	srv := newServer(t, akamaitest.WithClock(clock),
		akamaitest.WithRateLimits(akamai.RateLimits{URLs: akamai.Bucket{Burst: 2, PerSecond: 1}}),
		akamaitest.WithLatency(func() (time.Duration, time.Duration) { return arrive, answer }))

	a := post(t, srv, urlPath, objects("https://www.example.com/1", "https://www.example.com/2"))
	require.Equal(t, http.StatusCreated, a.status, string(a.raw))
	assert.Equal(t, "0", remaining(t, a, "-Objects"), "the full bucket refilled nothing while the request travelled")
	assert.Equal(t, start.Add(arrive+answer), clock.Now(), "the answer comes back after both delays")

	// Sent when the bucket is empty, it arrives 1.5 s later, when 1.75
	// tokens have come back: a bucket debited at sending would refuse it.
	a = post(t, srv, urlPath, objects("https://www.example.com/3"))
	require.Equal(t, http.StatusCreated, a.status, string(a.raw))
	assert.Equal(t, "0", remaining(t, a, "-Objects"))

	purges := srv.Purges()
	require.Len(t, purges, 2)
	assert.Equal(t, start.Add(arrive), purges[0].At, "recorded on arrival")
	assert.Equal(t, start.Add(2*arrive+answer), purges[1].At)
}
