package main

import (
	"context"
	"slices"
	"strings"

	"github.com/spf13/pflag"

	"github.com/gormpurge/gormpurge/backends"
)

// backendEntry is one kind of backend the purge command can send to. Each
// backend_*.go file registers one with registerBackend; the purge command
// learns its backends, their flags and how to build them from this table
// alone.
type backendEntry struct {
	// name names the backend in messages: "Akamai", "HTTP caches".
	name string
	// chooseWith says which flags choose it: "--akamai-edgerc FILE or --akamai".
	chooseWith string
	// summary describes it in the purge command's help: "Akamai Fast
	// Purge (--akamai-edgerc FILE, or --akamai)".
	summary string
	// group is the title its flags are listed under in --help.
	group string
	// addFlags registers the backend's flags on fs and returns the
	// settings they fill in.
	addFlags func(fs *pflag.FlagSet) backendSettings
}

// backendSettings are the values of one backend's flags.
type backendSettings interface {
	// chosen reports whether the command line chose this backend.
	chosen() bool
	// build checks the settings and returns the backend that purges
	// objects of kind, paths on siteHosts.
	build(a *app, kind purgeKind, siteHosts []string) (*builtBackend, error)
}

// builtBackend is a backend ready to purge, with what the purge command
// needs to know of it beyond [backends.Backend].
type builtBackend struct {
	backends.Backend
	// description says in a few words what it does: "invalidate on production".
	description string
	// checkTag, when not nil, refuses the tags the backend cannot purge,
	// beyond [backends.CanonicalTag].
	checkTag func(tag string) error
	// estimate returns about how many requests purging objects takes, in
	// all or, when perNode, to each node.
	estimate func(kind purgeKind, objects []string) (n int, perNode bool)
	// pathsWithoutHosts says that the backend purges a path such as
	// /posts/1 on every host it serves, so that paths need no --site-host.
	pathsWithoutHosts bool
	// hostsOf, when not nil, returns the Host headers a URL or path is
	// purged with, which a dry run shows.
	hostsOf func(obj string) []string
	// probe, when not nil, checks before anything is sent that the
	// backend can be reached, so that a wrong address fails at once.
	probe func(ctx context.Context) error
	// cpcodes, when not nil, purges whole CP codes.
	cpcodes cpCodePurger
	// attempts, when not nil, returns the result of every call to Purge
	// so far, for the per-node counts of the summary and the CDNs' ids.
	attempts func() []backends.Result
	// sentAs, when not nil, returns what a URL or tag of kind is sent to
	// the CDN as, which a dry run shows: the URLs a path becomes on the
	// site hosts, an invalidation path; nil when sent as given.
	sentAs func(kind purgeKind, obj string) []string
	// ids, when not nil, says how the summary lists the ids a CDN gave
	// the requests it accepted.
	ids *idReport
}

// idReport is how the summary lists the ids a CDN (Cloudflare, Fastly,
// CloudFront) gave the requests it accepted.
type idReport struct {
	// of returns the requests a result's IDs tell of.
	of func(ids map[string]string) []acceptedRequest
	// title heads the list of n requests: "Cloudflare accepted 2 requests".
	title func(n int) string
	// label names an id in the list: "purge id", "invalidation".
	label string
}

// cpCodePurger purges whole CP codes, as the Akamai backend does.
type cpCodePurger interface {
	PurgeCPCodes(ctx context.Context, codes ...int) (backends.Result, error)
}

// backendTable lists the backends, in the order their files register them.
var backendTable []backendEntry

// registerBackend adds e to the backends the purge command knows. It is
// called from init functions.
func registerBackend(e backendEntry) {
	backendTable = append(backendTable, e)
}

// backendSummaries returns the summaries of the backends, for the purge
// command's help.
func backendSummaries() string {
	var ss []string
	for _, e := range backendTable {
		ss = append(ss, e.summary)
	}
	return strings.Join(ss, ", or\n")
}

// backendFlags is one backend of the table with its flags registered on a
// command.
type backendFlags struct {
	backendEntry
	settings backendSettings
	names    []string // the flags it registered
}

// addBackendFlags registers the flags of every backend of the table on
// fs, each in its group, and returns them.
func addBackendFlags(fs *pflag.FlagSet) []backendFlags {
	var out []backendFlags
	for _, e := range backendTable {
		before := map[string]bool{}
		fs.VisitAll(func(f *pflag.Flag) { before[f.Name] = true })
		settings := e.addFlags(fs)
		var names []string
		fs.VisitAll(func(f *pflag.Flag) {
			if !before[f.Name] {
				names = append(names, f.Name)
			}
		})
		group(fs, e.group, names...)
		out = append(out, backendFlags{backendEntry: e, settings: settings, names: names})
	}
	return out
}

// chooseBackend returns the one backend the command line chose, refusing
// none, several, and the flags of the others.
func chooseBackend(bs []backendFlags, fs *pflag.FlagSet) (*backendFlags, error) {
	var chosen []*backendFlags
	for i := range bs {
		if bs[i].settings.chosen() {
			chosen = append(chosen, &bs[i])
		}
	}
	var ways []string
	for _, b := range bs {
		ways = append(ways, b.chooseWith+" for "+b.name)
	}
	switch len(chosen) {
	case 0:
		return nil, usageErrorf("choose a backend: %s", strings.Join(ways, ", or "))
	case 1:
	default:
		return nil, usageErrorf("choose one backend, not both: %s", strings.Join(ways, ", or "))
	}
	c := chosen[0]
	for _, b := range bs {
		if b.name == c.name {
			continue
		}
		for _, n := range b.names {
			if fs.Changed(n) && !slices.Contains(c.names, n) {
				return nil, usageErrorf("--%s does not apply to %s", n, c.name)
			}
		}
	}
	return c, nil
}
