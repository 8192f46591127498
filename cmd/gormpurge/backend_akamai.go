package main

import (
	"fmt"
	"strings"

	"github.com/spf13/pflag"

	"github.com/gormpurge/gormpurge/backends/akamai"
)

// defaultEdgerc is the .edgerc file --akamai reads after the environment.
const defaultEdgerc = "~/.edgerc"

func init() {
	registerBackend(backendEntry{
		name:       "Akamai",
		chooseWith: "--akamai-edgerc FILE or --akamai",
		summary:    "Akamai Fast Purge (--akamai-edgerc FILE, or --akamai)",
		group:      "Akamai",
		addFlags:   addAkamaiFlags,
	})
}

// akamaiSettings are the Akamai backend's flags.
type akamaiSettings struct {
	fs      *pflag.FlagSet
	env     bool // --akamai
	edgerc  string
	section string
	network string
	action  string
}

func addAkamaiFlags(f *pflag.FlagSet) backendSettings {
	s := &akamaiSettings{fs: f}
	f.BoolVar(&s.env, "akamai", false, "purge from Akamai, with credentials from AKAMAI_* variables or ~/.edgerc")
	f.StringVar(&s.edgerc, "akamai-edgerc", "", "purge from Akamai, with credentials from this .edgerc `FILE` (--akamai reads ~/.edgerc after the environment)")
	f.StringVar(&s.section, "section", akamai.DefaultSection, "the .edgerc `SECTION` (or AKAMAI_<SECTION>_* variables); \"ccu\" falls back to \"default\"")
	f.StringVar(&s.network, "network", string(akamai.Production), "Akamai `NETWORK`: production or staging")
	f.StringVar(&s.action, "action", string(akamai.Invalidate), "`ACTION`: invalidate (revalidate with the origin) or delete (fetch anew)")
	return s
}

func (s *akamaiSettings) chosen() bool { return s.env || s.fs.Changed("akamai-edgerc") }

// build returns the Akamai backend the flags describe.
func (s *akamaiSettings) build(a *app, _ purgeKind, siteHosts []string) (*builtBackend, error) {
	network := akamai.Network(strings.ToLower(s.network))
	if network != akamai.Production && network != akamai.Staging {
		return nil, usageErrorf("--network %q: use production or staging", s.network)
	}
	action := akamai.Action(strings.ToLower(s.action))
	if action != akamai.Invalidate && action != akamai.Delete {
		return nil, usageErrorf("--action %q: use invalidate or delete", s.action)
	}
	opts := []akamai.Option{
		akamai.WithNetwork(network),
		akamai.WithAction(action),
		akamai.WithLogger(a.logger),
	}
	switch {
	case !s.fs.Changed("akamai-edgerc"):
		opts = append(opts, akamai.WithEnv(s.section), akamai.WithEdgerc(defaultEdgerc, s.section))
	case s.edgerc == "":
		return nil, usageErrorf("--akamai-edgerc: name the .edgerc file")
	default:
		opts = append(opts, akamai.WithEdgerc(s.edgerc, s.section))
	}
	if len(siteHosts) > 0 {
		opts = append(opts, akamai.WithHostnames(siteHosts...))
	}
	if a.httpClient != nil {
		opts = append(opts, akamai.WithHTTPClient(a.httpClient))
	}
	b, err := akamai.New(opts...)
	if err != nil {
		return nil, usageErrorf("%v", err)
	}
	return &builtBackend{
		Backend:     b,
		description: fmt.Sprintf("%s on %s", action, network),
		checkTag:    akamai.CheckTag,
		estimate: func(kind purgeKind, objects []string) (int, bool) {
			if kind == kindCPCodes {
				burst := akamai.PublishedRateLimits().CPCodes.Burst
				return (len(objects) + burst - 1) / burst, false
			}
			return countBatches(b.Limits(), kind, objects), false
		},
		cpcodes: b,
	}, nil
}
