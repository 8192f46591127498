package main

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"

	"github.com/gormpurge/gormpurge"
	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/akamai"
	"github.com/gormpurge/gormpurge/backends/httppurge"
	"github.com/gormpurge/gormpurge/backends/localcache"
	"github.com/gormpurge/gormpurge/dispatcher"
	"github.com/gormpurge/gormpurge/warm"
)

// config is what the flags set (see parseFlags).
type config struct {
	addr          string
	dbPath        string
	varnish       string
	siteHost      string
	akamaiEdgerc  string
	akamaiSection string
	akamaiNetwork string
	warm          bool
	verbose       bool
	redis         string // -redis: host:port or redis:// URL
	redisBus      bool   // -redis-bus
	nats          string // -nats: NATS URL
	cacheName     string // -cache-name: Redis prefix and channel, NATS subject
	metricsAddr   string // -metrics-addr: serve /metrics there only; "" for the blog's address
	traceStdout   bool   // -trace-stdout

	// siteURL is the blog's own address, such as "http://127.0.0.1:8080":
	// the scheme and host of the pages the warmer fills. run sets it once
	// it listens.
	siteURL string

	// For the tests: hooks on every purge and warm-up, the client that
	// reaches a fake Akamai, and shorter bounds than editWait and
	// shutdownTimeout when not zero.
	onPurge         func(dispatcher.Report)
	onWarm          func(warm.Result)
	akamaiClient    *http.Client
	editWait        time.Duration
	shutdownTimeout time.Duration
}

// app is the blog: its database with the gormpurge plugin, the local page
// cache, the dispatcher that delivers purges to the caches, and the HTTP
// handler.
type app struct {
	cfg     config
	log     *slog.Logger // the blog's own records: purges, warm-ups
	detail  *slog.Logger // the components' records: Warn and above, all with -v
	db      *gorm.DB
	store   localcache.Store        // the page cache: memory's, or a shared Redis store
	memory  *localcache.MemoryStore // this instance's store; nil with a shared Redis store
	bus     localcache.Bus          // carries purges between instances; nil without
	local   *localcache.Backend     // purges store, and publishes on bus
	rdb     *redis.Client           // -redis
	nc      *nats.Conn              // -nats
	disp    *dispatcher.Dispatcher
	purger  *gormpurge.Plugin             // tags pages with what they read (TagReads), purges after commits
	warmer  *warm.Warmer                  // nil without -warm
	tel     *telemetry                    // the Observer every component reports to, /metrics, spans
	closers []func(context.Context) error // backends to close after the dispatcher

	stopFollow func() // stops following the bus, and waits; nil without one
	pages      map[string]*template.Template
	handler    http.Handler

	seeded    bool   // the database was created and seeded by this run
	firstSlug string // a post to point the visitor at
}

// newApp opens (or creates and seeds) the database and wires the plugin,
// the caches and the dispatcher. Log records go to out. Close it when done.
func newApp(cfg config, out io.Writer) (_ *app, err error) {
	if cfg.cacheName == "" {
		cfg.cacheName = defaultCacheName
	}
	level, detail := slog.LevelInfo, slog.LevelWarn
	if cfg.verbose {
		level, detail = slog.LevelDebug, slog.LevelDebug
	}
	a := &app{
		cfg:    cfg,
		log:    slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: level})),
		detail: slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: detail})),
	}
	defer func() {
		if err != nil {
			a.closeQuietly()
		}
	}()
	if err := a.openTelemetry(out); err != nil {
		return nil, err
	}
	if err := a.openCache(); err != nil {
		return nil, err
	}
	if a.pages, err = parsePages(); err != nil {
		return nil, err
	}
	if err := a.openDB(out); err != nil {
		return nil, err
	}

	bs, err := a.backends()
	if err != nil {
		return nil, err
	}

	opts := []dispatcher.Option{dispatcher.WithLogger(a.detail), dispatcher.WithOnResult(a.logPurge),
		dispatcher.WithObserver(a.tel.observer)}
	if cfg.warm {
		if cfg.siteURL == "" {
			return nil, errors.New("-warm: the blog's address is not known") // run sets it
		}
		// Warm-ups go through the blog's own handler, in this process,
		// as requests for the address the blog prints: the local cache
		// keys pages by host, so they fill the entries visitors of that
		// address get. The handler needs the plugin, which needs the
		// dispatcher, which needs the warmer: the warmer calls a.handler
		// once it is set, below.
		own := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { a.handler.ServeHTTP(w, r) })
		a.warmer, err = warm.New(warm.WithHandler(own), warm.WithBaseURL(cfg.siteURL),
			warm.WithLogger(a.detail), warm.WithOnResult(a.logWarm), warm.WithObserver(a.tel.observer))
		if err != nil {
			return nil, err
		}
		opts = append(opts, dispatcher.WithWarmup(localcache.BackendName, a.warmer))
	}
	a.disp, err = dispatcher.New(bs, opts...)
	if err != nil {
		return nil, err
	}

	// The seed, if any, was written before this: nothing was cached yet,
	// so there was nothing to purge.
	if a.purger, err = a.plugin(); err != nil {
		return nil, err
	}
	a.handler = a.routes()
	return a, nil
}

