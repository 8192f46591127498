package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// panicReader panics when read.
type panicReader struct{}

func (panicReader) Read([]byte) (int, error) { panic("boom in stdin") }

// A panic exits with 1 and its message, not 2 ("nothing was sent").
func TestPanicExitsFailed(t *testing.T) {
	t.Parallel()
	var stdout, stderr strings.Builder
	code := runEnv(t.Context(), []string{"purge", "--http-nodes", "127.0.0.1:1", "--site-host", "www.example.test", "-"},
		&env{stdin: panicReader{}, stdout: &stdout, stderr: &stderr})
	assert.Equal(t, exitFailed, code)
	assert.Contains(t, stderr.String(), "gormpurge: internal error: boom in stdin")
}

func TestHelpDefaults(t *testing.T) {
	t.Parallel()
	r := gormpurge(t, "purge", "--help")
	require.Equal(t, exitOK, r.code)
	assert.NotContains(t, r.stdout, `(default "~/.edgerc")`)
	for _, f := range []string{"--attempt-timeout", "--request-timeout", "--node-concurrency"} {
		assert.Contains(t, r.stdout, f)
	}
	assert.NotContains(t, r.stdout, "every request")
	r = gormpurge(t, "purge", "--akamai-edgerc", "", "https://www.example.test/a")
	assert.Equal(t, exitUsage, r.code)
	assert.Contains(t, r.stderr, "--akamai-edgerc")
}

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// GORM's prepared-statement cache starts a goroutine nothing can stop.
		goleak.IgnoreTopFunction("gorm.io/gorm/internal/lru.NewLRU[...].func1"),
	)
}

// result is what one run of the command did.
type result struct {
	code           int
	stdout, stderr string
}

// harness runs the command in process, as main does, with its own
// streams and test hooks.
type harness struct {
	ctx        context.Context // t.Context() when nil
	stdin      string
	vars       map[string]string
	terminal   bool
	httpClient *http.Client
}

