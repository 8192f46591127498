package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/localcache"
	"github.com/gormpurge/gormpurge/backends/localcache/natsbus"
	"github.com/gormpurge/gormpurge/backends/localcache/redisstore"
)

// Environment variables read when --redis or --nats is not given, so that
// a password stays out of the process list.
const (
	redisURLEnv = "GORMPURGE_REDIS_URL"
	natsURLEnv  = "GORMPURGE_NATS_URL"
)

// defaultCacheTimeout bounds a cache command: connecting, and every purge
// or clear.
const defaultCacheTimeout = 30 * time.Second

// cacheOptions are the flags shared by the cache commands.
type cacheOptions struct {
	redis        string
	redisPrefix  string
	redisChannel string
	nats         string
	natsSubject  string
	timeout      time.Duration
	json         bool
}

// cacheLong is the cache command's help.
const cacheLong = `Purge or clear the application's own page cache (package localcache), on every
instance at once: the operator's tool for pages stale for a reason no purge
covers, such as a deploy that changed templates, or data changed outside the
application.

Name the caches to act on, one or several:

  --redis ADDR                  the shared Redis store (redisstore) whose keys start
                                with --redis-prefix (default "gormpurge")
  --redis ADDR --redis-channel C  publish on the Redis pub/sub bus C: every instance
                                that follows it (localcache.Follow) purges its
                                memory store; add --redis-prefix to act on the
                                store too
  --nats URL --nats-subject S   publish on the NATS bus S, likewise

ADDR is host:port, or a URL such as redis://user:password@host:6379/0
(rediss:// for TLS); --redis and --nats fall back to $` + redisURLEnv + ` and
$` + natsURLEnv + `, which keep a password out of the process list. No
password is ever printed.

URLs and tags are purged as the application's own purges are: a path such as
/posts/1 on every host, an absolute URL on its host only, a tag on every page
that listed it in Surrogate-Key. Each cache is told in turn; the summary says
what each did. Exit status 0 when every cache did it, 1 when one did not, 2 for
a usage error (nothing was sent).`

// cacheExample is the cache command's examples.
const cacheExample = `  # A page and a tag, from the Redis store every instance shares
  gormpurge cache purge --redis 10.0.0.7:6379 --redis-prefix blog /posts/hello-gormpurge --tags post-1

  # Every instance's memory store, kept coherent over NATS
  gormpurge cache clear --nats nats://10.0.0.8:4222 --nats-subject blog

  # Over Redis pub/sub, the password in the environment
  export GORMPURGE_REDIS_URL='redis://app:secret@10.0.0.7:6379/0'
  gormpurge cache purge --redis-channel blog https://www.example.com/`

func newCacheCmd(a *app) *cobra.Command {
	o := &cacheOptions{}
	cmd := &cobra.Command{
		Use:     "cache",
		Short:   "Purge or clear the application's own page cache, on Redis or over a bus",
		Long:    cacheLong,
		Example: cacheExample,
		Args:    cobra.ArbitraryArgs,
		RunE:    noCommand,
	}
	pf := cmd.PersistentFlags()
	pf.SortFlags = false
	pf.StringVar(&o.redis, "redis", "", "the Redis `ADDR` (host:port or redis://[user:password@]host:port/db); default $"+redisURLEnv)
	pf.StringVar(&o.redisPrefix, "redis-prefix", redisstore.DefaultPrefix, "the key `PREFIX` of the Redis store, as given to redisstore.WithPrefix")
	pf.StringVar(&o.redisChannel, "redis-channel", "", "publish on the Redis pub/sub bus `CHANNEL`, as given to redisstore.NewBus")
	pf.StringVar(&o.nats, "nats", "", "the NATS server `URL`, such as nats://127.0.0.1:4222; default $"+natsURLEnv)
	pf.StringVar(&o.natsSubject, "nats-subject", "", "publish on the NATS bus `SUBJECT`, as given to natsbus.New")
	group(pf, "Caches", "redis", "redis-prefix", "redis-channel", "nats", "nats-subject")
	pf.DurationVar(&o.timeout, "timeout", defaultCacheTimeout, "give up after this `DURATION`, in all")
	pf.BoolVar(&o.json, "json", false, "print the summary as JSON")
	group(pf, "Output", "timeout", "json")
	cmd.AddCommand(newCacheClearCmd(a, o), newCachePurgeCmd(a, o))
	return cmd
}