// tagHeaders are the headers a page lists its read tags in: Surrogate-Key
// for the local cache (and Fastly, were the blog behind it), xkey for
// Varnish's xkey module with -varnish, and Edge-Cache-Tag with -akamai-*,
// in Akamai's form of the tags ("posts.1": Akamai does not allow ':'), the
// form its backend purges them as.
func (a *app) tagHeaders() []backends.TagHeader {
	hs := []backends.TagHeader{backends.SurrogateKeyHeader()}
	if a.cfg.varnish != "" {
		hs = append(hs, backends.XKeyHeader())
	}
	if a.cfg.akamaiEdgerc != "" {
		hs = append(hs, akamai.EdgeCacheTagHeader())
	}
	return hs
}

// plugin returns the gormpurge plugin, installed on the database: pages
// are tagged with the rows they read (WithReadTags, and TagReads in
// routes), and each commit purges the read tags of the rows it wrote, and
// the post's page by URL (Post.AbsoluteURL).
func (a *app) plugin() (*gormpurge.Plugin, error) {
	p := gormpurge.New(a.disp, gormpurge.WithLogger(a.detail), gormpurge.WithObserver(a.tel.observer),
		gormpurge.WithReadTags(), gormpurge.WithTagHeaders(a.tagHeaders()...))
	if err := p.Register(&Post{}, &Tag{}, &Author{}); err != nil {
		return nil, err
	}
	if err := a.db.Use(p); err != nil {
		return nil, err
	}
	return p, nil
}

// backends returns the backends purges go to. The local cache is always
// there (with a bus, its purges are published for the other instances);
// Varnish and Akamai are added by flags. The plugin hands paths such
// as "/posts/hello" to every backend: the local cache purges a path on
// every host, Varnish gets it with the -site-host Host header, Akamai on
// the -site-host host.
func (a *app) backends() ([]backends.Backend, error) {
	var opts []localcache.BackendOption
	if a.bus != nil {
		opts = append(opts, localcache.WithBus(a.bus))
	}
	local, err := localcache.NewBackend(a.store, opts...)
	if err != nil {
		return nil, err
	}
	a.local = local
	bs := []backends.Backend{local}
	if a.cfg.varnish != "" {
		host := a.cfg.siteHost
		if host == "" {
			host = hostOf(a.cfg.varnish) // a Varnish on this machine, browsed at its own address
		}
		b, err := httppurge.New(httppurge.WithName("varnish"), httppurge.WithNodes(a.cfg.varnish),
			httppurge.WithSiteHost(host), httppurge.WithLogger(a.detail))
		if err != nil {
			return nil, fmt.Errorf("-varnish %s: %w", a.cfg.varnish, err)
		}
		a.closers = append(a.closers, b.Close)
		bs = append(bs, afterLocal{Backend: b, local: local})
	}
	if a.cfg.akamaiEdgerc != "" {
		b, err := a.akamaiBackend()
		if err != nil {
			return nil, err
		}
		a.closers = append(a.closers, b.Close)
		bs = append(bs, afterLocal{Backend: b, local: local})
	}
	return bs, nil
}

