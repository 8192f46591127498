package localcache_test

import (
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestHandlerCanHijackAGet: a handler that takes over the connection of a
// GET (a WebSocket upgrade, as gorilla/websocket does it with
// w.(http.Hijacker)) can, and what it writes there is never stored.
func TestHandlerCanHijackAGet(t *testing.T) {
	t.Parallel()
	a := &app{respond: func(w http.ResponseWriter, _ *http.Request, _ int64) {
		hj, ok := w.(http.Hijacker)
		if !ok {
			http.Error(w, "cannot hijack", http.StatusInternalServerError)
			return
		}
		conn, rw, err := hj.Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = io.WriteString(rw, "HTTP/1.1 200 OK\r\nContent-Length: 8\r\nConnection: close\r\n\r\nhijacked")
		_ = rw.Flush()
	}}
	store, h := setup(t, a)
	srv := startServer(t, h)

	for range 2 {
		got := fetch(t, srv, "/ws")
		assert.Equal(t, http.StatusOK, got.status)
		assert.Equal(t, "hijacked", got.body)
		assert.Empty(t, got.xcache, "the handler wrote the whole response itself")
	}
	assert.EqualValues(t, 2, a.renders.Load(), "never answered from the cache")
	assert.Zero(t, store.Len())
}
