package main

import (
	"fmt"
	"strings"

	"github.com/spf13/pflag"

	"github.com/gormpurge/gormpurge/backends/cloudflare"
)

func init() {
	registerBackend(backendEntry{
		name:       "Cloudflare",
		chooseWith: "--cloudflare or --cloudflare-zone ID",
		summary:    "Cloudflare's purge_cache API (--cloudflare, or --cloudflare-zone ID)",
		group:      "Cloudflare",
		addFlags:   addCloudflareFlags,
	})
}

// cloudflarePlans maps --cloudflare-plan to the plans.
var cloudflarePlans = map[string]cloudflare.Plan{
	"free":       cloudflare.Free,
	"pro":        cloudflare.Pro,
	"business":   cloudflare.Business,
	"enterprise": cloudflare.Enterprise,
}

// cloudflareAccount is where the Cloudflare zone and API token come from.
var cloudflareAccount = accountSource{
	idFlag: "cloudflare-zone",
	idEnv:  cloudflare.EnvZoneID,
	noID:   fmt.Sprintf("no Cloudflare zone: set %s, or pass --cloudflare-zone ID (the zone's ID, not its name)", cloudflare.EnvZoneID),
	token:  secretSource{flag: "cloudflare-token-file", env: cloudflare.EnvAPIToken},
}

// cloudflareSettings are the Cloudflare backend's flags.
type cloudflareSettings struct {
	fs        *pflag.FlagSet
	env       bool // --cloudflare
	zone      string
	tokenFile string
	plan      string
	maxItems  int
	endpoint  string
}

func addCloudflareFlags(f *pflag.FlagSet) backendSettings {
	s := &cloudflareSettings{fs: f}
	f.BoolVar(&s.env, "cloudflare", false, "purge from Cloudflare, with the API token from "+cloudflare.EnvAPIToken+" and the zone from "+cloudflare.EnvZoneID)
	f.StringVar(&s.zone, "cloudflare-zone", "", "purge from the Cloudflare zone with this `ID` (32 hex digits, on the zone's Overview page), instead of "+cloudflare.EnvZoneID)
	f.StringVar(&s.tokenFile, "cloudflare-token-file", "", "read the Cloudflare API token from `FILE` instead of "+cloudflare.EnvAPIToken+" (it needs Zone > Cache Purge > Purge)")
	f.StringVar(&s.plan, "cloudflare-plan", strings.ToLower(cloudflare.DefaultPlan.String()), "the zone's `PLAN`, whose purge rate limit the requests are paced to: free, pro, business or enterprise")
	f.IntVar(&s.maxItems, "cloudflare-max-items", cloudflare.MaxItemsPerRequest, fmt.Sprintf("send at most `N` URLs or tags a request (1 to %d; up to %d URLs with --cloudflare-plan enterprise)", cloudflare.MaxItemsPerRequest, cloudflare.MaxURLsPerRequestEnterprise))
	f.StringVar(&s.endpoint, "cloudflare-endpoint", cloudflare.DefaultEndpoint, "the Cloudflare API's base `URL`, for a proxy or a test server")
	return s
}

func (s *cloudflareSettings) chosen() bool {
	return s.env || s.fs.Changed("cloudflare-zone") || s.fs.Changed("cloudflare-token-file")
}

// build returns the Cloudflare backend the flags and the environment
// describe.
func (s *cloudflareSettings) build(a *app, _ purgeKind, siteHosts []string) (*builtBackend, error) {
	plan, err := s.checkLimits()
	if err != nil {
		return nil, err
	}
	acct, err := cloudflareAccount.read(a, s.fs, s.zone, s.tokenFile)
	if err != nil {
		return nil, err
	}
	b, err := cloudflare.New(s.options(a, acct, plan, siteHosts)...)
	if err != nil {
		return nil, configErrors(err, optionOf(func(ce *cloudflare.ConfigError) (string, error) {
			return ce.Option, ce.Err
		}), map[string]string{
			"WithZone":      acct.idFrom,
			"WithAPIToken":  acct.tokenFrom,
			"WithEndpoint":  "--cloudflare-endpoint",
			"WithHostnames": "--site-host",
			"WithMaxItems":  "--cloudflare-max-items",
			"WithPlan":      "--cloudflare-plan",
		})
	}
	return cloudflareBuilt(b, acct.id, plan, siteHosts), nil
}

// checkLimits returns the plan of --cloudflare-plan, and a usage error
// when it or --cloudflare-max-items is not one Cloudflare accepts.
func (s *cloudflareSettings) checkLimits() (cloudflare.Plan, error) {
	plan, ok := cloudflarePlans[strings.ToLower(s.plan)]
	if !ok {
		return plan, usageErrorf("--cloudflare-plan %q: use free, pro, business or enterprise", s.plan)
	}
	switch {
	case s.maxItems < 1 || s.maxItems > cloudflare.MaxURLsPerRequestEnterprise:
		return plan, usageErrorf("--cloudflare-max-items %d: need 1 to %d (up to %d URLs with --cloudflare-plan enterprise)", s.maxItems, cloudflare.MaxItemsPerRequest, cloudflare.MaxURLsPerRequestEnterprise)
	case s.maxItems > cloudflare.MaxItemsPerRequest && plan != cloudflare.Enterprise:
		return plan, usageErrorf("--cloudflare-max-items %d: more than %d URLs a request needs --cloudflare-plan enterprise", s.maxItems, cloudflare.MaxItemsPerRequest)
	}
	return plan, nil
}

// options returns the options of cloudflare.New the flags, acct and plan
// describe.
func (s *cloudflareSettings) options(a *app, acct cdnAccount, plan cloudflare.Plan, siteHosts []string) []cloudflare.Option {
	opts := []cloudflare.Option{
		cloudflare.WithZone(acct.id),
		cloudflare.WithAPIToken(acct.token),
		cloudflare.WithPlan(plan),
		cloudflare.WithMaxItems(s.maxItems),
		cloudflare.WithEndpoint(s.endpoint),
		cloudflare.WithLogger(a.logger),
	}
	if len(siteHosts) > 0 {
		opts = append(opts, cloudflare.WithHostnames(siteHosts...))
	}
	if a.httpClient != nil {
		opts = append(opts, cloudflare.WithHTTPClient(a.httpClient))
	}
	return opts
}

// cloudflareBuilt returns the purge command's view of b, the backend of
// zone: what it says it does, what it sends and what it reports.
func cloudflareBuilt(b *cloudflare.Backend, zone string, plan cloudflare.Plan, siteHosts []string) *builtBackend {
	rec := &cdnRecorder{cdnBackend: b}
	bb := &builtBackend{
		Backend:     rec,
		description: fmt.Sprintf("zone %s, paced to the %s plan%s", strings.ToLower(zone), plan, describeHosts(siteHosts)),
		checkTag:    cloudflare.CheckTag,
		estimate: func(kind purgeKind, objects []string) (int, bool) {
			return countBatches(b.Limits(), kind, objects), false
		},
		attempts: rec.results,
		ids: &idReport{
			of:    idsIn("purgeId"),
			title: func(n int) string { return "Cloudflare accepted " + countOf(n, "request", "requests") },
			label: "purge id",
		},
	}
	bb.sentAs = func(kind purgeKind, obj string) []string {
		if kind == kindURLs && strings.HasPrefix(obj, "/") {
			return pathOnHosts(obj, siteHosts)
		}
		return nil
	}
	return bb
}