// openDB opens the SQLite database, creating its tables and the first posts
// when the file is new.
func (a *app) openDB(out io.Writer) error {
	gormLog := logger.Discard
	if a.cfg.verbose {
		gormLog = logger.New(log.New(out, "", log.LstdFlags), logger.Config{LogLevel: logger.Info, SlowThreshold: time.Second})
	}
	// WAL lets pages be read while an edit is written, by this process or
	// another instance of the blog on the same file; an immediate
	// transaction takes the write lock at BEGIN, and the busy timeout makes
	// a writer wait up to 5 seconds for it, so that two edits (from one
	// instance or two) wait for each other instead of failing.
	dsn := "file:" + a.cfg.dbPath + "?_busy_timeout=5000&_journal_mode=WAL&_txlock=immediate&_foreign_keys=on"
	db, err := gorm.Open(sqlite.Open(dsn), &gorm.Config{Logger: gormLog})
	if err != nil {
		return fmt.Errorf("open %s: %w", a.cfg.dbPath, err)
	}
	a.db = db
	if err := db.AutoMigrate(&Author{}, &Post{}, &Tag{}); err != nil {
		return fmt.Errorf("create the tables in %s: %w", a.cfg.dbPath, err)
	}
	if a.seeded, err = seed(db); err != nil {
		return fmt.Errorf("seed %s: %w", a.cfg.dbPath, err)
	}
	var first Post
	if err := db.Order("id").Take(&first).Error; err != nil && !errors.Is(err, gorm.ErrRecordNotFound) {
		return err
	}
	a.firstSlug = first.Slug
	if a.seeded {
		a.log.Info("created the database with a few posts", "db", a.cfg.dbPath)
	} else {
		a.log.Info("using the existing database", "db", a.cfg.dbPath)
	}
	return nil
}

// akamaiBackend returns the Akamai Fast Purge backend of the -akamai flags.
func (a *app) akamaiBackend() (*akamai.Backend, error) {
	if a.cfg.siteHost == "" {
		return nil, errors.New("-akamai-edgerc needs -site-host: the public host name Akamai serves the blog on, such as www.example.com")
	}
	var network akamai.Network
	switch a.cfg.akamaiNetwork {
	case "staging":
		network = akamai.Staging
	case "production":
		network = akamai.Production
	default:
		return nil, fmt.Errorf("-akamai-network %q: use staging or production", a.cfg.akamaiNetwork)
	}
	opts := []akamai.Option{
		akamai.WithEdgerc(a.cfg.akamaiEdgerc, a.cfg.akamaiSection),
		akamai.WithNetwork(network),
		akamai.WithHostnames(a.cfg.siteHost),
		akamai.WithLogger(a.detail),
	}
	if a.cfg.akamaiClient != nil {
		opts = append(opts, akamai.WithHTTPClient(a.cfg.akamaiClient))
	}
	b, err := akamai.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("-akamai-edgerc %s: %w", a.cfg.akamaiEdgerc, err)
	}
	return b, nil
}

// afterLocal purges the local cache before the cache it wraps. Varnish and
// Akamai fetch the blog's pages through its local cache: purged first, they
// could fetch the old page from it again and keep it. Each lane of the
// dispatcher runs on its own, so the local backend's own purge may come
// later: purging the local store here too costs a map lookup per object.
// It does not pass Close on (it is no backends.Closer), so the dispatcher
// leaves the wrapped backend open: the app closes it with a context of its
// own, since the dispatcher may have used up Close's (see shutdown).
type afterLocal struct {
	backends.Backend
	local *localcache.Backend
}

func (b afterLocal) Purge(ctx context.Context, r backends.Request) (backends.Result, error) {
	_, _ = b.local.Purge(ctx, r) // the local backend's own lane reports its failures
	return b.Backend.Purge(ctx, r)
}

// Pace passes the wrapped backend's pacing (Akamai's rate limits) on to the
// dispatcher.
func (b afterLocal) Pace(ctx context.Context, r backends.Request) error {
	if p, ok := b.Backend.(backends.Pacer); ok {
		return p.Pace(ctx, r)
	}
	return nil
}

