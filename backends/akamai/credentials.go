package akamai

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/akamai/AkamaiOPEN-edgegrid-golang/v8/pkg/edgegrid"
)

// DefaultSection is the .edgerc section and environment prefix used when
// none is given: "ccu", as in django-akamai. When it is missing, the
// "default" section (plain AKAMAI_* variables) is used instead.
const DefaultSection = "ccu"

// ConfigError reports a setting [New] cannot use. It names where the
// setting came from and which field is at fault, never a secret's value.
type ConfigError struct {
	// Source says where the setting came from, such as
	// `.edgerc file "/home/app/.edgerc", section [ccu]`,
	// "environment AKAMAI_CCU_*", "WithCredentials" or "WithRateLimits".
	Source string
	// Field names the field or variable at fault, if one is.
	Field string
	// Err is the underlying problem.
	Err error
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString("akamai: ")
	b.WriteString(e.Source)
	if e.Field != "" {
		b.WriteString(": ")
		b.WriteString(e.Field)
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *ConfigError) Unwrap() error { return e.Err }

// errAbsent marks a credentials source that does not exist at all (no
// file, no variables), so that the next source may be tried.
var errAbsent = errors.New("not present")

// credentialSource yields credentials, or errAbsent, or a *ConfigError.
type credentialSource struct {
	describe string
	load     func() (Credentials, error)
}

func edgercSource(path, section string) credentialSource {
	return credentialSource{
		describe: fmt.Sprintf(".edgerc file %q", path),
		load:     func() (Credentials, error) { return loadEdgerc(path, section) },
	}
}

func envSource(section string) credentialSource {
	return credentialSource{
		describe: "environment " + envPrefix(orDefault(section)) + "_*",
		load:     func() (Credentials, error) { return loadEnv(section) },
	}
}

func orDefault(section string) string {
	if section == "" {
		return DefaultSection
	}
	return section
}

// sectionsFor returns the sections to try, in order: the one asked for, and
// "default" when the one asked for is the default "ccu".
func sectionsFor(section string) []string {
	section = orDefault(section)
	if section == DefaultSection {
		return []string{DefaultSection, edgegrid.DefaultSection}
	}
	return []string{section}
}

// loadEdgerc reads section (with fallback, see sectionsFor) from the
// .edgerc file at path. A missing file is errAbsent.
func loadEdgerc(path, section string) (Credentials, error) {
	expanded, err := expandHome(path)
	if err != nil {
		return Credentials{}, &ConfigError{Source: fmt.Sprintf(".edgerc file %q", path), Err: err}
	}
	if _, err := os.Stat(expanded); errors.Is(err, fs.ErrNotExist) {
		return Credentials{}, fmt.Errorf(".edgerc file %q: %w", expanded, errAbsent)
	}
	sections := sectionsFor(section)
	for _, sec := range sections {
		src := fmt.Sprintf(".edgerc file %q, section [%s]", expanded, sec)
		var cfg edgegrid.Config
		err := cfg.FromFile(expanded, sec)
		switch {
		case errors.Is(err, edgegrid.ErrSectionDoesNotExist):
			continue
		case errors.Is(err, edgegrid.ErrLoadingFile):
			// The parser's message may quote a line of the file, and so a
			// secret: say what is wrong without it.
			if _, rerr := os.ReadFile(expanded); rerr != nil {
				return Credentials{}, &ConfigError{Source: fmt.Sprintf(".edgerc file %q", expanded), Err: fmt.Errorf("cannot read it: %w", rerr)}
			}
			return Credentials{}, &ConfigError{Source: fmt.Sprintf(".edgerc file %q", expanded),
				Err: errors.New("is not a valid INI file: each line must be [section], key = value, or a comment")}
		case err != nil && !errors.Is(err, edgegrid.ErrRequiredOptionEdgerc):
			// The library's message may quote a value, and so a secret.
			return Credentials{}, &ConfigError{Source: src,
				Err: errors.New("cannot read the section's values: each must be of its type (max_body a number)")}
		}
		c := Credentials{Host: cfg.Host, ClientToken: cfg.ClientToken, ClientSecret: cfg.ClientSecret,
			AccessToken: cfg.AccessToken, AccountKey: cfg.AccountKey}
		if err := c.validate(src, edgercFields); err != nil {
			return Credentials{}, err
		}
		return c, nil
	}
	return Credentials{}, &ConfigError{
		Source: fmt.Sprintf(".edgerc file %q", expanded),
		Err:    fmt.Errorf("no section [%s]", strings.Join(sections, "] or [")),
	}
}

func expandHome(path string) (string, error) {
	if path == "~" || strings.HasPrefix(path, "~/") {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("cannot expand ~: %w", err)
		}
		return filepath.Join(home, path[1:]), nil
	}
	return path, nil
}

