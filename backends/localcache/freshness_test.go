package localcache_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends/localcache"
)

// TestFreshnessFromExpiresPragmaAndAge: how long a TTL route keeps a
// response by its Expires, Date, Pragma and Age fields, as a shared cache
// does by RFC 9111: Expires counts only without max-age and s-maxage, an
// invalid one is already expired, Pragma: no-cache counts only without
// Cache-Control, and Age is time already used up.
func TestFreshnessFromExpiresPragmaAndAge(t *testing.T) {
	t.Parallel()
	date := time.Date(2030, time.March, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) string { return date.Add(d).Format(http.TimeFormat) }
	tests := []struct {
		name string
		kv   []string      // the handler's header
		live time.Duration // 0: not stored
	}{
		{"Expires in the past", []string{"Date", at(0), "Expires", at(-time.Hour)}, 0},
		{"Expires equal to Date", []string{"Date", at(0), "Expires", at(0)}, 0},
		{"Expires in the past, no Date", []string{"Expires", "Sun, 06 Nov 1994 08:49:37 GMT"}, 0},
		{"Expires: 0", []string{"Expires", "0"}, 0},
		{"Expires: -1", []string{"Expires", "-1"}, 0},
		{"Expires invalid", []string{"Date", at(0), "Expires", "tomorrow"}, 0},
		{"Expires empty", []string{"Expires", ""}, 0},
		{"two Expires that disagree", []string{"Date", at(0), "Expires", at(time.Hour), "Expires", at(2 * time.Hour)}, 0},
		{"Expires minus Date", []string{"Date", at(0), "Expires", at(100 * time.Second)}, 100 * time.Second},
		{"Expires in an obsolete format", []string{"Date", at(0), "Expires", date.Add(100 * time.Second).Format(time.RFC850)}, 100 * time.Second},
		{"Expires minus Date, less Age", []string{"Date", at(0), "Expires", at(100 * time.Second), "Age", "30"}, 70 * time.Second},
		{"Expires past Cache-Control without a lifetime", []string{"Cache-Control", "public", "Date", at(0), "Expires", at(-time.Hour)}, 0},
		{"max-age wins over a past Expires", []string{"Cache-Control", "max-age=100", "Date", at(0), "Expires", at(-time.Hour)}, 100 * time.Second},
		{"s-maxage wins over a past Expires", []string{"Cache-Control", "s-maxage=100", "Expires", "0"}, 100 * time.Second},
		{"max-age wins over a later Expires", []string{"Cache-Control", "max-age=100", "Date", at(0), "Expires", at(time.Hour)}, 100 * time.Second},
		{"Pragma: no-cache", []string{"Pragma", "no-cache"}, 0},
		{"Pragma: no-cache in a list", []string{"Pragma", "x-foo, No-Cache"}, 0},
		{"Pragma: no-cache with Expires", []string{"Pragma", "no-cache", "Date", at(0), "Expires", at(time.Hour)}, 0},
		{"Pragma: no-cache under Cache-Control", []string{"Pragma", "no-cache", "Cache-Control", "max-age=100"}, 100 * time.Second},
		{"other Pragma", []string{"Pragma", "x-foo"}, localcache.DefaultTTL},
		{"max-age less Age", []string{"Cache-Control", "max-age=100", "Age", "30"}, 70 * time.Second},
		{"max-age used up by Age", []string{"Cache-Control", "max-age=100", "Age", "100"}, 0},
		{"default TTL less Age", []string{"Age", "60"}, localcache.DefaultTTL - time.Minute},
		{"malformed Age ignored", []string{"Cache-Control", "max-age=100", "Age", "-5"}, 100 * time.Second},
		{"max-age beyond any integer", []string{"Cache-Control", "max-age=99999999999999999999999"}, 365 * 24 * time.Hour},
		{"max-age with a sign is malformed", []string{"Cache-Control", "max-age=+100"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clock, store := clockedStore(t)
			a := &app{respond: respondWith(http.StatusOK, header(tt.kv...), "page")}
			h := cached(store, a)

			require.Equal(t, "MISS", get(t, h, "/a").xcache)
			if tt.live == 0 {
				got := get(t, h, "/a")
				assert.Equal(t, "MISS", got.xcache, "not stored")
				assert.Equal(t, "page", got.body)
				assert.Zero(t, store.Len())
				return
			}
			clock.Advance(tt.live - time.Second)
			assert.Equal(t, "HIT", get(t, h, "/a").xcache, "still fresh")
			clock.Advance(time.Second)
			assert.Equal(t, "MISS", get(t, h, "/a").xcache, "expired")
		})
	}
}

// TestBrowsersKeepAPageNoLongerThanItsExpires: where the middleware
// replaces the handler's Cache-Control and drops its Expires, the
// lifetime that Expires gave browsers still bounds the max-age they get.
// On an UntilPurged route, Expires, like max-age, is for browsers only.
func TestBrowsersKeepAPageNoLongerThanItsExpires(t *testing.T) {
	t.Parallel()
	date := time.Date(2030, time.March, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name, expires, wantCC string
	}{
		{"10 seconds after Date", date.Add(10 * time.Second).Format(http.TimeFormat), "max-age=10"},
		{"already expired", "0", "max-age=0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := &app{respond: respondWith(http.StatusOK, header("Date", date.Format(http.TimeFormat), "Expires", tt.expires), "page")}
			h := cached(newStore(t), a, localcache.WithUntilPurged())
			for _, xcache := range []string{"MISS", "HIT"} {
				got := get(t, h, "/a")
				require.Equal(t, xcache, got.xcache)
				assert.Equal(t, tt.wantCC, got.header.Get("Cache-Control"), xcache)
				assert.Empty(t, got.header.Get("Expires"), xcache)
			}
		})
	}
}
