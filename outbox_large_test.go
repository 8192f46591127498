package gormpurge_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/gormpurge/gormpurge"
	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/dispatcher"
	"github.com/gormpurge/gormpurge/internal/testdb"
	"github.com/gormpurge/gormpurge/outbox"
)

// setBackend remembers the distinct URLs and tags it was asked to purge.
type setBackend struct {
	mu   sync.Mutex
	urls map[string]struct{}
	tags map[string]struct{}
}

func (b *setBackend) Name() string            { return "set" }
func (b *setBackend) Limits() backends.Limits { return backends.Limits{} }

func (b *setBackend) Purge(_ context.Context, r backends.Request) (backends.Result, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, u := range r.URLs {
		b.urls[u] = struct{}{}
	}
	for _, g := range r.Tags {
		b.tags[g] = struct{}{}
	}
	return backends.Result{Objects: r.Len()}, nil
}

func (b *setBackend) counts() (urls, tags int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.urls), len(b.tags)
}

// missing returns the first of urls not purged, or "".
func (b *setBackend) missing(urls []string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, u := range urls {
		if _, ok := b.urls[u]; !ok {
			return u
		}
	}
	return ""
}

// Issue 14: a transaction whose purge is larger than MariaDB's
// max_allowed_packet (16 MiB by default) once wrote one outbox row that the
// server refused, breaking the connection and rolling back the user's
// whole transaction. The user's transaction commits whatever the size of
// its purge, on every database, and the relay delivers every URL and tag.
func TestOutboxCommitsAPurgeLargerThanAPacket(t *testing.T) {
	const nURLs, nTags = 600_000, 20_000
	urls := make([]string, nURLs)
	for i := range urls {
		urls[i] = fmt.Sprintf("/catalogue/products/item-%07d/details", i) // 24 MB of JSON
	}
	tags := make([]string, nTags)
	for i := range tags {
		tags[i] = fmt.Sprintf("product-%06d", i)
	}
	quiet := slog.New(slog.DiscardHandler)
	for _, kind := range testdb.Kinds {
		t.Run(kind, func(t *testing.T) {
			db := testdb.Open(t, kind, nil)
			errs := &errorLog{ch: make(chan error, 100)}
			ob, err := outbox.New(db, outbox.WithLogger(quiet), outbox.WithPollInterval(20*time.Millisecond),
				outbox.WithErrorHandler(errs.handler))
			require.NoError(t, err)
			p := gormpurge.New(ob, gormpurge.WithLogger(quiet), gormpurge.WithErrorHandler(errs.handler))
			require.NoError(t, p.Register(&Post{}))
			require.NoError(t, db.Use(p))
			require.NoError(t, db.AutoMigrate(&Post{}, &Tag{}, &Comment{}))

			err = db.Transaction(func(tx *gorm.DB) error {
				if err := tx.Create(&Post{Slug: "bulk"}).Error; err != nil {
					return err
				}
				return p.PurgeTx(tx, urls, gormpurge.Targets{Tags: tags})
			})
			require.NoError(t, err, "the user's transaction commits")
			var n int64
			require.NoError(t, db.Model(&Post{}).Where("slug = ?", "bulk").Count(&n).Error)
			assert.Equal(t, int64(1), n, "the user's row was committed")
			assert.Empty(t, errs.all(), "nothing failed on the way in")

			b := &setBackend{urls: map[string]struct{}{}, tags: map[string]struct{}{}}
			d, err := dispatcher.New([]backends.Backend{b}, dispatcher.WithLogger(quiet))
			require.NoError(t, err)
			r, err := ob.Relay(d)
			require.NoError(t, err)
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				assert.NoError(t, r.Close(ctx))
				assert.NoError(t, d.Close(ctx))
			})
			require.EventuallyWithT(t, func(c *assert.CollectT) {
				st, err := ob.Status(context.Background())
				require.NoError(c, err)
				assert.Zero(c, st.Pending)
			}, 60*time.Second, 10*time.Millisecond, "rows still pending")
			gotURLs, gotTags := b.counts()
			assert.Equal(t, nURLs+2, gotURLs, "every URL, plus the post's /posts/bulk and /")
			assert.Equal(t, nTags+1, gotTags, "every tag, plus the post's")
			assert.Empty(t, b.missing(urls))
			assert.Empty(t, b.missing([]string{"/posts/bulk"}))
			st, err := ob.Status(context.Background())
			require.NoError(t, err)
			assert.Zero(t, st.Dead)
			assert.Empty(t, errs.all())
		})
	}
}
