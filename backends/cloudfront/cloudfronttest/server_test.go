package cloudfronttest_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends/cloudfront/cloudfronttest"
)

func newServer(t *testing.T, opts ...cloudfronttest.Option) *cloudfronttest.Server {
	t.Helper()
	srv := cloudfronttest.NewServer(opts...)
	t.Cleanup(srv.Close)
	return srv
}

// send signs a request with creds using the SDK's signer and sends it.
func send(t *testing.T, srv *cloudfronttest.Server, creds aws.Credentials, method, path, body string, tamper func(*http.Request)) (int, string) {
	t.Helper()
	return sendRegion(t, srv, creds, "us-east-1", method, path, body, tamper)
}

// sendRegion is send signing for region.
func sendRegion(t *testing.T, srv *cloudfronttest.Server, creds aws.Credentials, region, method, path, body string, tamper func(*http.Request)) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, srv.URL()+path, strings.NewReader(body))
	require.NoError(t, err)
	sum := sha256.Sum256([]byte(body))
	require.NoError(t, v4.NewSigner().SignHTTP(t.Context(), creds, req, hex.EncodeToString(sum[:]), "cloudfront", region, time.Now()))
	if tamper != nil {
		tamper(req)
	}
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

func batch(ref string, quantity int, paths ...string) string {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?><InvalidationBatch xmlns="` + cloudfronttest.Namespace + `"><CallerReference>` + ref + `</CallerReference><Paths><Items>`)
	for _, p := range paths {
		b.WriteString("<Path>" + p + "</Path>")
	}
	b.WriteString("</Items><Quantity>" + itoa(quantity) + "</Quantity></Paths></InvalidationBatch>")
	return b.String()
}

func itoa(n int) string { return strconv.Itoa(n) }

const createPath = "/2020-05-31/distribution/" + cloudfronttest.DefaultDistribution + "/invalidation"

func TestSignatureIsVerified(t *testing.T) {
	srv := newServer(t)
	good := srv.Credentials()
	tests := []struct {
		name   string
		creds  aws.Credentials
		tamper func(*http.Request)
		status int
		code   string
	}{
		{"valid", good, nil, http.StatusCreated, ""},
		{"wrong secret", aws.Credentials{AccessKeyID: good.AccessKeyID, SecretAccessKey: "x" + good.SecretAccessKey}, nil, http.StatusForbidden, "SignatureDoesNotMatch"},
		{"unknown key", aws.Credentials{AccessKeyID: "AKIAUNKNOWN", SecretAccessKey: good.SecretAccessKey}, nil, http.StatusForbidden, "InvalidClientTokenId"},
		{"no signature", good, func(r *http.Request) { r.Header.Del("Authorization") }, http.StatusForbidden, "MissingAuthenticationToken"},
		{"tampered body", good, func(r *http.Request) {
			body := batch("other", 1, "/other")
			r.Body, r.ContentLength = io.NopCloser(bytes.NewReader([]byte(body))), int64(len(body))
		}, http.StatusForbidden, "SignatureDoesNotMatch"},
		{"tampered path", good, func(r *http.Request) { r.URL.Path = "/2020-05-31/distribution/EOTHER/invalidation" }, http.StatusForbidden, "SignatureDoesNotMatch"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := send(t, srv, tt.creds, http.MethodPost, createPath, batch("ref-"+itoa(i), 1, "/x"), tt.tamper)
			assert.Equal(t, tt.status, status, body)
			if tt.code != "" {
				assert.Contains(t, body, "<ErrorResponse xmlns=\""+cloudfronttest.Namespace+"\"><Error><Type>Sender</Type><Code>"+tt.code+"</Code>")
				assert.NotContains(t, body, good.SecretAccessKey)
			}
		})
	}
	assert.Len(t, srv.Invalidations(), 1, "only the valid request created an invalidation")
}

func TestBodyIsChecked(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		status int
		code   string
	}{
		{"empty", "", http.StatusBadRequest, "MissingBody"},
		{"no namespace", strings.Replace(batch("r", 1, "/x"), ` xmlns="`+cloudfronttest.Namespace+`"`, "", 1), http.StatusBadRequest, "MalformedInput"},
		{"quantity", batch("r", 2, "/x"), http.StatusBadRequest, "InconsistentQuantities"},
		{"no reference", batch("", 1, "/x"), http.StatusBadRequest, "InvalidArgument"},
		{"relative path", batch("r", 1, "x"), http.StatusBadRequest, "InvalidArgument"},
		{"inner wildcard", batch("r", 1, "/a*b"), http.StatusBadRequest, "InvalidArgument"},
		{"space", batch("r", 1, "/a b"), http.StatusBadRequest, "InvalidArgument"},
		{"too long", batch("r", 1, "/"+strings.Repeat("x", 4000)), http.StatusBadRequest, "InvalidArgument"},
		{"tag without CacheTagConfig", batch("r", 1, "#post-1"), http.StatusBadRequest, "InvalidArgument"},
		{"no paths", batch("r", 0), http.StatusBadRequest, "InvalidArgument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t)
			status, body := send(t, srv, srv.Credentials(), http.MethodPost, createPath, tt.body, nil)
			assert.Equal(t, tt.status, status, body)
			assert.Contains(t, body, "<Code>"+tt.code+"</Code>")
			assert.Empty(t, srv.Invalidations())
		})
	}
}

// A CallerReference sent again with the same paths gets the earlier
// invalidation and invalidates nothing; with other paths it is refused.
func TestCallerReferenceRules(t *testing.T) {
	srv := newServer(t)
	status, first := send(t, srv, srv.Credentials(), http.MethodPost, createPath, batch("deploy-1", 1, "/x"), nil)
	require.Equal(t, http.StatusCreated, status, first)
	status, again := send(t, srv, srv.Credentials(), http.MethodPost, createPath, batch("deploy-1", 1, "/x"), nil)
	require.Equal(t, http.StatusCreated, status)
	id := srv.Invalidations()[0].ID
	assert.Contains(t, again, "<Id>"+id+"</Id>")
	assert.Equal(t, []string{"deploy-1"}, srv.Ignored())
	assert.Len(t, srv.Invalidations(), 1)

	status, other := send(t, srv, srv.Credentials(), http.MethodPost, createPath, batch("deploy-1", 1, "/y"), nil)
	assert.Equal(t, http.StatusConflict, status)
	assert.Contains(t, other, "<Code>InvalidationBatchAlreadyExists</Code>")
}

// The in-progress limits refuse what exceeds them until earlier
// invalidations complete; GetInvalidation reports the status.
func TestInProgressLimits(t *testing.T) {
	srv := newServer(t, cloudfronttest.WithInProgressLimits(2, 1), cloudfronttest.WithCompletionDelay(200*time.Millisecond))
	creds := srv.Credentials()
	status, body := send(t, srv, creds, http.MethodPost, createPath, batch("a", 2, "/1", "/2"), nil)
	require.Equal(t, http.StatusCreated, status, body)
	assert.Contains(t, body, "<Status>InProgress</Status>")
	id := srv.Invalidations()[0].ID

	status, body = send(t, srv, creds, http.MethodPost, createPath, batch("b", 1, "/3"), nil)
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Contains(t, body, "<Code>TooManyInvalidationsInProgress</Code>")
	status, body = send(t, srv, creds, http.MethodPost, createPath, batch("c", 1, "/w*"), nil)
	assert.Equal(t, http.StatusCreated, status, "wildcards have a limit of their own: %s", body)
	status, body = send(t, srv, creds, http.MethodPost, createPath, batch("d", 3, "/1", "/2", "/3"), nil)
	assert.Equal(t, http.StatusRequestEntityTooLarge, status)
	assert.Contains(t, body, "<Code>BatchTooLarge</Code>")

	require.Eventually(t, func() bool {
		_, body := send(t, srv, creds, http.MethodGet, createPath+"/"+id, "", nil)
		return strings.Contains(body, "<Status>Completed</Status>")
	}, 5*time.Second, 20*time.Millisecond)
	status, _ = send(t, srv, creds, http.MethodPost, createPath, batch("b2", 1, "/3"), nil)
	assert.Equal(t, http.StatusCreated, status)
	paths, wild := srv.MaxInProgress()
	assert.Equal(t, 2, paths)
	assert.Equal(t, 1, wild)

	status, body = send(t, srv, creds, http.MethodGet, createPath+"/INOSUCH", "", nil)
	assert.Equal(t, http.StatusNotFound, status)
	assert.Contains(t, body, "<Code>NoSuchInvalidation</Code>")
	status, body = send(t, srv, creds, http.MethodPost, "/2020-05-31/distribution/EOTHER/invalidation", batch("e", 1, "/x"), nil)
	assert.Equal(t, http.StatusNotFound, status)
	assert.Contains(t, body, "<Code>NoSuchDistribution</Code>")
}

func TestFaultsHoldAndTags(t *testing.T) {
	srv := newServer(t, cloudfronttest.WithCacheTags(), cloudfronttest.WithCompletionDelay(0))
	creds := srv.Credentials()
	srv.FailNextCode(http.StatusBadRequest, 1, "Throttling", "Rate exceeded")
	srv.FailNext(http.StatusServiceUnavailable, 1)
	srv.FailNext(http.StatusForbidden, 0) // nothing
	status, body := send(t, srv, creds, http.MethodPost, createPath, batch("1", 1, "/x"), nil)
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Contains(t, body, "<Code>Throttling</Code><Message>Rate exceeded</Message>")
	status, body = send(t, srv, creds, http.MethodPost, createPath, batch("2", 1, "/x"), nil)
	assert.Equal(t, http.StatusServiceUnavailable, status)
	assert.Contains(t, body, "<Type>Receiver</Type><Code>ServiceUnavailable</Code>")
	status, _ = send(t, srv, creds, http.MethodPost, createPath, batch("3", 2, "/x", "#post-1"), nil)
	assert.Equal(t, http.StatusCreated, status)
	assert.Equal(t, []string{"/x"}, srv.Paths())
	assert.Equal(t, []string{"post-1"}, srv.Tags())
	assert.Equal(t, 3, srv.Calls("CreateInvalidation"))

	arrived, release := srv.Hold()
	done := make(chan int, 1)
	go func() {
		status, _ := send(t, srv, creds, http.MethodPost, createPath, batch("4", 1, "/held"), nil)
		done <- status
	}()
	<-arrived
	select {
	case <-done:
		t.Fatal("a held request was answered")
	case <-time.After(50 * time.Millisecond):
	}
	release()
	assert.Equal(t, http.StatusCreated, <-done)
	release() // twice is fine

	srv.Reset()
	assert.Empty(t, srv.Invalidations())
	assert.Zero(t, srv.Calls("CreateInvalidation"))
}

func TestNewServerRefusesBadOptions(t *testing.T) {
	for want, misuse := range map[string]func(){
		"cloudfronttest: NewServer: an Option is nil":     func() { cloudfronttest.NewServer(nil).Close() },
		"cloudfronttest: WithCompletionDelay(-1ns)":       func() { cloudfronttest.WithCompletionDelay(-1) },
		"cloudfronttest: WithInProgressLimits(0, 1)":      func() { cloudfronttest.WithInProgressLimits(0, 1) },
		"cloudfronttest: WithDistributions()":             func() { cloudfronttest.WithDistributions() },
		"cloudfronttest: WithCredentials":                 func() { cloudfronttest.WithCredentials("", "", "") },
		"cloudfronttest: FailNext(200, 1)":                func() { newServer(t).FailNext(200, 1) },
		"cloudfronttest: FailNextCode(400, 1, \"\", ...)": func() { newServer(t).FailNextCode(400, 1, "", "") },
	} {
		t.Run(want, func(t *testing.T) {
			defer func() {
				r := recover()
				require.NotNil(t, r, "misuse panics, as httptest does")
				assert.Contains(t, r, want)
			}()
			misuse()
		})
	}
	srv := newServer(t, cloudfronttest.WithCredentials("AKIAFIXED", "fixed-secret", "token"), cloudfronttest.WithDistributions("E1", "E2"))
	assert.Equal(t, "E1", srv.Distribution())
	creds, err := srv.AWSConfig().Credentials.Retrieve(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "AKIAFIXED", creds.AccessKeyID)
	status, body := send(t, srv, creds, http.MethodPost, "/2020-05-31/distribution/E2/invalidation", batch("r", 1, "/x"), nil)
	assert.Equal(t, http.StatusCreated, status, body)
	creds.SessionToken = "other"
	status, _ = send(t, srv, creds, http.MethodPost, "/2020-05-31/distribution/E2/invalidation", batch("r2", 1, "/x"), nil)
	assert.Equal(t, http.StatusForbidden, status, "a wrong session token is refused")
}

// FailNextOn fails the next GetInvalidation, not CreateInvalidation.
func TestFailNextOnGetInvalidation(t *testing.T) {
	srv := newServer(t)
	srv.FailNextOn(cloudfronttest.OpGetInvalidation, http.StatusServiceUnavailable, 1)
	srv.FailNextCodeOn(cloudfronttest.OpGetInvalidation, http.StatusForbidden, 1, "AccessDenied", "denied")
	status, body := send(t, srv, srv.Credentials(), http.MethodPost, createPath, batch("r1", 1, "/a"), nil)
	require.Equal(t, http.StatusCreated, status, body)
	id := body[strings.Index(body, "<Id>")+4 : strings.Index(body, "</Id>")]
	get := createPath + "/" + id
	status, body = send(t, srv, srv.Credentials(), http.MethodGet, get, "", nil)
	assert.Equal(t, http.StatusServiceUnavailable, status)
	assert.Contains(t, body, "<Code>ServiceUnavailable</Code>")
	status, body = send(t, srv, srv.Credentials(), http.MethodGet, get, "", nil)
	assert.Equal(t, http.StatusForbidden, status)
	assert.Contains(t, body, "<Code>AccessDenied</Code>")
	status, _ = send(t, srv, srv.Credentials(), http.MethodGet, get, "", nil)
	assert.Equal(t, http.StatusOK, status)
	assert.Panics(t, func() { srv.FailNextOn("ListInvalidations", 500, 1) })
}

// The fake's canonical query sorts by name then value, as the SDK's signer
// does: a name that is a prefix of another ("a" and "a-b") is signed
// right. And it accepts the region the request was signed for.
func TestSignatureQueryOrderAndRegion(t *testing.T) {
	srv := newServer(t)
	status, body := send(t, srv, srv.Credentials(), http.MethodPost, createPath, batch("r1", 1, "/a"), nil)
	require.Equal(t, http.StatusCreated, status, body)
	id := body[strings.Index(body, "<Id>")+4 : strings.Index(body, "</Id>")]
	for _, query := range []string{"?a-b=1&a=2", "?a=2&a-b=1", "?ab=1&a=1&a=0"} {
		status, body = send(t, srv, srv.Credentials(), http.MethodGet, createPath+"/"+id+query, "", nil)
		assert.Equal(t, http.StatusOK, status, "%s: %s", query, body)
	}
	status, body = sendRegion(t, srv, srv.Credentials(), "eu-west-1", http.MethodPost, createPath, batch("r2", 1, "/b"), nil)
	assert.Equal(t, http.StatusCreated, status, body)
}

// Cache tags have no wildcard: "#tag*" does not count against the wildcard
// limit.
func TestTagsAreNotWildcards(t *testing.T) {
	srv := newServer(t, cloudfronttest.WithCacheTags(), cloudfronttest.WithInProgressLimits(10, 1), cloudfronttest.WithCompletionDelay(time.Hour))
	status, body := send(t, srv, srv.Credentials(), http.MethodPost, createPath, batch("r1", 3, "#a*", "#b*", "/c/*"), nil)
	require.Equal(t, http.StatusCreated, status, body)
	paths, wild := srv.MaxInProgress()
	assert.Equal(t, 2, paths)
	assert.Equal(t, 1, wild)
}
