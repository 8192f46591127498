package main

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/gormpurge/gormpurge/backends"
)

// purge runs the purge command: it checks the flags, builds the backend,
// reads and checks the objects, then purges them (or, in a dry run, says
// what it would send) and prints the summary.
func (a *app) purge(cmd *cobra.Command, o *purgeOptions, args []string) error {
	chosen, kind, err := o.validate(cmd)
	if err != nil {
		return err
	}
	// The backend first: a configuration error is reported before the
	// inputs are read, and dry runs check it too.
	b, err := chosen.settings.build(a, kind, o.siteHosts)
	if err != nil {
		return err
	}
	defer closeBackend(b.Backend)
	if kind == kindCPCodes && b.cpcodes == nil {
		return usageErrorf("--cpcodes does not apply to %s", chosen.name)
	}

	objects, rep, err := a.readObjects(o, args, kind, objectChecker(kind, b, o.pathRule(b), chosen.name))
	if err != nil {
		return err
	}
	rep.Backend, rep.Description, rep.ids = b.Name(), b.description, b.ids
	if o.dryRun {
		rep.dryRun(b, objects)
		if err := rep.write(a.stdout, formatOf(o.json)); err != nil {
			return err
		}
		return rep.exitError()
	}
	if b.probe != nil {
		if err := b.probe(cmd.Context()); err != nil {
			return err
		}
	}

	start := time.Now()
	if kind == kindCPCodes {
		a.purgeCPCodes(cmd.Context(), b.cpcodes, objects, o, rep)
	} else {
		a.dispatch(cmd.Context(), b, objects, o, rep)
	}
	rep.Elapsed = time.Since(start).Round(time.Millisecond).String()
	if err := rep.write(a.stdout, formatOf(o.json)); err != nil {
		return err
	}
	return rep.exitError()
}

// validate checks the flags that do not depend on the backend, and
// returns the backend chosen and the kind of objects.
func (o *purgeOptions) validate(cmd *cobra.Command) (*backendFlags, purgeKind, error) {
	chosen, err := chooseBackend(o.backends, cmd.Flags())
	if err != nil {
		return nil, purgeKind{}, err
	}
	if o.tags && o.cpcodes {
		return nil, purgeKind{}, usageErrorf("--tags and --cpcodes: choose one")
	}
	// Host names are case-insensitive: lowercased, equal ones merge.
	var hosts []string
	for _, h := range o.siteHosts {
		if h = strings.ToLower(strings.TrimSpace(h)); !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	o.siteHosts = hosts
	switch {
	case o.cpcodes && len(o.siteHosts) > 0:
		return nil, purgeKind{}, usageErrorf("--site-host does not apply to --cpcodes")
	case o.maxAttempts < 1:
		return nil, purgeKind{}, usageErrorf("--max-attempts %d: need at least 1", o.maxAttempts)
	case o.timeout <= 0:
		return nil, purgeKind{}, usageErrorf("--timeout %v: need a positive duration", o.timeout)
	case o.attemptTimeout <= 0:
		return nil, purgeKind{}, usageErrorf("--attempt-timeout %v: need a positive duration", o.attemptTimeout)
	case o.cpcodes:
		return chosen, kindCPCodes, nil
	case o.tags:
		return chosen, kindTags, nil
	}
	return chosen, kindURLs, nil
}

// pathRule says whether URLs may be paths: when site hosts are given, or
// when backend b purges a path on every host it serves (CloudFront).
func (o *purgeOptions) pathRule(b *builtBackend) pathRule {
	if len(o.siteHosts) > 0 || b.pathsWithoutHosts {
		return pathsAllowed
	}
	return absoluteURLsOnly
}

// objectChecker returns the check of the objects of kind for backend b,
// named backendName.
func objectChecker(kind purgeKind, b *builtBackend, paths pathRule, backendName string) checkFunc {
	switch kind {
	case kindCPCodes:
		return checkCPCode
	case kindTags:
		return checkTag(b.checkTag, backendName)
	}
	return checkURL(paths, "name the site's hosts with --site-host, or give absolute URLs")
}

// readObjects reads the objects of a run and checks them, refusing the
// run when one is invalid unless --skip-invalid. It returns the valid
// ones sorted and without duplicates, and the report that counts them.
func (a *app) readObjects(o *purgeOptions, args []string, kind purgeKind, checker checkFunc) ([]string, *purgeReport, error) {
	ins, err := readInputs(args, o.files, a.stdin)
	if err != nil {
		return nil, nil, err
	}
	if len(ins) == 0 {
		return nil, nil, usageErrorf("nothing to purge: give %s as arguments, --file FILE, or - to read standard input", kind.plural)
	}
	valid, bad := check(ins, checker)
	if len(bad) > 0 && !o.skipInvalid {
		return nil, nil, invalidError(bad, "fix them, or pass --skip-invalid to purge the rest")
	}
	if len(valid) == 0 {
		return nil, nil, usageErrorf("nothing to purge: every input is invalid")
	}
	objects := backends.NewRequest(valid, nil).URLs // sorted, without duplicates
	rep := &purgeReport{
		Kind:       kind.name,
		Objects:    len(objects),
		Duplicates: len(valid) - len(objects),
		Invalid:    bad,
		kind:       kind,
	}
	return objects, rep, nil
}

// closeBackend releases a backend's connections. The dispatcher closes
// the backend when it closes; this covers the runs that make none (dry
// runs, CP codes, errors before the purge). A second Close is harmless.
func closeBackend(b backends.Backend) {
	if c, ok := b.(backends.Closer); ok {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = c.Close(ctx)
	}
}