// envPrefix returns the variable prefix the edgegrid library uses for a
// section: AKAMAI for "default", else AKAMAI_<SECTION>.
func envPrefix(section string) string {
	if section == edgegrid.DefaultSection {
		return "AKAMAI"
	}
	return "AKAMAI_" + strings.ToUpper(section)
}

// loadEnv reads credentials from AKAMAI_<SECTION>_* variables as the
// edgegrid library does, falling back to AKAMAI_* for the default section.
// A prefix none of whose variables is set is errAbsent.
func loadEnv(section string) (Credentials, error) {
	for _, sec := range sectionsFor(section) {
		prefix := envPrefix(sec)
		anySet := false
		for _, f := range envFields(prefix) {
			if _, ok := os.LookupEnv(f); ok {
				anySet = true
			}
		}
		if !anySet {
			continue
		}
		src := "environment " + prefix + "_*"
		var cfg edgegrid.Config
		if err := cfg.FromEnv(sec); err != nil && !errors.Is(err, edgegrid.ErrRequiredOptionEnv) {
			return Credentials{}, &ConfigError{Source: src, Err: err}
		}
		c := Credentials{Host: cfg.Host, ClientToken: cfg.ClientToken, ClientSecret: cfg.ClientSecret,
			AccessToken: cfg.AccessToken, AccountKey: cfg.AccountKey}
		if err := c.validate(src, envFields(prefix)); err != nil {
			return Credentials{}, err
		}
		return c, nil
	}
	return Credentials{}, fmt.Errorf("environment %s_*: %w", envPrefix(orDefault(section)), errAbsent)
}

// Field names, in the order Host, ClientToken, ClientSecret, AccessToken,
// as each source spells them.
var (
	edgercFields = []string{"host", "client_token", "client_secret", "access_token"}
	codeFields   = []string{"Host", "ClientToken", "ClientSecret", "AccessToken"}
)

func envFields(prefix string) []string {
	return []string{prefix + "_HOST", prefix + "_CLIENT_TOKEN", prefix + "_CLIENT_SECRET", prefix + "_ACCESS_TOKEN"}
}

