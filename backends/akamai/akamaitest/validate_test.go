package akamaitest_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/akamai/AkamaiOPEN-edgegrid-golang/v8/pkg/edgegrid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends/akamai"
	"github.com/gormpurge/gormpurge/backends/akamai/akamaitest"
)

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

// TestSchema: bodies Fast Purge accepts are accepted, and each malformed
// one is refused with its status, title and detail. It is long because it
// is one table of cases, a line or two each.
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
