package localcache_test

import (
	"bufio"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends/localcache"
)

// TestClientThatLeavesMidRenderLeavesNothingBehind: a client that resets
// its connection while the handler renders cancels the request's context,
// and a handler that stops rendering then has written half a page. That
// half must not be stored: the next visitor gets the whole page.
func TestClientThatLeavesMidRenderLeavesNothingBehind(t *testing.T) {
	t.Parallel()
	started := make(chan struct{})
	a := &app{respond: func(w http.ResponseWriter, r *http.Request, n int64) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "part 1, ")
		if n == 1 {
			close(started)
			<-r.Context().Done() // the client left: stop rendering
			return
		}
		_, _ = io.WriteString(w, "part 2")
	}}
	_, h := setup(t, a, localcache.WithUntilPurged())
	srv := startServer(t, h)

	leaver := rawGet(t, srv, "/page")
	<-started
	reset(t, srv, leaver)

	got := fetch(t, srv, "/page")
	assert.Equal(t, "MISS", got.xcache)
	assert.Equal(t, "part 1, part 2", got.body)
	eventuallyHit(t, srv, "/page") // the whole page is stored
}

// TestClientThatResetsMidResponseLeavesNothingBehind: a client that resets
// its connection while the page is being written to it must not leave a
// truncated page in the cache, even when the handler stops at the first
// failed write, as io.Copy does.
func TestClientThatResetsMidResponseLeavesNothingBehind(t *testing.T) {
	t.Parallel()
	page := strings.Repeat("0123456789abcdef", 128<<10) // 2 MiB
	a := &app{respond: func(w http.ResponseWriter, _ *http.Request, _ int64) {
		w.Header().Set("Content-Type", "text/plain")
		for chunk := range chunksOf(page, 4<<10) {
			if _, err := io.WriteString(w, chunk); err != nil {
				return
			}
		}
	}}
	_, h := setup(t, a, localcache.WithMaxEntryBytes(4<<20))
	srv := startServer(t, h)

	leaver := rawGet(t, srv, "/big")
	status := readLine(t, bufio.NewReader(leaver))
	require.Equal(t, "HTTP/1.1 200 OK\r\n", status)
	reset(t, srv, leaver) // far from the end: the server's writes are blocked

	got := fetch(t, srv, "/big")
	assert.Equal(t, "MISS", got.xcache)
	assert.Equal(t, len(page), len(got.body), "the whole page")
	assert.True(t, got.body == page, "the page as written")
	got = fetch(t, srv, "/big")
	assert.Equal(t, "HIT", got.xcache)
	assert.Equal(t, len(page), len(got.body), "the whole page")
}

// TestBodyThatDisagreesWithContentLengthIsNotStored: a handler that
// declares a Content-Length and writes fewer bytes (a copy from a file
// that failed) or more has sent a broken response, which must not be
// stored.
func TestBodyThatDisagreesWithContentLengthIsNotStored(t *testing.T) {
	t.Parallel()
	const page = "0123456789"
	tests := []struct {
		name     string
		declared int
	}{
		{"shorter than declared", len(page) * 2},
		{"longer than declared", len(page) / 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := &app{respond: func(w http.ResponseWriter, _ *http.Request, n int64) {
				if n == 1 {
					w.Header().Set("Content-Length", strconv.Itoa(tt.declared))
				}
				_, _ = io.WriteString(w, page)
			}}
			_, h := setup(t, a)
			srv := startServer(t, h)

			res, err := http.Get(srv.URL + "/file")
			require.NoError(t, err)
			_, _ = io.Copy(io.Discard, res.Body) // broken, as without the cache
			_ = res.Body.Close()

			got := fetch(t, srv, "/file")
			assert.Equal(t, "MISS", got.xcache)
			assert.True(t, got.body == page, "the page as written")
			eventuallyHit(t, srv, "/file")
		})
	}
}

// chunksOf yields s in pieces of n bytes.
func chunksOf(s string, n int) func(func(string) bool) {
	return func(yield func(string) bool) {
		for len(s) > 0 {
			k := min(n, len(s))
			if !yield(s[:k]) {
				return
			}
			s = s[k:]
		}
	}
}