// run runs gormpurge with args.
func (h harness) run(t *testing.T, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	e := &env{
		stdin:      strings.NewReader(h.stdin),
		stdout:     &stdout,
		stderr:     &stderr,
		getenv:     func(name string) string { return h.vars[name] },
		isTerminal: func(io.Writer) bool { return h.terminal },
		httpClient: h.httpClient,
	}
	ctx := h.ctx
	if ctx == nil {
		ctx = t.Context()
	}
	code := runEnv(ctx, args, e)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// gormpurge runs gormpurge with args and an empty stdin.
func gormpurge(t *testing.T, args ...string) result {
	t.Helper()
	return harness{}.run(t, args...)
}

func TestHelp(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--help"}, []string{"purge", "warm", "outbox", "Exit status", "--verbose", "--version"}},
		{[]string{"help", "purge"}, []string{"--akamai-edgerc", "--section", "--network", "--action"}},
		{[]string{"purge", "--help"}, []string{
			"Usage:\n  gormpurge purge [flags] (URL... | -)", "Examples:",
			"Objects:", "--file", "--tags", "--cpcodes", "--site-host", "--skip-invalid",
			"Akamai:", "--akamai ", "--akamai-edgerc", "--section", "--network", "--action",
			"HTTP caches:", "--http-nodes", "--method", "--tag-mode", "--ban-header", "--header",
			"Delivery:", "--max-attempts", "--timeout", "--dry-run",
			"Output:", "--json", "--no-progress", "Global flags:", "--verbose"}},
		{[]string{"warm", "--help"}, []string{
			"Examples:", "--file", "--base-url", "--concurrency", "--timeout", "--basic-auth",
			"--header", "--host", "--json", "--no-progress", passwordEnv}},
		{[]string{"outbox", "--help"}, []string{"status", "list", "retry-dead", "--driver", "--dsn", "--table", dsnEnv}},
		{[]string{"outbox", "status", "--help"}, []string{"--fail-on-dead", "--driver", "--dsn", "--json"}},
		{[]string{"outbox", "list", "--help"}, []string{"--state", "--limit", "--dsn"}},
		{[]string{"outbox", "retry-dead", "--help"}, []string{"retry-dead (ID... | --all)", "--all"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			t.Parallel()
			r := gormpurge(t, tc.args...)
			require.Equal(t, exitOK, r.code, r.stderr)
			for _, w := range tc.want {
				assert.Contains(t, r.stdout, w)
			}
			assert.Empty(t, r.stderr)
		})
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	r := gormpurge(t, "--version")
	require.Equal(t, exitOK, r.code)
	assert.Regexp(t, `^gormpurge \S+`, r.stdout)
}

// Usage errors exit with 2, say what is wrong and where to read more, and
// send nothing.
func TestUsageErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
		want  string
	}{
		{"no backend", "", []string{"purge", "https://www.example.com/"}, "choose a backend"},
		{"both backends", "", []string{"purge", "--akamai", "--http-nodes", "127.0.0.1:1", "https://www.example.com/"}, "not both"},
		{"unknown flag", "", []string{"purge", "--bogus"}, "unknown flag: --bogus"},
		{"unknown command", "", []string{"bogus"}, `unknown command "bogus"`},
		{"unknown outbox command", "", []string{"outbox", "bogus"}, `unknown command "bogus"`},
		{"bad flag value", "", []string{"purge", "--max-attempts", "many"}, "invalid argument"},
		{"tags and cpcodes", "", []string{"purge", "--akamai", "--tags", "--cpcodes", "x"}, "--tags and --cpcodes"},
		{"cpcodes on HTTP caches", "", []string{"purge", "--http-nodes", "127.0.0.1:1", "--cpcodes", "123"}, "--cpcodes does not apply to HTTP caches"},
		{"method on Akamai", "", []string{"purge", "--akamai-edgerc", "/nonexistent", "--method", "BAN", "https://a.example/"}, "--method does not apply to Akamai"},
		{"nothing to purge", "", []string{"purge", "--http-nodes", "127.0.0.1:1"}, "nothing to purge"},
		{"dash and args", "", []string{"purge", "--http-nodes", "127.0.0.1:1", "-", "/a"}, "must be the only argument"},
		{"stdin twice", "/a\n", []string{"purge", "--http-nodes", "127.0.0.1:1", "--site-host", "h", "--file", "-", "-"}, "named twice"},
		{"missing file", "", []string{"purge", "--http-nodes", "127.0.0.1:1", "--file", "/nonexistent/urls.txt"}, "/nonexistent/urls.txt"},
		{"invalid URL", "", []string{"purge", "--http-nodes", "127.0.0.1:1", "ftp://www.example.com/x"}, `argument 1: "ftp://www.example.com/x"`},
		{"path without site host", "", []string{"purge", "--http-nodes", "127.0.0.1:1", "/posts/1"}, "--site-host"},
		{"tag with a space", "a b\n", []string{"purge", "--http-nodes", "127.0.0.1:1", "--tags", "-"}, `stdin:1: "a b"`},
		{"missing .edgerc", "", []string{"purge", "--akamai-edgerc", "/nonexistent/.edgerc", "https://a.example/"}, "no credentials"},
		{"tags with no tag mode", "", []string{"purge", "--http-nodes", "127.0.0.1:1", "--tag-mode", "none", "--tags", "t"}, "--tag-mode none"},
		{"bad tag mode", "", []string{"purge", "--http-nodes", "127.0.0.1:1", "--tag-mode", "magic", "/a"}, "--tag-mode"},
		{"bad node", "", []string{"purge", "--http-nodes", "ftp://x", "https://www.example.com/"}, "ftp"},
		{"bad network", "", []string{"purge", "--akamai", "--network", "moon", "https://a.example/"}, `--network "moon"`},
		{"bad action", "", []string{"purge", "--akamai", "--action", "burn", "https://a.example/"}, `--action "burn"`},
		{"warm without base URL", "", []string{"warm", "/a"}, "--base-url"},
		{"warm bad concurrency", "", []string{"warm", "--concurrency", "0", "https://a.example/"}, "--concurrency"},
		{"warm user without password", "", []string{"warm", "--basic-auth", "bob", "https://a.example/"}, passwordEnv},
		{"outbox without DSN", "", []string{"outbox", "status"}, dsnEnv},
		{"outbox unknown driver", "", []string{"outbox", "status", "--dsn", "x", "--driver", "oracle"}, "--driver"},
		{"outbox bad table", "", []string{"outbox", "status", "--dsn", "x.db", "--table", "drop table"}, "--table"},
		{"outbox list bad state", "", []string{"outbox", "list", "--dsn", "x.db", "--state", "lost"}, "--state"},
		{"retry-dead with nothing", "", []string{"outbox", "retry-dead", "--dsn", "x.db"}, "--all"},
		{"retry-dead with a bad ID", "", []string{"outbox", "retry-dead", "--dsn", "x.db", "x"}, `row ID "x"`},
		{"status with arguments", "", []string{"outbox", "status", "--dsn", "x.db", "extra"}, "takes no arguments"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := harness{stdin: tc.stdin}.run(t, tc.args...)
			assert.Equal(t, exitUsage, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)
			assert.Contains(t, r.stderr, tc.want)
			assert.Contains(t, r.stderr, "--help' for usage")
			assert.Empty(t, r.stdout)
		})
	}
}

// A context already cancelled, as after Ctrl-C, exits with 130.
func TestInterrupted(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	var stdout, stderr bytes.Buffer
	code := runEnv(ctx, []string{"warm", "http://127.0.0.1:1/"}, &env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr})
	assert.Equal(t, exitInterrupted, code)
	assert.Contains(t, stderr.String(), "interrupted")
}

// A command that only groups others, run alone, is a usage error (exit
// status 2) with the usage on stderr, not a success.
func TestNoCommand(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{nil, {"outbox"}} {
		r := gormpurge(t, args...)
		assert.Equal(t, exitUsage, r.code, args)
		assert.Empty(t, r.stdout, args)
		assert.Contains(t, r.stderr, "Commands:", args)
		assert.Contains(t, r.stderr, "gormpurge: no command given: choose one of the commands above\n", args)
		assert.Contains(t, r.stderr, "--help' for usage.", args)
	}
	r := gormpurge(t)
	assert.Contains(t, r.stderr, "purge")
	assert.Contains(t, r.stderr, "warm")
}