// logPurge logs each batch a backend purged, or failed to.
func (a *app) logPurge(r dispatcher.Report) {
	attrs := []slog.Attr{
		slog.String("backend", r.Backend),
		slog.String("outcome", r.Outcome.String()),
		slog.Any("urls", r.Request.URLs),
		slog.Any("tags", r.Request.Tags),
	}
	if r.Result.Detail != "" {
		attrs = append(attrs, slog.String("result", r.Result.Detail)) // the local cache: "removed 5 entries"
	}
	if len(r.Result.IDs) > 0 {
		attrs = append(attrs, slog.Any("ids", r.Result.IDs))
	}
	level := slog.LevelInfo
	if r.Err != nil {
		level = slog.LevelWarn
		attrs = append(attrs, slog.Any("error", r.Err))
	}
	a.log.LogAttrs(context.Background(), level, "purge", attrs...)
	if a.cfg.onPurge != nil {
		a.cfg.onPurge(r)
	}
}

// logWarm logs each page warmed after a purge.
func (a *app) logWarm(r warm.Result) {
	if r.Err != nil {
		a.log.Warn("warm-up failed", "url", r.URL, "error", r.Err)
	} else {
		a.log.Info("warmed", "url", r.URL, "status", r.Status, "cache", r.Cache)
	}
	if a.cfg.onWarm != nil {
		a.cfg.onWarm(r)
	}
}

// Handler returns the blog's HTTP handler.
func (a *app) Handler() http.Handler { return a.handler }

// Flush waits until every purge committed so far has been delivered to
// every cache (or has failed for good).
func (a *app) Flush(ctx context.Context) error { return a.disp.Flush(ctx) }

// closeTimeout bounds what Close does after the dispatcher has stopped:
// stopping the warmer and closing the backends, which have nothing left to
// wait for by then.
const closeTimeout = 2 * time.Second

// Close delivers the purges still queued, within ctx, then stops the
// warmer, closes the backends, stops following the bus, closes the Redis
// or NATS client and the database, and writes the last spans. Call it
// after the HTTP server has shut down. Purges left undelivered when ctx ends make it
// return the dispatcher's *dispatcher.UndeliveredError (see shutdown).
func (a *app) Close(ctx context.Context) error {
	undelivered, err := a.shutdown(ctx)
	if undelivered != nil {
		return errors.Join(undelivered, err)
	}
	return err
}

// shutdown is Close, with the purges the dispatcher could not deliver
// within ctx apart from the other errors: a cache that is down does not
// make the blog's shutdown fail (see run).
func (a *app) shutdown(ctx context.Context) (*dispatcher.UndeliveredError, error) {
	var (
		undelivered *dispatcher.UndeliveredError
		errs        []error
	)
	if a.disp != nil {
		if err := a.disp.Close(ctx); !errors.As(err, &undelivered) {
			errs = append(errs, err)
		}
	}
	// The dispatcher may have used all of ctx: what follows gets a
	// context of its own, so that a backend's Close is not handed one
	// that has already expired (and does not report ctx's end again).
	closeCtx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	if a.warmer != nil {
		errs = append(errs, a.warmer.Close(closeCtx))
	}
	for _, c := range a.closers {
		errs = append(errs, c(closeCtx))
	}
	// After the dispatcher: its last purges were published on the bus.
	errs = append(errs, a.closeCache())
	if a.db != nil {
		if sqlDB, err := a.db.DB(); err == nil {
			errs = append(errs, sqlDB.Close())
		}
	}
	// Last, with a context of its own (the closers may have used closeCtx
	// up): the spans of the dispatcher's last calls ended in its Close.
	telCtx, cancelTel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancelTel()
	errs = append(errs, a.tel.close(telCtx))
	return undelivered, errors.Join(errs...)
}

// closeQuietly releases what a failed newApp had opened.
func (a *app) closeQuietly() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = a.Close(ctx)
}

// hostOf returns the host (and port) of a node address such as
// "http://127.0.0.1:6081" or "127.0.0.1:6081".
func hostOf(node string) string {
	if u, err := url.Parse(node); err == nil && u.Host != "" {
		return u.Host
	}
	return node
}