func newCacheClearCmd(a *app, o *cacheOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "clear",
		Short: "Empty the page cache: the Redis store, or every instance's over the bus",
		Long: `Empty the page cache: remove every entry of the Redis store (only those under
--redis-prefix), or tell every instance following the bus to empty its memory
store. Every page is rendered again on its next request: expect a burst of
load on the database.`,
		Example: `  gormpurge cache clear --redis 127.0.0.1:6379 --redis-prefix blog
  gormpurge cache clear --nats nats://127.0.0.1:4222 --nats-subject blog`,
		Args: noArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			return a.cache(cmd, o, nil)
		}),
	}
}

func newCachePurgeCmd(a *app, o *cacheOptions) *cobra.Command {
	var (
		files []string
		tags  []string
	)
	cmd := &cobra.Command{
		Use:   "purge [flags] (URL... | -) [--tags T,...]",
		Short: "Remove URLs and tagged pages from the page cache, on every instance",
		Long: `Remove pages from the page cache, on every instance: each URL (a path such as
/posts/1 on every host, an absolute URL on its host only) and every page that
listed one of --tags in its Surrogate-Key. URLs come from the arguments, from
files (--file, one per line; blank lines and lines starting with # are skipped),
or from standard input with - . They are checked before anything is sent: one
invalid input refuses the whole run with exit status 2.`,
		Example: `  gormpurge cache purge --redis 127.0.0.1:6379 --redis-prefix blog / /posts/hello-gormpurge
  gormpurge cache purge --nats nats://127.0.0.1:4222 --nats-subject blog --tags post-1,post-2
  grep ^/posts changed.txt | gormpurge cache purge --redis-channel blog -`,
		Args: cobra.ArbitraryArgs,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			r, err := a.cacheRequest(args, files, tags)
			if err != nil {
				return err
			}
			return a.cache(cmd, o, &r)
		}),
	}
	f := cmd.Flags()
	f.SortFlags = false
	f.StringArrayVarP(&files, "file", "f", nil, "read URLs from `FILE`, one per line (# comments and blank lines skipped); - is standard input; repeatable")
	f.Var((*commaList)(&tags), "tags", "purge the pages tagged `T`; comma-separated or repeated for several")
	group(f, "Objects", "file", "tags")
	return cmd
}

// cacheRequest reads and checks the URLs and tags of cache purge.
func (a *app) cacheRequest(args, files, tags []string) (backends.Request, error) {
	ins, err := readInputs(args, files, a.stdin)
	if err != nil {
		return backends.Request{}, err
	}
	urls, bad := check(ins, checkURL(pathsAllowed, ""))
	var tagIns []input
	for i, t := range tags {
		tagIns = append(tagIns, input{value: strings.TrimSpace(t), where: "--tags value " + strconv.Itoa(i+1)})
	}
	okTags, badTags := check(tagIns, checkTag(nil, "the page cache"))
	bad = append(bad, badTags...)
	if len(bad) > 0 {
		return backends.Request{}, invalidError(bad, "fix them")
	}
	if len(urls) == 0 && len(okTags) == 0 {
		return backends.Request{}, usageErrorf("nothing to purge: give URLs as arguments, --file FILE or - to read standard input, or --tags")
	}
	return backends.NewRequest(urls, okTags), nil
}

// cacheTarget is one cache a cache command acts on.
type cacheTarget struct {
	Kind    string `json:"kind"`             // "redis-store", "redis-channel", "nats-subject"
	Address string `json:"address"`          // without credentials
	Name    string `json:"name"`             // the prefix, channel or subject
	Detail  string `json:"detail,omitempty"` // what it did
	Error   string `json:"error,omitempty"`  // why it did not
	backend *localcache.Backend
	// listeners, when not nil, counts the instances subscribed to the
	// channel, so that a purge published to nobody is not reported as
	// reaching every instance.
	listeners func(ctx context.Context) (int64, error)
}

// String names the target for people.
func (t *cacheTarget) String() string {
	switch t.Kind {
	case "redis-store":
		return fmt.Sprintf("Redis store %s, prefix %q", t.Address, t.Name)
	case "redis-channel":
		return fmt.Sprintf("Redis channel %q on %s", t.Name, t.Address)
	}
	return fmt.Sprintf("NATS subject %q on %s", t.Name, t.Address)
}

// cacheReport is the summary of a cache command.
type cacheReport struct {
	Action  string         `json:"action"` // "purge" or "clear"
	URLs    []string       `json:"urls,omitempty"`
	Tags    []string       `json:"tags,omitempty"`
	Caches  []*cacheTarget `json:"caches"`
	Elapsed string         `json:"elapsed"`
}

