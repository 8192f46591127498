package akamai

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/internal/nilcheck"
)

// Option configures a [Backend] at [New].
type Option func(*config)

type config struct {
	sources   []credentialSource
	network   Network
	action    Action
	hostnames []string
	cpCodes   []int
	client    *http.Client
	limits    RateLimits
	maxBody   int
	logger    *slog.Logger
	name      string
	clock     Clock
	errs      []error
}

// WithEdgerc reads credentials from a section of an .edgerc file, as Akamai's
// tools do. A leading "~/" is the user's home directory. An empty section,
// or "ccu", means the "ccu" section, falling back to "default". A missing
// file lets the next credentials option be tried; a file without the
// section, or a section without a field, is an error at [New] naming the file,
// section and field.
func WithEdgerc(path, section string) Option {
	return func(c *config) { c.sources = append(c.sources, edgercSource(path, section)) }
}

// WithEnv reads credentials from environment variables as the edgegrid
// library does: AKAMAI_<SECTION>_HOST, _CLIENT_TOKEN, _CLIENT_SECRET,
// _ACCESS_TOKEN and the optional _ACCOUNT_KEY. An empty section, or "ccu",
// means AKAMAI_CCU_*, falling back to plain AKAMAI_*. When none of the
// variables is set, the next credentials option is tried; when only some
// are, [New] fails naming the missing ones.
func WithEnv(section string) Option {
	return func(c *config) { c.sources = append(c.sources, envSource(section)) }
}

// WithCredentials uses credentials given in code, for example read from a
// secret store.
func WithCredentials(creds Credentials) Option {
	return func(c *config) {
		c.sources = append(c.sources, credentialSource{
			describe: "WithCredentials",
			load: func() (Credentials, error) {
				if err := creds.validate("WithCredentials", codeFields); err != nil {
					return Credentials{}, err
				}
				return creds, nil
			},
		})
	}
}

// WithNetwork sets the network purged: [Production] (the default) or
// [Staging].
func WithNetwork(n Network) Option {
	return func(c *config) {
		if n != Production && n != Staging {
			c.errs = append(c.errs, &ConfigError{Source: "WithNetwork", Err: fmt.Errorf("%q: want akamai.Production or akamai.Staging", n)})
			return
		}
		c.network = n
	}
}

// WithAction sets how objects leave the cache: [Invalidate] (the default)
// or [Delete].
func WithAction(a Action) Option {
	return func(c *config) {
		if a != Invalidate && a != Delete {
			c.errs = append(c.errs, &ConfigError{Source: "WithAction", Err: fmt.Errorf("%q: want akamai.Invalidate or akamai.Delete", a)})
			return
		}
		c.action = a
	}
}

// WithHostnames sets the site's hostnames, such as "www.example.com": a
// site-relative path "/posts/1" becomes one https URL on each. Without it,
// site-relative paths cannot be purged and are reported as rejected; set
// gormpurge.WithBaseURL on the plugin instead, or list the hostnames here.
// Hostnames are given without scheme or path; a port may follow.
func WithHostnames(hosts ...string) Option {
	return func(c *config) {
		for _, h := range hosts {
			a, err := backends.CanonicalHost("https", strings.TrimSpace(h))
			if err != nil || strings.ContainsAny(h, "/?# ") {
				c.errs = append(c.errs, &ConfigError{Source: "WithHostnames", Field: fmt.Sprintf("%q", h),
					Err: errors.New("want a host name such as www.example.com, without scheme or path")})
				continue
			}
			if !slices.Contains(c.hostnames, a) {
				c.hostnames = append(c.hostnames, a)
			}
		}
	}
}

// WithCPCodes sets the site's CP codes: [Backend.PurgeAll] purges every
// object served under them, which is how the backend purges everything, as
// dispatcher.WithEscalation with All does. Each code is a positive integer;
// several calls add up. Without it, the backend cannot purge everything.
func WithCPCodes(codes ...int) Option {
	return func(c *config) {
		if len(codes) == 0 {
			c.errs = append(c.errs, &ConfigError{Source: "WithCPCodes", Err: errors.New("no CP code given")})
		}
		for _, code := range codes {
			if code <= 0 {
				c.errs = append(c.errs, &ConfigError{Source: "WithCPCodes", Field: strconv.Itoa(code),
					Err: errors.New("a CP code is a positive integer, such as 12345")})
				continue
			}
			if !slices.Contains(c.cpCodes, code) {
				c.cpCodes = append(c.cpCodes, code)
			}
		}
	}
}

// WithHTTPClient sets the client that sends requests, for a proxy, custom
// TLS or a test server. The default is a client of its own with keep-alive
// connections and a timeout of [DefaultRequestTimeout]; the context the
// dispatcher passes to each attempt sets a shorter deadline.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *config) {
		if hc == nil {
			c.errs = append(c.errs, &ConfigError{Source: "WithHTTPClient", Err: errors.New("nil client: pass an *http.Client, or leave the option out to use the backend's own")})
			return
		}
		c.client = hc
	}
}

// WithRateLimits sets the client-side pacing: the size and refill rate of
// each token bucket. A zero Bucket keeps Akamai's published value (see
// [PublishedRateLimits]); a value above it is an error at [New], since
// Akamai would answer 429. Lower them when other API clients share the
// account's buckets.
func WithRateLimits(l RateLimits) Option {
	return func(c *config) { c.limits = l }
}

// WithMaxBodyBytes lowers the largest request body, which defaults to
// Akamai's limit of [MaxBodyBytes] (50,000 bytes).
func WithMaxBodyBytes(n int) Option {
	return func(c *config) {
		if n < 100 || n > MaxBodyBytes {
			c.errs = append(c.errs, &ConfigError{Source: "WithMaxBodyBytes", Err: fmt.Errorf("%d: want between 100 and %d", n, MaxBodyBytes)})
			return
		}
		c.maxBody = n
	}
}

// WithLogger sets where the backend logs each request's outcome: accepted
// purges at Debug (the dispatcher logs each batch at Info), 429s, splits and
// rejected objects at Warn. The default is slog.Default(). Secrets are
// never logged. To silence the backend, pass slog.New(slog.DiscardHandler);
// nil is an error.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l == nil {
			c.errs = append(c.errs, &ConfigError{Source: "WithLogger", Err: errors.New("nil logger: pass slog.New(slog.DiscardHandler) to silence the backend, or leave the option out")})
			return
		}
		c.logger = l
	}
}

// WithName sets the backend's name in logs, metrics and results. The
// default is "akamai", or "akamai-staging" on the staging network.
func WithName(name string) Option {
	return func(c *config) { c.name = name }
}

// WithClock sets the clock the client-side pacing runs on. The default is
// the system clock; tests pass a faster one such as
// akamaitest.NewScaledClock. nil is an error, and so is a nil pointer (or
// other nil value) of a type that implements Clock.
func WithClock(clock Clock) Option {
	return func(c *config) {
		switch {
		case clock == nil:
			c.errs = append(c.errs, &ConfigError{Source: "WithClock", Err: errors.New("nil clock: pass akamai.SystemClock{} or a test clock, or leave the option out")})
			return
		case nilcheck.IsNil(clock):
			c.errs = append(c.errs, &ConfigError{Source: "WithClock", Err: fmt.Errorf("a nil %T: pass akamai.SystemClock{} or a test clock, or leave the option out", clock)})
			return
		}
		c.clock = clock
	}
}
