package gormpurge_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/gormpurge/gormpurge"
	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/localcache"
	"github.com/gormpurge/gormpurge/backends/localcache/bustest"
	"github.com/gormpurge/gormpurge/dispatcher"
	"github.com/gormpurge/gormpurge/outbox"
)

// fleetMember is one instance of an application in a fleet: its own
// memory store behind its own server, a backend that publishes its purges
// on the bus, and Follow applying the others'.
type fleetMember struct {
	name    string
	store   *localcache.MemoryStore
	backend *localcache.Backend
	srv     *httptest.Server
}

// startFleet starts n instances serving db's articles, on one bus.
func startFleet(t *testing.T, db *gorm.DB, names ...string) []*fleetMember {
	t.Helper()
	hub := bustest.NewHub()
	quiet := slog.New(slog.DiscardHandler)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /articles/{id}", func(w http.ResponseWriter, r *http.Request) {
		var a lcArticle
		if err := db.WithContext(r.Context()).First(&a, r.PathValue("id")).Error; err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		_, _ = io.WriteString(w, a.Title)
	})
	var fleet []*fleetMember
	for _, name := range names {
		store, err := localcache.NewMemoryStore()
		require.NoError(t, err)
		bus, err := hub.Instance()
		require.NoError(t, err)
		backend, err := localcache.NewBackend(store, localcache.WithBus(bus))
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- localcache.Follow(ctx, store, bus, localcache.WithFollowLogger(quiet)) }()
		t.Cleanup(func() {
			cancel()
			<-done
		})
		srv := httptest.NewServer(localcache.Middleware(store, localcache.WithUntilPurged(), localcache.WithLogger(quiet))(mux))
		t.Cleanup(srv.Close)
		m := &fleetMember{name: name, store: store, backend: backend, srv: srv}
		require.Eventually(t, func() bool {
			g, err := store.Generation(context.Background())
			return err == nil && g >= 2 && !store.Suspended() // Follow is up
		}, 5*time.Second, time.Millisecond)
		fleet = append(fleet, m)
	}
	return fleet
}

// visit GETs path on m and returns X-Cache and the body.
func (m *fleetMember) visit(t *testing.T, path string) (string, string) {
	t.Helper()
	res, err := m.srv.Client().Get(m.srv.URL + path)
	require.NoError(t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.StatusCode)
	return res.Header.Get(localcache.XCache), string(body)
}

// cacheEverywhere visits path on every member until each serves it from
// its cache with body want.
func cacheEverywhere(t *testing.T, fleet []*fleetMember, path, want string) {
	t.Helper()
	for _, m := range fleet {
		m.visit(t, path)
		xc, body := m.visit(t, path)
		require.Equal(t, "HIT", xc, "instance %s", m.name)
		require.Equal(t, want, body, "instance %s", m.name)
	}
}

// expectFresh checks that every member's next visit renders want, which
// it fetches from the database, not its cache.
func expectFresh(t *testing.T, fleet []*fleetMember, path, want string) {
	t.Helper()
	for _, m := range fleet {
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			res, err := m.srv.Client().Get(m.srv.URL + path)
			require.NoError(c, err)
			defer res.Body.Close()
			body, err := io.ReadAll(res.Body)
			require.NoError(c, err)
			assert.Equal(c, want, string(body), "instance %s serves the old page", m.name)
		}, 5*time.Second, time.Millisecond)
	}
}

// TestFleetPurgesEveryInstance: the dispatcher and the plugin need no
// change for a fleet. A commit on one instance purges its own cache
// through its dispatcher, and every other instance's through the bus.
func TestFleetPurgesEveryInstance(t *testing.T) {
	db := openSQLite(t, &lcArticle{})
	article := lcArticle{Title: "first"}
	require.NoError(t, db.Create(&article).Error)
	fleet := startFleet(t, db, "a", "b", "c")
	// Instance a's plugin and dispatcher; b and c only serve and follow.
	d := purgeThrough(t, db, []backends.Backend{fleet[0].backend}, &lcArticle{})
	path := article.AbsoluteURL()
	cacheEverywhere(t, fleet, path, "first")

	require.NoError(t, db.Transaction(func(tx *gorm.DB) error {
		return tx.Model(&article).Update("title", "second").Error
	}))
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	require.NoError(t, d.Flush(ctx))
	xc, body := fleet[0].visit(t, path)
	assert.Equal(t, "MISS", xc, "the committing instance's cache is purged once the dispatcher has delivered")
	assert.Equal(t, "second", body)
	expectFresh(t, fleet, path, "second")
	cacheEverywhere(t, fleet, path, "second")
}

// TestFleetPurgesEveryInstanceThroughTheOutbox: with the outbox, the
// instance whose relay delivers a row need not be the one that committed
// it: every instance's cache loses the page either way.
func TestFleetPurgesEveryInstanceThroughTheOutbox(t *testing.T) {
	db := openSQLite(t, &lcArticle{})
	article := lcArticle{Title: "first"}
	require.NoError(t, db.Create(&article).Error)
	fleet := startFleet(t, db, "a", "b", "c")
	quiet := slog.New(slog.DiscardHandler)

	// a commits into the outbox; c's relay delivers through c's backend.
	ob, err := outbox.New(db, outbox.WithLogger(quiet), outbox.WithPollInterval(10*time.Millisecond))
	require.NoError(t, err)
	p := gormpurge.New(ob, gormpurge.WithLogger(quiet))
	require.NoError(t, p.Register(&lcArticle{}))
	require.NoError(t, db.Use(p))
	d, err := dispatcher.New([]backends.Backend{fleet[2].backend}, dispatcher.WithLogger(quiet))
	require.NoError(t, err)
	relay, err := ob.Relay(d)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		assert.NoError(t, relay.Close(ctx))
		assert.NoError(t, d.Close(ctx))
	})

	path := article.AbsoluteURL()
	cacheEverywhere(t, fleet, path, "first")
	require.NoError(t, db.Transaction(func(tx *gorm.DB) error {
		return tx.Model(&article).Update("title", "second").Error
	}))
	expectFresh(t, fleet, path, "second")
	cacheEverywhere(t, fleet, path, "second")
}