// cache runs cache purge (r not nil) or cache clear on the caches the
// flags name.
func (a *app) cache(cmd *cobra.Command, o *cacheOptions, r *backends.Request) error {
	if err := o.resolve(cmd, a); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), o.timeout)
	defer cancel()
	start := time.Now()
	targets, closeAll, err := a.openCaches(ctx, cmd, o)
	defer closeAll()
	if err != nil {
		return err
	}
	rep := &cacheReport{Action: "clear", Caches: targets}
	if r != nil {
		rep.Action, rep.URLs, rep.Tags = "purge", r.URLs, r.Tags
	}
	failed := 0
	for _, t := range targets {
		var (
			res backends.Result
			err error
		)
		if r != nil {
			res, err = t.backend.Purge(ctx, *r)
		} else {
			res, err = t.backend.PurgeAll(ctx)
		}
		if err != nil {
			failed++
			t.Error = redactText(err.Error(), o.redis)
			t.Error = redactServers(t.Error, o.nats)
			continue
		}
		t.Detail = "published"
		if t.listeners != nil {
			if n, err := t.listeners(ctx); err == nil && n == 0 {
				t.Detail = "published, but no instance is subscribed to this channel: check --redis-channel"
			} else if err == nil {
				t.Detail = fmt.Sprintf("published to %d subscribed instances", n)
			}
		}
		if t.Kind == "redis-store" {
			t.Detail = res.Detail
		}
	}
	rep.Elapsed = time.Since(start).Round(time.Millisecond).String()
	if err := rep.write(a.stdout, formatOf(o.json)); err != nil {
		return err
	}
	if failed > 0 {
		return failedf("%d of %s failed", failed, countOf(len(targets), "cache", "caches"))
	}
	return nil
}

// resolve checks the cache flags, and reads the environment for the
// addresses left out.
func (o *cacheOptions) resolve(cmd *cobra.Command, a *app) error {
	if o.redis == "" {
		o.redis = a.variable(redisURLEnv)
	}
	if o.nats == "" {
		o.nats = a.variable(natsURLEnv)
	}
	flags := cmd.Flags()
	switch {
	case o.timeout <= 0:
		return usageErrorf("--timeout %v: need a positive duration", o.timeout)
	case o.redis == "" && (o.redisChannel != "" || flags.Changed("redis-prefix")):
		return usageErrorf("--redis-channel and --redis-prefix need --redis ADDR (or $%s): the Redis server", redisURLEnv)
	case o.nats != "" && o.natsSubject == "" && flags.Changed("nats"):
		return usageErrorf("--nats needs --nats-subject: the subject the instances follow, as given to natsbus.New")
	case o.natsSubject != "" && o.nats == "":
		return usageErrorf("--nats-subject needs --nats URL (or $%s): the NATS server", natsURLEnv)
	case o.redis == "" && o.natsSubject == "":
		return usageErrorf("no cache named: pass --redis ADDR for a shared Redis store, " +
			"--redis ADDR --redis-channel CHANNEL or --nats URL --nats-subject SUBJECT to reach every instance over a bus")
	}
	return nil
}

