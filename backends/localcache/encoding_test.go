package localcache_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
)

// codings says which encodings an encoder answers in.
type codings int

const (
	gzipOnly  codings = iota // gzip, or uncompressed
	brAndGzip                // br first, then gzip, or uncompressed
)

// encoder is an app that varies on Accept-Encoding, as compression
// middleware does: it answers in br when c has br and the request lists
// br, else in gzip when the request lists gzip without q=0, else
// uncompressed. The body names the encoding and the render.
func encoder(c codings, block func(n int64)) *app {
	return &app{respond: func(w http.ResponseWriter, r *http.Request, n int64) {
		if block != nil {
			block(n)
		}
		ae := strings.ToLower(r.Header.Get("Accept-Encoding"))
		enc := ""
		switch {
		case c == brAndGzip && strings.Contains(ae, "br"):
			enc = "br"
		case strings.Contains(ae, "gzip") && !strings.Contains(ae, "gzip;q=0"):
			enc = "gzip"
		}
		w.Header().Set("Vary", "Accept-Encoding")
		if enc != "" {
			w.Header().Set("Content-Encoding", enc)
		}
		_, _ = fmt.Fprintf(w, "%s #%d", enc, n)
	}}
}

// TestAcceptEncodingIsNormalised: browsers and a warm-up that sends
// "gzip" share one variant, and so do the clients that do not accept gzip.
func TestAcceptEncodingIsNormalised(t *testing.T) {
	t.Parallel()
	a := encoder(gzipOnly, nil)
	_, h := setup(t, a)
	for _, step := range []struct{ acceptEncoding, xcache, body string }{
		{"gzip, deflate, br, zstd", "MISS", "gzip #1"},
		{"gzip", "HIT", "gzip #1"},
		{"GZIP;q=0.5, identity", "HIT", "gzip #1"},
		{"br;q=1.0, gzip;q=0.8, *;q=0.1", "HIT", "gzip #1"},
		{"deflate, br", "MISS", " #2"},
		{"", "HIT", " #2"},
		{"gzip;q=0, br", "HIT", " #2"},
	} {
		got := get(t, h, "/a", "Accept-Encoding", step.acceptEncoding)
		assert.Equal(t, step.xcache, got.xcache, step.acceptEncoding)
		assert.Equal(t, step.body, got.body, step.acceptEncoding)
	}
	assert.EqualValues(t, 2, a.renders.Load())
}

// TestAcceptEncodingOtherEncodingsAreKeptPerValue: a response in br is
// kept for the exact Accept-Encoding that got it, so a client that does
// not list br never receives it; a client answered from the shared
// variant gets an encoding it accepts.
func TestAcceptEncodingOtherEncodingsAreKeptPerValue(t *testing.T) {
	t.Parallel()
	a := encoder(brAndGzip, nil)
	_, h := setup(t, a)
	for _, step := range []struct{ acceptEncoding, xcache, body string }{
		{"gzip, deflate, br", "MISS", "br #1"},
		{"gzip, deflate, br", "HIT", "br #1"},
		{"gzip", "MISS", "gzip #2"},
		{"gzip, deflate", "HIT", "gzip #2"},
		{"br", "MISS", "br #3"},
		{"br", "HIT", "br #3"},
		{"deflate", "MISS", " #4"},
		// From here, the shared variants answer every request.
		{"br", "HIT", " #4"},
		{"gzip, deflate, br", "HIT", "gzip #2"},
	} {
		got := get(t, h, "/a", "Accept-Encoding", step.acceptEncoding)
		assert.Equal(t, step.xcache, got.xcache, step.acceptEncoding)
		assert.Equal(t, step.body, got.body, step.acceptEncoding)
	}
}

// TestAcceptEncodingWaitersShareOnlyWhatTheyAccept: visitors that waited on
// a render share it only when its encoding suits their Accept-Encoding:
// those that accept gzip only never get the br page rendered for one that
// lists br, and render their own; everyone shares a gzip page.
func TestAcceptEncodingWaitersShareOnlyWhatTheyAccept(t *testing.T) {
	t.Parallel()
	const visitors = 5
	tests := []struct {
		leader  string // the Accept-Encoding of the visitor the others wait on
		renders int64
	}{
		{"gzip, br", 1 + visitors}, // the gzip-only visitors render their own
		{"gzip", 1},
	}
	for _, tt := range tests {
		t.Run(tt.leader, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				entered, release := make(chan struct{}), make(chan struct{})
				a := encoder(brAndGzip, func(n int64) {
					if n == 1 {
						close(entered)
						<-release
					}
				})
				_, h := setup(t, a)

				type visit struct{ acceptEncoding, body string }
				results := make(chan visit, 2*visitors+1)
				var wg sync.WaitGroup
				visitWith := func(ae string) {
					wg.Go(func() { results <- visit{ae, get(t, h, "/a", "Accept-Encoding", ae).body} })
				}
				visitWith(tt.leader)
				<-entered
				for range visitors {
					visitWith("gzip, br")
					visitWith("gzip")
				}
				synctest.Wait() // every visitor waits on the first render
				close(release)
				wg.Wait()
				close(results)

				for v := range results {
					enc, _, _ := strings.Cut(v.body, " ")
					assert.Contains(t, strings.Split(v.acceptEncoding, ", "), enc, "Accept-Encoding %q got %q", v.acceptEncoding, v.body)
				}
				assert.Equal(t, tt.renders, a.renders.Load())
			})
		})
	}
}
