package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/spf13/pflag"

	"github.com/gormpurge/gormpurge/backends/fastly"
)

// maxFastlyConcurrency bounds --fastly-concurrency, as fastly.WithConcurrency
// does.
const maxFastlyConcurrency = 64

func init() {
	registerBackend(backendEntry{
		name:       "Fastly",
		chooseWith: "--fastly or --fastly-service ID",
		summary:    "Fastly's purge API (--fastly, or --fastly-service ID)",
		group:      "Fastly",
		addFlags:   addFastlyFlags,
	})
}

// fastlyAccount is where the Fastly service and API token come from.
var fastlyAccount = accountSource{
	idFlag: "fastly-service",
	idEnv:  fastly.EnvServiceID,
	noID:   fmt.Sprintf("no Fastly service: set %s, or pass --fastly-service ID", fastly.EnvServiceID),
	token:  secretSource{flag: "fastly-token-file", env: fastly.EnvAPIToken},
}

// fastlySettings are the Fastly backend's flags.
type fastlySettings struct {
	fs          *pflag.FlagSet
	env         bool // --fastly
	service     string
	tokenFile   string
	soft        bool
	concurrency int
	endpoint    string
}

func addFastlyFlags(f *pflag.FlagSet) backendSettings {
	s := &fastlySettings{fs: f}
	f.BoolVar(&s.env, "fastly", false, "purge from Fastly, with the API token from "+fastly.EnvAPIToken+" and the service from "+fastly.EnvServiceID)
	f.StringVar(&s.service, "fastly-service", "", "purge the Fastly service with this `ID`, instead of "+fastly.EnvServiceID)
	f.StringVar(&s.tokenFile, "fastly-token-file", "", "read the Fastly API token from `FILE` instead of "+fastly.EnvAPIToken+" (it needs the purge_select scope)")
	f.BoolVar(&s.soft, "fastly-soft", false, "soft purge: mark the content stale instead of removing it (Fastly-Soft-Purge: 1)")
	f.IntVar(&s.concurrency, "fastly-concurrency", fastly.DefaultConcurrency, fmt.Sprintf("send at most `N` URL purges at once (1 to %d): Fastly purges URLs one request each", maxFastlyConcurrency))
	f.StringVar(&s.endpoint, "fastly-endpoint", fastly.DefaultEndpoint, "the Fastly API's base `URL`, for a proxy or a test server")
	return s
}

func (s *fastlySettings) chosen() bool {
	return s.env || s.fs.Changed("fastly-service") || s.fs.Changed("fastly-token-file")
}

// build returns the Fastly backend the flags and the environment describe.
func (s *fastlySettings) build(a *app, _ purgeKind, siteHosts []string) (*builtBackend, error) {
	if s.concurrency < 1 || s.concurrency > maxFastlyConcurrency {
		return nil, usageErrorf("--fastly-concurrency %d: need 1 to %d", s.concurrency, maxFastlyConcurrency)
	}
	acct, err := fastlyAccount.read(a, s.fs, s.service, s.tokenFile)
	if err != nil {
		return nil, err
	}
	b, err := fastly.New(s.options(a, acct, siteHosts)...)
	if err != nil {
		return nil, configErrors(err, optionOf(func(ce *fastly.ConfigError) (string, error) {
			return ce.Option, ce.Err
		}), map[string]string{
			"WithServiceID":   acct.idFrom,
			"WithAPIToken":    acct.tokenFrom,
			"WithEndpoint":    "--fastly-endpoint",
			"WithHostnames":   "--site-host",
			"WithConcurrency": "--fastly-concurrency",
		})
	}
	return s.built(b, acct.id, siteHosts), nil
}

// options returns the options of fastly.New the flags and acct describe.
func (s *fastlySettings) options(a *app, acct cdnAccount, siteHosts []string) []fastly.Option {
	opts := []fastly.Option{
		fastly.WithServiceID(acct.id),
		fastly.WithAPIToken(acct.token),
		fastly.WithConcurrency(s.concurrency),
		fastly.WithEndpoint(s.endpoint),
		fastly.WithLogger(a.logger),
	}
	if s.soft {
		opts = append(opts, fastly.WithSoftPurge())
	}
	if len(siteHosts) > 0 {
		opts = append(opts, fastly.WithHostnames(siteHosts...))
	}
	if a.httpClient != nil {
		opts = append(opts, fastly.WithHTTPClient(a.httpClient))
	}
	return opts
}

// built returns the purge command's view of b, the backend of service:
// what it says it does, what it sends and what it reports.
func (s *fastlySettings) built(b *fastly.Backend, service string, siteHosts []string) *builtBackend {
	mode := "hard purge"
	if s.soft {
		mode = "soft purge (mark stale)"
	}
	rec := &cdnRecorder{cdnBackend: b}
	sentAs := func(kind purgeKind, obj string) []string {
		if kind == kindTags {
			return nil
		}
		return fastlyCachedURLs(obj, siteHosts)
	}
	return &builtBackend{
		Backend:     rec,
		description: fmt.Sprintf("%s on service %s%s", mode, service, describeHosts(siteHosts)),
		estimate: func(kind purgeKind, objects []string) (int, bool) {
			if kind == kindTags {
				return countBatches(b.Limits(), kind, objects), false
			}
			// One request per cached URL: a path on each site host,
			// http and https spellings of a page once.
			seen := map[string]bool{}
			for _, obj := range objects {
				for _, u := range sentAs(kind, obj) {
					seen[u] = true
				}
			}
			return len(seen), false
		},
		sentAs:   sentAs,
		attempts: rec.results,
		ids: &idReport{
			of: func(ids map[string]string) []acceptedRequest {
				var out []acceptedRequest
				for _, obj := range slices.Sorted(maps.Keys(ids)) {
					out = append(out, acceptedRequest{ID: ids[obj], Object: obj})
				}
				return out
			},
			title: func(n int) string { return "Fastly accepted " + countOf(n, "purge", "purges") },
			label: "purge id",
		},
	}
}

// fastlyCachedURLs returns the cached URLs (host, path and query, without
// scheme) a URL in canonical form is purged as on Fastly: a path on each of
// siteHosts. Fastly's purge-by-URL names no scheme, which is not part of
// its cache key.
func fastlyCachedURLs(obj string, siteHosts []string) []string {
	if strings.HasPrefix(obj, "/") {
		var out []string
		for _, u := range pathOnHosts(obj, siteHosts) {
			out = append(out, strings.TrimPrefix(u, "https://"))
		}
		return out
	}
	return []string{stripScheme(obj)}
}
