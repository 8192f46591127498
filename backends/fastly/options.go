package fastly

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/gormpurge/gormpurge/backends"
)

// Option configures a [Backend] at [New].
type Option func(*config)

type config struct {
	serviceID   *string
	token       *string
	soft        bool
	endpoint    string
	client      *http.Client
	hostnames   []string
	concurrency int
	hourlyLimit int
	logger      *slog.Logger
	name        string
	errs        []error
}

// ConfigError reports an invalid or missing setting at [New]: the option
// (or environment variable) at fault and how to fix it. It never holds the
// API token.
type ConfigError struct {
	// Option names the option, such as "WithAPIToken".
	Option string
	// Err is the problem.
	Err error
}

func (e *ConfigError) Error() string { return "fastly: " + e.Option + ": " + e.Err.Error() }

// Unwrap returns the problem.
func (e *ConfigError) Unwrap() error { return e.Err }

func (c *config) fail(option string, err error) {
	c.errs = append(c.errs, &ConfigError{Option: option, Err: err})
}

// WithServiceID sets the ID of the Fastly service whose surrogate keys are
// purged and that purge_all empties, such as "SU1Z0isxPaozGVKXdv0eY". The
// default is the FASTLY_SERVICE_ID environment variable, as Fastly's CLI
// reads it; [New] fails when neither is set.
func WithServiceID(id string) Option {
	return func(c *config) {
		if id == "" || strings.IndexFunc(id, func(r rune) bool { return !isIDChar(r) }) >= 0 {
			c.fail("WithServiceID", fmt.Errorf("%q: want the service's alphanumeric ID, such as \"SU1Z0isxPaozGVKXdv0eY\"", id))
			return
		}
		c.serviceID = &id
	}
}

// WithAPIToken sets the Fastly API token sent in the Fastly-Key header. It
// needs the purge_select scope for URL and key purges, and purge_all for
// [Backend.PurgeAll]. The default is the FASTLY_API_TOKEN environment
// variable, as Fastly's CLI reads it; [New] fails when neither is set. The
// token is never shown in errors, logs or results.
func WithAPIToken(token string) Option {
	return func(c *config) {
		if err := checkToken(token); err != nil {
			c.fail("WithAPIToken", err)
			return
		}
		c.token = &token
	}
}

// WithSoftPurge makes URL and key purges soft: Fastly marks the content
// stale instead of removing it (Fastly-Soft-Purge: 1), so that it can still
// be served while revalidated or when the origin fails. purge_all is hard
// whatever this says: Fastly cannot purge everything softly.
func WithSoftPurge() Option {
	return func(c *config) { c.soft = true }
}

// WithEndpoint sets the base URL of Fastly's API, [DefaultEndpoint] unless
// set; tests point it at a fastlytest server. URL purges go to
// {endpoint}/purge/{host}{path}, as Fastly's API reference documents them,
// and not to the site itself. It must be an http or https URL with a host
// and no query.
func WithEndpoint(endpoint string) Option {
	return func(c *config) {
		u, err := url.Parse(endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			c.fail("WithEndpoint", fmt.Errorf("%q: want an http or https base URL such as %s, without query or credentials", backends.RedactURL(endpoint), DefaultEndpoint))
			return
		}
		c.endpoint = strings.TrimRight(endpoint, "/")
	}
}

// WithHTTPClient sets the client that sends requests, for a proxy, custom
// TLS or a test server. The default is a client of its own with keep-alive
// connections and a timeout of [DefaultRequestTimeout]. nil is an error.
// [Backend.Close] closes idle connections only of its own client, never
// of one given here.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *config) {
		if hc == nil {
			c.fail("WithHTTPClient", errors.New("nil client: pass an *http.Client, or leave the option out to use the backend's own"))
			return
		}
		c.client = hc
	}
}

// WithHostnames sets the site's hostnames, such as "www.example.com": a
// site-relative path "/posts/1" becomes one URL purge on each. Without it,
// site-relative paths cannot be purged and are reported as failed
// (backends.Permanent and backends.Partial); set gormpurge.WithBaseURL on
// the plugin instead, or list the hostnames here. Hostnames are given
// without scheme or path; a port may follow.
func WithHostnames(hosts ...string) Option {
	return func(c *config) {
		for _, h := range hosts {
			a, err := backends.CanonicalHost("https", strings.TrimSpace(h))
			if err != nil || strings.ContainsAny(h, "/?# ") || a == "" {
				c.fail("WithHostnames", fmt.Errorf("%q: want a host name such as www.example.com, without scheme or path", backends.RedactURL(h)))
				continue
			}
			if !slices.Contains(c.hostnames, a) {
				c.hostnames = append(c.hostnames, a)
			}
		}
	}
}

// WithConcurrency sets how many URL purges one call to Purge sends at once,
// [DefaultConcurrency] unless set. Fastly purges URLs one request each;
// several in flight make a batch finish within the dispatcher's attempt
// timeout. n must be between 1 and 64.
func WithConcurrency(n int) Option {
	return func(c *config) {
		if n < 1 || n > 64 {
			c.fail("WithConcurrency", fmt.Errorf("%d: want between 1 and 64", n))
			return
		}
		c.concurrency = n
	}
}

// WithHourlyLimit sets the hourly budget of API requests that
// [Backend.PurgeAll] paces itself to, [DefaultHourlyLimit] (Fastly's
// documented limit) unless set: purge_all requests are spaced at least an
// hour divided by n apart. Lower it when other tools of the same user share
// the limit. n must be positive.
func WithHourlyLimit(n int) Option {
	return func(c *config) {
		if n <= 0 {
			c.fail("WithHourlyLimit", fmt.Errorf("%d: want a positive number of requests per hour", n))
			return
		}
		c.hourlyLimit = n
	}
}

// WithLogger sets where the backend logs: accepted URL and key purges at
// Debug, purge_all at Info, 429s (with the wait) and failed objects at
// Warn. The default is slog.Default(). The token is
// never logged. To silence the backend, pass slog.New(slog.DiscardHandler);
// nil is an error.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l == nil {
			c.fail("WithLogger", errors.New("nil logger: pass slog.New(slog.DiscardHandler) to silence the backend, or leave the option out"))
			return
		}
		c.logger = l
	}
}

// WithName sets the backend's name in logs, metrics and results, "fastly"
// unless set. An empty name is an error.
func WithName(name string) Option {
	return func(c *config) {
		if name == "" {
			c.fail("WithName", errors.New("empty name: leave the option out for \"fastly\""))
			return
		}
		c.name = name
	}
}

func isIDChar(r rune) bool {
	return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '_'
}

// checkToken refuses a token that cannot travel in a header, without
// quoting it.
func checkToken(token string) error {
	switch {
	case token == "":
		return errors.New("empty token: pass the API token, or leave the option out to read " + EnvAPIToken)
	case strings.TrimSpace(token) != token:
		return fmt.Errorf("the token (%d bytes) has leading or trailing white space: trim it", len(token))
	case strings.IndexFunc(token, func(r rune) bool { return r < ' ' || r >= 0x7f }) >= 0:
		return fmt.Errorf("the token (%d bytes) holds a control or non-ASCII character", len(token))
	}
	return nil
}
