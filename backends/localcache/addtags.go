package localcache

import (
	"context"
	"sync"
)

// AddTags adds tags to the index of the page the middleware is rendering
// with ctx (the request's context, or one derived from it), beside the
// tags its tag header lists ([WithTagHeader]). Use it for tags known only
// once the response's headers were sent, which no CDN can see but the
// local cache, which stores the page after it is rendered, still can:
// gormpurge's read tags do. Outside a render the middleware may store, it
// does nothing. It is safe for concurrent use.
func AddTags(ctx context.Context, tags ...string) {
	if t, ok := ctx.Value(addedTagsKey{}).(*addedTags); ok && len(tags) > 0 {
		t.mu.Lock()
		t.tags = append(t.tags, tags...)
		t.mu.Unlock()
	}
}

type addedTagsKey struct{}

// addedTags collects what AddTags is given during one render.
type addedTags struct {
	mu   sync.Mutex
	tags []string
}

// withAddedTags returns a context for rendering a page whose AddTags calls
// t collects.
func withAddedTags(ctx context.Context, t *addedTags) context.Context {
	return context.WithValue(ctx, addedTagsKey{}, t)
}

// list returns the tags added so far.
func (t *addedTags) list() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.tags
}