// openCaches connects to the caches o names and returns them, with a
// function that closes the connections, to call even on an error.
func (a *app) openCaches(ctx context.Context, cmd *cobra.Command, o *cacheOptions) ([]*cacheTarget, func(), error) {
	var (
		targets []*cacheTarget
		closers []func()
	)
	closeAll := func() {
		for _, c := range closers {
			c()
		}
	}
	if o.redis != "" {
		opts, err := redisOptions(o.redis)
		if err != nil {
			return nil, closeAll, err
		}
		rdb := redis.NewClient(opts)
		closers = append(closers, func() { _ = rdb.Close() })
		addr := opts.Addr
		if opts.DB != 0 {
			addr += "/" + strconv.Itoa(opts.DB)
		}
		if err := rdb.Ping(ctx).Err(); err != nil {
			return nil, closeAll, failedf("reaching Redis at %s: %s", addr, redactText(err.Error(), o.redis))
		}
		// The store unless only a bus is named: an application that
		// keeps pages in memory has no store to purge.
		if o.redisChannel == "" || cmd.Flags().Changed("redis-prefix") {
			store, err := redisstore.New(rdb, redisstore.WithPrefix(o.redisPrefix), redisstore.WithLogger(a.logger))
			if errors.Is(err, redisstore.ErrUnsuitableServer) {
				return nil, closeAll, failedf("Redis at %s: %v", addr, err)
			}
			if err != nil {
				return nil, closeAll, usageErrorf("--redis-prefix: %v", err)
			}
			b, err := localcache.NewBackend(store)
			if err != nil {
				return nil, closeAll, err
			}
			targets = append(targets, &cacheTarget{Kind: "redis-store", Address: addr, Name: o.redisPrefix, backend: b})
		}
		if o.redisChannel != "" {
			bus, err := redisstore.NewBus(rdb, o.redisChannel, redisstore.WithBusLogger(a.logger))
			if err != nil {
				return nil, closeAll, usageErrorf("--redis-channel: %v", err)
			}
			b, err := busBackend(bus)
			if err != nil {
				return nil, closeAll, err
			}
			channel := o.redisChannel
			targets = append(targets, &cacheTarget{Kind: "redis-channel", Address: addr, Name: channel, backend: b,
				listeners: func(ctx context.Context) (int64, error) {
					n, err := rdb.PubSubNumSub(ctx, channel).Result()
					return n[channel], err
				}})
		}
	}
	if o.natsSubject != "" {
		shown := natsbus.RedactServers(o.nats)
		timeout := time.Until(deadlineOf(ctx))
		nc, err := nats.Connect(o.nats, nats.Name("gormpurge cache"), nats.Timeout(max(timeout, time.Millisecond)))
		if err != nil {
			return nil, closeAll, failedf("reaching NATS at %s: %s", shown, redactServers(err.Error(), o.nats))
		}
		closers = append(closers, nc.Close)
		bus, err := natsbus.New(nc, o.natsSubject, natsbus.WithLogger(a.logger))
		if err != nil {
			return nil, closeAll, usageErrorf("--nats-subject: %v", err)
		}
		b, err := busBackend(bus)
		if err != nil {
			return nil, closeAll, err
		}
		targets = append(targets, &cacheTarget{Kind: "nats-subject", Address: shown, Name: o.natsSubject, backend: b})
	}
	return targets, closeAll, nil
}

// redactServers returns msg without the credentials of any URL of
// servers, a comma-separated NATS server list, as written or decoded.
func redactServers(msg, servers string) string {
	msg = strings.ReplaceAll(msg, servers, natsbus.RedactServers(servers))
	for _, u := range strings.Split(servers, ",") {
		msg = redactText(msg, strings.TrimSpace(u))
	}
	return msg
}

// busBackend returns a Backend that publishes on bus: its own store is an
// empty memory store (this command serves no pages), so its purges only
// reach the instances following the bus.
func busBackend(bus localcache.Bus) (*localcache.Backend, error) {
	empty, err := localcache.NewMemoryStore()
	if err != nil {
		return nil, err
	}
	return localcache.NewBackend(empty, localcache.WithBus(bus))
}

// deadlineOf returns ctx's deadline; cache commands always have one.
func deadlineOf(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}

// redisOptions reads --redis: host:port, or a redis:// or rediss:// URL.
// Its errors never hold a password.
func redisOptions(addr string) (*redis.Options, error) {
	if !strings.Contains(addr, "://") {
		if strings.ContainsAny(addr, "@/ ") {
			return nil, usageErrorf("--redis %s: want host:port, or a URL such as redis://user:password@host:6379/0", backends.RedactURL(addr))
		}
		return &redis.Options{Addr: addr}, nil
	}
	opts, err := redis.ParseURL(addr)
	if err != nil {
		// Not wrapped: the parser's message may quote the URL.
		return nil, usageErrorf("--redis %s: %s", backends.RedactURL(addr), redactText(err.Error(), addr))
	}
	return opts, nil
}

func (r *cacheReport) write(w io.Writer, f outputFormat) error {
	if f == jsonOutput {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(r)
	}
	var b strings.Builder
	what := "Cleared the page cache"
	if r.Action == "purge" {
		var objs []string
		if len(r.URLs) > 0 {
			objs = append(objs, countOf(len(r.URLs), "URL", "URLs"))
		}
		if len(r.Tags) > 0 {
			objs = append(objs, countOf(len(r.Tags), "tag", "tags"))
		}
		what = "Purged " + strings.Join(objs, " and ")
	}
	failed := 0
	for _, t := range r.Caches {
		if t.Error != "" {
			failed++
		}
	}
	if failed > 0 {
		what += fmt.Sprintf(" (%d of %s failed)", failed, countOf(len(r.Caches), "cache", "caches"))
	}
	fmt.Fprintf(&b, "%s in %s:\n", what, r.Elapsed)
	for _, t := range r.Caches {
		switch {
		case t.Error != "":
			fmt.Fprintf(&b, "  %s: FAILED: %s\n", t, t.Error)
		case t.Kind == "redis-store" || t.listeners != nil:
			fmt.Fprintf(&b, "  %s: %s\n", t, t.Detail)
		default:
			fmt.Fprintf(&b, "  %s: published to every instance following it\n", t)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
