package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/spf13/pflag"

	"github.com/gormpurge/gormpurge/backends"
)

// maxTokenFile bounds what a token file flag reads: an API token is a few
// dozen bytes.
const maxTokenFile = 64 << 10

// secretSource is where a CDN backend's API token comes from: a file flag,
// else an environment variable. A token is never a flag's value, which
// the process list would show.
type secretSource struct {
	flag string // "cloudflare-token-file"
	env  string // "CLOUDFLARE_API_TOKEN"
}

// read returns the token of file (the flag's value, when set) or of the
// environment, and where it came from: "--flag FILE" or the variable. It
// never quotes the token. The file may end with a newline.
func (s secretSource) read(a *app, set bool, file string) (token, from string, err error) {
	if set {
		if file == "" {
			return "", "", usageErrorf("--%s: name the file holding the API token", s.flag)
		}
		f, err := os.Open(file)
		if err != nil {
			return "", "", usageErrorf("--%s: %v", s.flag, err)
		}
		defer func() { _ = f.Close() }()
		buf, err := io.ReadAll(io.LimitReader(f, maxTokenFile+1))
		if err != nil {
			return "", "", usageErrorf("--%s: %v", s.flag, err)
		}
		if len(buf) > maxTokenFile {
			return "", "", usageErrorf("--%s %s: more than %d bytes: the file should hold the API token only", s.flag, file, maxTokenFile)
		}
		token = strings.TrimRight(string(buf), "\r\n")
		if strings.TrimSpace(token) == "" {
			return "", "", usageErrorf("--%s %s: the file is empty: it should hold the API token", s.flag, file)
		}
		return token, "--" + s.flag, nil
	}
	token = a.variable(s.env)
	if token == "" {
		return "", "", usageErrorf("no API token: set %s, or pass --%s FILE (a token is never given on the command line, which the process list shows)", s.env, s.flag)
	}
	return token, s.env, nil
}

// cdnAccount is what a CDN backend's requests name: the account's id (a
// zone, a service) and the API token, with where each came from (a flag
// or a variable), for the errors that name them.
type cdnAccount struct {
	id, idFrom       string
	token, tokenFrom string
}

// accountSource is where a CDN backend's account id and API token come
// from: the id flag, else the id variable; the token as token says.
type accountSource struct {
	idFlag string // "fastly-service"
	idEnv  string // "FASTLY_SERVICE_ID"
	noID   string // the error when neither is set
	token  secretSource
}

// read returns the account of the flags (id is the id flag's value,
// tokenFile the token file flag's) or of the environment. Its usage error
// tells every one missing, one a line.
func (src accountSource) read(a *app, fs *pflag.FlagSet, id, tokenFile string) (cdnAccount, error) {
	acct := cdnAccount{id: id, idFrom: "--" + src.idFlag}
	if !fs.Changed(src.idFlag) {
		acct.id, acct.idFrom = a.variable(src.idEnv), src.idEnv
	}
	var missing []error
	if acct.id == "" {
		missing = append(missing, errors.New(src.noID))
	}
	var err error
	acct.token, acct.tokenFrom, err = src.token.read(a, fs.Changed(src.token.flag), tokenFile)
	if err != nil {
		missing = append(missing, err)
	}
	if len(missing) > 0 {
		return cdnAccount{}, joinUsage(missing)
	}
	return acct, nil
}

// optionOf returns the optionOf of [configErrors] for a backend whose
// configuration errors are E: fields returns the option an E names, and
// its problem.
func optionOf[E error](fields func(E) (option string, problem error)) func(error) (string, error, bool) {
	return func(e error) (string, error, bool) {
		var ce E
		if errors.As(e, &ce) {
			option, problem := fields(ce)
			return option, problem, true
		}
		return "", nil, false
	}
}