// validate checks that every field is set and that Host is a bare host
// name, and names the missing fields as src spells them.
func (c Credentials) validate(src string, names []string) error {
	var missing []string
	for i, v := range []string{c.Host, c.ClientToken, c.ClientSecret, c.AccessToken} {
		if strings.TrimSpace(v) == "" {
			missing = append(missing, names[i])
		}
	}
	if len(missing) > 0 {
		return &ConfigError{Source: src, Field: strings.Join(missing, ", "), Err: errors.New("missing or empty")}
	}
	// A host that is not one may hold a secret (a line break lost in the
	// file runs the next line into it): it is described, never printed.
	switch {
	case strings.Contains(c.Host, "://"):
		return &ConfigError{Source: src, Field: names[0], Err: errors.New("must be a host name without a scheme, such as akab-xxxx.luna.akamaiapis.net")}
	case len(c.Host) > maxHostLen:
		return &ConfigError{Source: src, Field: names[0], Err: fmt.Errorf("longer than %d characters: not a host name (check the line breaks)", maxHostLen)}
	case strings.IndexFunc(c.Host, notHostChar) >= 0:
		return &ConfigError{Source: src, Field: names[0], Err: errors.New("must be a host name such as akab-xxxx.luna.akamaiapis.net " +
			"(letters, digits, dots, hyphens and an optional :port; no path, space or other character: check the line breaks)")}
	}
	for i, v := range []string{c.ClientToken, c.ClientSecret, c.AccessToken} {
		if len(v) >= minSecretInHost && strings.Contains(c.Host, v) {
			return &ConfigError{Source: src, Field: names[0], Err: fmt.Errorf("holds the value of %s: check the line breaks", names[i+1])}
		}
		if commonRun(c.Host, v) >= minSharedWithHost {
			// Printing the host would print much of the secret.
			return &ConfigError{Source: src, Field: names[0], Err: fmt.Errorf("shares a long run of characters with %s: check that each value is on its own line", names[i+1])}
		}
	}
	for i, v := range []string{c.ClientToken, c.ClientSecret, c.AccessToken} {
		if strings.ContainsAny(v, " \t;\r\n") {
			// Never print the value: it is a secret.
			return &ConfigError{Source: src, Field: names[i+1], Err: errors.New("contains a space, tab, semicolon or line break")}
		}
	}
	return nil
}

// minSecretInHost is the length from which a token or secret found in the
// host is taken for a mistake in the file: real ones are far longer, and a
// shorter value may be part of a host name by chance.
const minSecretInHost = 8

// minSharedWithHost is the length of a run of characters shared by the host
// and a token or secret from which the host is refused, since the host is
// printed in logs: real ones share at most the "akab-" prefix.
const minSharedWithHost = 12

// maxHostLen is the longest host name DNS allows (RFC 1035), with room for
// a port.
const maxHostLen = 253 + len(":65535")

// maxSecretScan bounds how much of a token or secret commonRun compares
// with the host: real ones are well under it, and the comparison costs the
// product of the two lengths.
const maxSecretScan = 1024

// commonRun returns the length of the longest run of bytes found in both a
// and the first maxSecretScan bytes of b.
func commonRun(a, b string) int {
	b = b[:min(len(b), maxSecretScan)]
	if len(a) < minSharedWithHost || len(b) < minSharedWithHost {
		return 0
	}
	prev, cur := make([]int, len(b)+1), make([]int, len(b)+1)
	best := 0
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			if a[i-1] == b[j-1] {
				cur[j] = prev[j-1] + 1
				best = max(best, cur[j])
			} else {
				cur[j] = 0
			}
		}
		prev, cur = cur, prev
	}
	return best
}

// notHostChar reports whether r cannot appear in a host name, an IP address
// (with brackets for IPv6) or a port.
func notHostChar(r rune) bool {
	switch {
	case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
		return false
	}
	return !strings.ContainsRune(".-_:[]", r)
}

// signer returns the edgegrid configuration that signs requests with c.
// MaxBody must be set: a zero MaxBody signs the hash of an empty body, and
// Akamai answers 401.
func (c Credentials) signer() edgegrid.Config {
	return edgegrid.Config{
		Host:         c.Host,
		ClientToken:  c.ClientToken,
		ClientSecret: c.ClientSecret,
		AccessToken:  c.AccessToken,
		AccountKey:   c.AccountKey,
		MaxBody:      edgegrid.MaxBodySize,
	}
}

func loadCredentials(sources []credentialSource) (Credentials, error) {
	if len(sources) == 0 {
		return Credentials{}, &ConfigError{Source: "New", Err: errors.New("no credentials: use WithEdgerc, WithEnv or WithCredentials")}
	}
	var tried []string
	for _, s := range sources {
		c, err := s.load()
		if errors.Is(err, errAbsent) {
			tried = append(tried, err.Error())
			continue
		}
		return c, err
	}
	return Credentials{}, &ConfigError{Source: "New", Err: fmt.Errorf("no credentials found: %s", strings.Join(tried, "; "))}
}
