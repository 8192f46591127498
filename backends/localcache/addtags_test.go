package localcache_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/gormpurge/gormpurge/backends/localcache"
)

// A tag added after the body was written, which no CDN sees, still
// indexes the page: purging it empties the page.
func TestAddTagsAfterTheBodyIndexesThePage(t *testing.T) {
	t.Parallel()
	a := &app{respond: func(w http.ResponseWriter, r *http.Request, n int64) {
		_, _ = fmt.Fprintf(w, "render %d", n)
		localcache.AddTags(r.Context(), "x")
	}}
	store, h := setup(t, a)

	assert.Equal(t, "MISS", get(t, h, "http://example.com/p").xcache)
	hit := get(t, h, "http://example.com/p")
	assert.Equal(t, "HIT", hit.xcache)
	assert.Empty(t, hit.header.Get("Surrogate-Key"), "an added tag is the local cache's only")

	purge(t, store, nil, []string{"other"})
	assert.Equal(t, "HIT", get(t, h, "http://example.com/p").xcache, "another tag leaves it")

	purge(t, store, nil, []string{"x"})
	again := get(t, h, "http://example.com/p")
	assert.Equal(t, "MISS", again.xcache)
	assert.Equal(t, "render 2", again.body)
}

// Tags added from several goroutines of one render all index the page.
func TestAddTagsConcurrently(t *testing.T) {
	t.Parallel()
	const n = 50
	a := &app{respond: func(w http.ResponseWriter, r *http.Request, _ int64) {
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { localcache.AddTags(r.Context(), fmt.Sprintf("t%d", i)) })
		}
		wg.Wait()
		_, _ = io.WriteString(w, "page")
	}}
	store, h := setup(t, a)
	get(t, h, "http://example.com/p")
	for i := range n {
		assert.Equal(t, "HIT", get(t, h, "http://example.com/p").xcache)
		purge(t, store, nil, []string{fmt.Sprintf("t%d", i)})
		assert.Equal(t, "MISS", get(t, h, "http://example.com/p").xcache, "tag t%d", i)
	}
}

// Outside the middleware AddTags does nothing, and does not fail.
func TestAddTagsOutsideTheMiddleware(t *testing.T) {
	t.Parallel()
	assert.NotPanics(t, func() {
		localcache.AddTags(context.Background(), "x")
		localcache.AddTags(context.Background())
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		localcache.AddTags(ctx, "x", "y")
	})
	a := &app{respond: func(w http.ResponseWriter, r *http.Request, n int64) {
		localcache.AddTags(r.Context(), "x")
		_, _ = fmt.Fprintf(w, "render %d", n)
	}}
	r := do(t, a, http.MethodGet, "http://example.com/p")
	assert.Equal(t, "render 1", r.body, "a handler that adds tags works without the cache")
}