// configErrors turns the error of a backend's New, a join of its
// configuration errors, into a usage error naming the flag or the variable
// at fault instead of the Go option: flagOf maps an option (such as
// "WithZone") or a variable to the flag or variable the user set. optionOf
// returns the option a configuration error names, and its problem.
func configErrors(err error, optionOf func(error) (option string, problem error, ok bool), flagOf map[string]string) error {
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	var lines []string
	for _, e := range errs {
		option, problem, ok := optionOf(e)
		if !ok {
			lines = append(lines, e.Error())
			continue
		}
		name, ok := flagOf[option]
		if !ok {
			name = option
		}
		lines = append(lines, name+": "+problem.Error())
	}
	return usageErrorf("%s", strings.Join(lines, "\n"))
}

// cdnBackend is what the purge command needs of a CDN backend: a backend
// that paces itself, purges everything, and closes.
type cdnBackend interface {
	backends.Backend
	backends.Pacer
	backends.PurgeAller
	backends.Closer
}

// purgeLog keeps the result of every call to a backend's Purge, those of
// attempts the dispatcher retried included: the CDNs' ids and the HTTP
// caches' per-node counts in the summary. The recorders (cdnRecorder,
// attemptRecorder) embed it next to the backend they wrap; they are two
// types only because the dispatcher must see each backend's own optional
// methods (Pace, PurgeAll, Close), no more and no fewer.
type purgeLog struct {
	mu  sync.Mutex
	res []backends.Result
}

// purge calls b's Purge and keeps its result.
func (l *purgeLog) purge(ctx context.Context, b backends.Backend, req backends.Request) (backends.Result, error) {
	res, err := b.Purge(ctx, req)
	l.mu.Lock()
	l.res = append(l.res, res)
	l.mu.Unlock()
	return res, err
}

// results returns the results kept so far, in the order the calls ended.
func (l *purgeLog) results() []backends.Result {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.res)
}

// cdnRecorder is a CDN backend that keeps the result of every call to
// Purge (purgeLog). It keeps the backend's Pace, PurgeAll and Close,
// which the dispatcher looks for.
type cdnRecorder struct {
	cdnBackend
	purgeLog
}

func (r *cdnRecorder) Purge(ctx context.Context, req backends.Request) (backends.Result, error) {
	return r.purge(ctx, r.cdnBackend, req)
}

// splitIDs returns the ids of a comma-separated list, without empty ones.
func splitIDs(s string) []string {
	var out []string
	for id := range strings.SplitSeq(s, ",") {
		if id != "" {
			out = append(out, id)
		}
	}
	return out
}

// idsIn returns the of of an [idReport] for a backend whose results list
// the ids of its accepted requests, comma-separated, under key.
func idsIn(key string) func(ids map[string]string) []acceptedRequest {
	return func(ids map[string]string) []acceptedRequest {
		var out []acceptedRequest
		for _, id := range splitIDs(ids[key]) {
			out = append(out, acceptedRequest{ID: id})
		}
		return out
	}
}

// pathOnHosts returns the https URLs the site-relative path p becomes on
// each of siteHosts, as the CDN backends' WithHostnames make them.
func pathOnHosts(p string, siteHosts []string) []string {
	out := make([]string, 0, len(siteHosts))
	for _, h := range siteHosts {
		if c, err := backends.CanonicalHost("https", h); err == nil {
			h = c
		}
		out = append(out, "https://"+h+p)
	}
	return out
}

// describeHosts returns ", paths on www.example.com and example.com", or
// "" without site hosts.
func describeHosts(siteHosts []string) string {
	if len(siteHosts) == 0 {
		return ""
	}
	return fmt.Sprintf("; paths on %s", strings.Join(siteHosts, ", "))
}

// joinUsage returns a usage error that tells each of errs, one a line.
func joinUsage(errs []error) error {
	lines := make([]string, len(errs))
	for i, err := range errs {
		var xe *exitError
		if errors.As(err, &xe) && xe.err != nil {
			err = xe.err
		}
		lines[i] = err.Error()
	}
	return usageErrorf("%s", strings.Join(lines, "\n"))
}
