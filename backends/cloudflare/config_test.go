package cloudflare_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/cloudflare"
)

const (
	zone  = "0123456789abcdef0123456789abcdef"
	token = "Secret-Token_0123456789abcdefghijklmnopq"
)

func TestEnvironmentDefaults(t *testing.T) {
	for _, c := range []struct {
		name          string
		envToken      string
		envZone       string
		opts          []cloudflare.Option
		wantErrs      []string // each a substring of the error
		wantNoErrText string
	}{
		{name: "both from the environment", envToken: token, envZone: zone},
		{name: "options win", envToken: "other", envZone: "bad", opts: []cloudflare.Option{cloudflare.WithAPIToken(token), cloudflare.WithZone(zone)}},
		{name: "nothing", wantErrs: []string{"WithAPIToken: no API token: pass cloudflare.WithAPIToken(token) or set CLOUDFLARE_API_TOKEN",
			"WithZone: no zone: pass cloudflare.WithZone(id) or set CLOUDFLARE_ZONE_ID"}},
		{name: "no zone", envToken: token, wantErrs: []string{"CLOUDFLARE_ZONE_ID"}, wantNoErrText: "CLOUDFLARE_API_TOKEN"},
		{name: "a zone name", envToken: token, envZone: "example.com", wantErrs: []string{"CLOUDFLARE_ZONE_ID: \"example.com\" is not a zone ID"}},
		{name: "a token with a newline", envToken: token + "\n", envZone: zone, wantErrs: []string{"CLOUDFLARE_API_TOKEN: the token (41 bytes) holds white space"}},
		{name: "a bad token option", envToken: token, envZone: zone, opts: []cloudflare.Option{cloudflare.WithAPIToken("a b")}, wantErrs: []string{"WithAPIToken:"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv(cloudflare.EnvAPIToken, c.envToken)
			t.Setenv(cloudflare.EnvZoneID, c.envZone)
			b, err := cloudflare.New(c.opts...)
			if len(c.wantErrs) == 0 {
				require.NoError(t, err)
				assert.Contains(t, b.String(), zone)
				return
			}
			require.Error(t, err)
			var ce *cloudflare.ConfigError
			assert.ErrorAs(t, err, &ce)
			for _, w := range c.wantErrs {
				assert.Contains(t, err.Error(), w)
			}
			if c.wantNoErrText != "" {
				assert.NotContains(t, err.Error(), c.wantNoErrText)
			}
			assert.NotContains(t, err.Error(), token, "the token is never shown")
		})
	}
}

func TestOptionErrors(t *testing.T) {
	base := []cloudflare.Option{cloudflare.WithAPIToken(token), cloudflare.WithZone(zone)}
	for _, c := range []struct {
		name string
		opt  cloudflare.Option
		want string
	}{
		{"nil option", nil, "New: an Option is nil"},
		{"nil client", cloudflare.WithHTTPClient(nil), "WithHTTPClient: nil client"},
		{"nil logger", cloudflare.WithLogger(nil), "WithLogger: nil logger"},
		{"endpoint", cloudflare.WithEndpoint("ftp://user:pw@x"), "WithEndpoint"},
		{"endpoint with a query", cloudflare.WithEndpoint("https://api.example/client/v4?key=secret"), "WithEndpoint"},
		{"hostname with a path", cloudflare.WithHostnames("https://www.example.com/x"), "WithHostnames"},
		{"zero items", cloudflare.WithMaxItems(0), "WithMaxItems: 0"},
		{"too many items", cloudflare.WithMaxItems(501), "WithMaxItems: 501"},
		{"500 without Enterprise", cloudflare.WithMaxItems(500), "needs WithPlan(cloudflare.Enterprise)"},
		{"plan", cloudflare.WithPlan(cloudflare.Plan(9)), "WithPlan: 9"},
		{"rate", cloudflare.WithRate(0, 1), "WithRate"},
		{"burst", cloudflare.WithRate(1, 0), "WithRate"},
		{"name", cloudflare.WithName(" "), "WithName"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := cloudflare.New(append(base, c.opt)...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
			assert.NotContains(t, err.Error(), "secret")
			assert.NotContains(t, err.Error(), "pw")
		})
	}
	b, err := cloudflare.New(append(base, cloudflare.WithPlan(cloudflare.Enterprise), cloudflare.WithMaxItems(500))...)
	require.NoError(t, err)
	assert.Equal(t, backends.Limits{OneKind: true, MaxObjects: 500, MaxURLs: 500, MaxTags: 100}, b.Limits(),
		"500 URLs on Enterprise; tags stay at 100")
}

func TestLimits(t *testing.T) {
	for _, c := range []struct {
		opts []cloudflare.Option
		want backends.Limits
	}{
		{nil, backends.Limits{OneKind: true, MaxObjects: 100, MaxURLs: 100, MaxTags: 100}},
		{[]cloudflare.Option{cloudflare.WithMaxItems(30)}, backends.Limits{OneKind: true, MaxObjects: 30, MaxURLs: 30, MaxTags: 30}},
		{[]cloudflare.Option{cloudflare.WithHostnames("a.example", "b.example", "c.example")},
			backends.Limits{OneKind: true, MaxObjects: 100, MaxURLs: 33, MaxTags: 100}},
	} {
		b, err := cloudflare.New(append([]cloudflare.Option{cloudflare.WithAPIToken(token), cloudflare.WithZone(zone)}, c.opts...)...)
		require.NoError(t, err)
		assert.Equal(t, c.want, b.Limits())
	}
}

// The token never shows: not when the Backend is printed or logged, not in
// an error, not in a log line.
func TestTokenNeverShown(t *testing.T) {
	var logs bytes.Buffer
	srv := newServer(t)
	b := newBackend(t, srv, cloudflare.WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	srv.FailNext(http.StatusForbidden, 1)
	srv.FailNext(http.StatusTooManyRequests, 1)
	ctx := t.Context()
	_, err1 := b.Purge(ctx, backends.NewRequest([]string{"/a"}, nil))
	_, err2 := b.Purge(ctx, backends.NewRequest([]string{"/a"}, nil))
	res, err3 := b.Purge(ctx, backends.NewRequest([]string{"/a"}, []string{"bad tag"}))
	slog.New(slog.NewTextHandler(&logs, nil)).Info("backend", "b", b)
	for _, s := range []string{fmt.Sprint(b), fmt.Sprintf("%+v", b), fmt.Sprintf("%#v", b), fmt.Sprintf("%+v", res),
		err1.Error(), err2.Error(), err3.Error(), logs.String()} {
		assert.NotContains(t, s, srv.Token())
	}
	assert.Contains(t, logs.String(), "zone="+srv.Zone())
	assert.True(t, errors.Is(err2, cloudflare.ErrRateLimited))
	assert.True(t, strings.Contains(err1.Error(), "Zone > Cache Purge > Purge"), err1.Error())
}
