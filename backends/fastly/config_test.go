package fastly_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/fastly"
)

// TestEnvDefaults checks that the token and service come from Fastly's
// environment variables when the options are left out, and that what is
// missing is named with the option and the variable.
func TestEnvDefaults(t *testing.T) {
	cases := []struct {
		name    string
		env     map[string]string
		opts    []fastly.Option
		errs    []string // substrings of New's error; none: New succeeds
		service string
	}{
		{name: "from the environment", env: map[string]string{"FASTLY_API_TOKEN": "tok", "FASTLY_SERVICE_ID": "svcEnv"}, service: "svcEnv"},
		{name: "options win", env: map[string]string{"FASTLY_API_TOKEN": "tok", "FASTLY_SERVICE_ID": "svcEnv"},
			opts: []fastly.Option{fastly.WithServiceID("svcOpt"), fastly.WithAPIToken("tok2")}, service: "svcOpt"},
		{name: "nothing set", errs: []string{"WithAPIToken", "FASTLY_API_TOKEN", "WithServiceID", "FASTLY_SERVICE_ID"}},
		{name: "no token", env: map[string]string{"FASTLY_SERVICE_ID": "svc"}, errs: []string{"fastly.WithAPIToken(token) or set FASTLY_API_TOKEN"}},
		{name: "no service", env: map[string]string{"FASTLY_API_TOKEN": "tok"}, errs: []string{"fastly.WithServiceID(id) or set FASTLY_SERVICE_ID"}},
		{name: "bad service in env", env: map[string]string{"FASTLY_API_TOKEN": "tok", "FASTLY_SERVICE_ID": "a/b"}, errs: []string{"fastly: FASTLY_SERVICE_ID:"}},
		{name: "bad token in env", env: map[string]string{"FASTLY_API_TOKEN": "tok\n", "FASTLY_SERVICE_ID": "svc"}, errs: []string{"fastly: FASTLY_API_TOKEN:", "white space"}},
		{name: "empty options", opts: []fastly.Option{fastly.WithServiceID(""), fastly.WithAPIToken("")}, errs: []string{"WithServiceID", "WithAPIToken: empty token"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("FASTLY_API_TOKEN", "")
			t.Setenv("FASTLY_SERVICE_ID", "")
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			b, err := fastly.New(c.opts...)
			if len(c.errs) == 0 {
				require.NoError(t, err)
				assert.Contains(t, b.String(), fmt.Sprintf("service: %q", c.service))
				return
			}
			require.Error(t, err)
			assert.Nil(t, b)
			var ce *fastly.ConfigError
			assert.ErrorAs(t, err, &ce)
			for _, s := range c.errs {
				assert.Contains(t, err.Error(), s)
			}
		})
	}
}

// TestOptionErrors checks that each invalid option is an error naming it.
func TestOptionErrors(t *testing.T) {
	base := []fastly.Option{fastly.WithAPIToken("tok"), fastly.WithServiceID("svc")}
	for _, c := range []struct {
		opt  fastly.Option
		name string
	}{
		{nil, "New"},
		{fastly.WithEndpoint("ftp://api.fastly.com"), "WithEndpoint"},
		{fastly.WithEndpoint("https://user:pw@api.fastly.com"), "WithEndpoint"},
		{fastly.WithEndpoint("https://api.fastly.com?x=1"), "WithEndpoint"},
		{fastly.WithHTTPClient(nil), "WithHTTPClient"},
		{fastly.WithHostnames("https://www.example.com"), "WithHostnames"},
		{fastly.WithHostnames("www.example.com/path"), "WithHostnames"},
		{fastly.WithConcurrency(0), "WithConcurrency"},
		{fastly.WithConcurrency(65), "WithConcurrency"},
		{fastly.WithHourlyLimit(0), "WithHourlyLimit"},
		{fastly.WithLogger(nil), "WithLogger"},
		{fastly.WithName(""), "WithName"},
		{fastly.WithServiceID("svc id"), "WithServiceID"},
		{fastly.WithAPIToken("tok en\x00"), "WithAPIToken"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := fastly.New(append(base, c.opt)...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "fastly: "+c.name+":")
			assert.NotContains(t, err.Error(), "pw", "no credential of the endpoint")
		})
	}
	for _, h := range []string{"user:s3cret@cdn.example.com", "https://user:s3cret@cdn.example.com/x", "cdn.example.com/?token=s3cret"} {
		_, err := fastly.New(append(base, fastly.WithHostnames(h))...)
		require.Error(t, err, h)
		assert.Contains(t, err.Error(), "fastly: WithHostnames:")
		assert.NotContains(t, err.Error(), "s3cret", "a hostname given with a credential is redacted")
		assert.Contains(t, err.Error(), "REDACTED")
	}
	b, err := fastly.New(append(base, fastly.WithName("fastly-eu"), fastly.WithEndpoint("https://api.fastly.com/"))...)
	require.NoError(t, err)
	assert.Equal(t, "fastly-eu", b.Name())
	assert.Contains(t, b.String(), `endpoint: "https://api.fastly.com"`)
}

// TestSecrets checks that the token is never shown: not by printing or
// logging the backend, not in configuration errors, not in errors built
// from an answer that repeats it, not in results or logs.
func TestSecrets(t *testing.T) {
	const token = "s3cr3t-TOKEN-value-0123456789abcdef"
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A proxy that repeats the request's headers in its error page.
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprintf(w, "<html>denied: Fastly-Key=%s</html>", r.Header.Get("Fastly-Key"))
	}))
	t.Cleanup(echo.Close)
	var logs bytes.Buffer
	b, err := fastly.New(fastly.WithAPIToken(token), fastly.WithServiceID("svc"), fastly.WithEndpoint(echo.URL),
		fastly.WithHostnames("www.example.com"), fastly.WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close(t.Context()) })

	var shown []string
	res, err := b.Purge(t.Context(), backends.Request{URLs: []string{"/a", "http://other.example/b"}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "[REDACTED]", "the answer is kept, the token is not")
	shown = append(shown, err.Error(), fmt.Sprintf("%+v", res))
	_, err = b.Purge(t.Context(), backends.Request{Tags: []string{"k"}})
	require.Error(t, err)
	shown = append(shown, err.Error())
	res, err = b.PurgeAll(t.Context())
	require.Error(t, err)
	shown = append(shown, err.Error(), fmt.Sprintf("%+v", res))
	shown = append(shown, fmt.Sprint(b), fmt.Sprintf("%v %+v %#v %s", b, b, b, b), logs.String())
	var slogged bytes.Buffer
	slog.New(slog.NewJSONHandler(&slogged, nil)).Info("backend", "b", b)
	shown = append(shown, slogged.String())
	_, err = fastly.New(fastly.WithAPIToken(token+" "), fastly.WithServiceID("svc"))
	require.Error(t, err)
	shown = append(shown, err.Error())
	for _, s := range shown {
		assert.NotContains(t, s, token)
	}
	assert.Contains(t, logs.String(), "object not purged", "failures are logged")
}
