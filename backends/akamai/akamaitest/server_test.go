package akamaitest_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/akamai/AkamaiOPEN-edgegrid-golang/v8/pkg/edgegrid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends/akamai"
	"github.com/gormpurge/gormpurge/backends/akamai/akamaitest"
)

func TestAcceptsEveryEndpoint(t *testing.T) {
	srv := newServer(t)
	bodies := map[akamai.Kind]string{
		akamai.KindURL:    objects("https://www.example.com/a", "http://www.example.com/b?x=1"),
		akamai.KindTag:    objects("black-friday", "electronics"),
		akamai.KindCPCode: `{"objects":[12345,98765]}`,
	}
	want := map[akamai.Kind][]string{
		akamai.KindURL:    {"https://www.example.com/a", "http://www.example.com/b?x=1"},
		akamai.KindTag:    {"black-friday", "electronics"},
		akamai.KindCPCode: {"12345", "98765"},
	}
	prefix := map[akamai.Kind]string{akamai.KindURL: "edup-", akamai.KindTag: "edtp-", akamai.KindCPCode: "edcp-"}
	ids := map[string]bool{}
	var wantPurges []akamaitest.Purge
	for _, action := range []akamai.Action{akamai.Invalidate, akamai.Delete} {
		for _, kind := range []akamai.Kind{akamai.KindURL, akamai.KindTag, akamai.KindCPCode} {
			for _, network := range []akamai.Network{akamai.Production, akamai.Staging, ""} {
				p := "/ccu/v3/" + string(action) + "/" + string(kind)
				if network != "" {
					p += "/" + string(network)
				}
				t.Run(p, func(t *testing.T) {
					a := post(t, srv, p, bodies[kind])
					require.Equal(t, http.StatusCreated, a.status, string(a.raw))
					assert.Equal(t, "application/json", a.header.Get("Content-Type"))
					assert.Equal(t, http.StatusCreated, a.body.HTTPStatus)
					assert.Equal(t, 5, a.body.EstimatedSeconds)
					assert.Equal(t, "Request accepted", a.body.Detail)
					assert.True(t, strings.HasPrefix(a.body.PurgeID, prefix[kind]), a.body.PurgeID)
					assert.Len(t, a.body.PurgeID, len("edcp-NZbXzFpHBjcJeryhw6PVgG"))
					assert.Equal(t, a.body.PurgeID, a.body.SupportID)
					assert.False(t, ids[a.body.PurgeID], "purge IDs are unique")
					ids[a.body.PurgeID] = true
					for _, h := range []string{"Limit", "Remaining", "Limit-Per-Second", "Seconds-To-Refresh-Limit"} {
						assert.NotEmpty(t, a.header.Get("X-Ratelimit-"+h), h)
						assert.NotEmpty(t, a.header.Get("X-Ratelimit-"+h+"-Objects"), h+"-Objects")
					}
					n := network
					if n == "" {
						n = akamai.Production
					}
					wantPurges = append(wantPurges, akamaitest.Purge{
						Action: action, Network: n, Kind: kind, Objects: want[kind],
						PurgeID: a.body.PurgeID, SupportID: a.body.PurgeID, BodyBytes: len(bodies[kind]),
					})
				})
			}
		}
	}
	got := srv.Purges()
	for i := range got {
		assert.False(t, got[i].At.IsZero())
		got[i].At = time.Time{}
	}
	assert.Equal(t, wantPurges, got)
	assert.Equal(t, map[int]int{http.StatusCreated: 18}, srv.Responses())
}

// The fake's bodies have the fields of Akamai's examples, and its headers
// are those of the documented rate-limit headers.
func TestShapesMatchAkamaiExamples(t *testing.T) {
	keysOf := func(t *testing.T, file string) []string {
		data, err := os.ReadFile(filepath.Join("testdata", "ccu-v3", file))
		require.NoError(t, err)
		var m map[string]any
		require.NoError(t, json.Unmarshal(data, &m))
		return sortedKeys(m)
	}
	srv := newServer(t,
		akamaitest.WithRateLimits(akamai.RateLimits{URLs: akamai.Bucket{Burst: 1, PerSecond: 1}}),
		akamaitest.WithAuthorizedHosts("www.example.com"))

	ok := post(t, srv, urlPath, objects("https://www.example.com/"))
	require.Equal(t, http.StatusCreated, ok.status)
	assert.Equal(t, keysOf(t, "201.json"), sortedKeys(ok.keys))

	var headers map[string]any
	data, err := os.ReadFile("testdata/ccu-v3/headers.json")
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &headers))
	var got []string
	for k := range ok.header {
		if strings.HasPrefix(k, "X-Ratelimit-") {
			got = append(got, k)
		}
	}
	assert.ElementsMatch(t, sortedKeys(headers), got)

	tooMany := post(t, srv, urlPath, objects("https://www.example.com/"))
	require.Equal(t, http.StatusTooManyRequests, tooMany.status)
	assert.Equal(t, keysOf(t, "url-429.json"), sortedKeys(tooMany.keys))

	forbidden := post(t, srv, urlPath, objects("http://fpj-test.bad-ideas2.org/"))
	require.Equal(t, http.StatusForbidden, forbidden.status)
	assert.Equal(t, keysOf(t, "403.json"), sortedKeys(forbidden.keys))

	srv.FailNext(http.StatusInternalServerError, 1)
	internal := post(t, srv, urlPath, objects("https://www.example.com/"))
	require.Equal(t, http.StatusInternalServerError, internal.status)
	assert.Equal(t, keysOf(t, "500.json"), sortedKeys(internal.keys))
	var example map[string]any
	data, err = os.ReadFile("testdata/ccu-v3/500.json")
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &example))
	assert.Equal(t, example["title"], internal.body.Title)
	assert.Equal(t, example["detail"], internal.body.Detail)
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func TestConcurrentUse(t *testing.T) {
	srv := newServer(t, akamaitest.WithRateLimits(akamai.RateLimits{Requests: akamai.Bucket{Burst: 1000, PerSecond: 1000}}))
	var wg sync.WaitGroup
	for g := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 5 {
				a := post(t, srv, tagPath, objects(fmt.Sprintf("g%d-%d", g, i)))
				assert.Equal(t, http.StatusCreated, a.status)
				_ = srv.Purges()
				_ = srv.Responses()
			}
		}()
	}
	wg.Wait()
	purges := srv.Purges()
	require.Len(t, purges, 100)
	ids := map[string]bool{}
	for _, p := range purges {
		ids[p.PurgeID] = true
	}
	assert.Len(t, ids, 100)
	assert.Len(t, srv.Objects(akamai.KindTag), 100)
}

func TestCredentials(t *testing.T) {
	a, b := newServer(t), newServer(t)
	ca, cb := a.Credentials(), b.Credentials()
	assert.Equal(t, "https://"+ca.Host, a.URL())
	assert.True(t, strings.HasPrefix(ca.Host, "127.0.0.1:"), ca.Host)
	assert.NotEqual(t, ca.ClientToken, cb.ClientToken)
	assert.NotEqual(t, ca.ClientSecret, cb.ClientSecret)
	assert.NotEqual(t, ca.AccessToken, cb.AccessToken)
	assert.NotContains(t, fmt.Sprint(ca), ca.ClientSecret)

	// One server's credentials do not open another.
	assert.Equal(t, 401, do(t, b, request{body: objects("https://www.example.com/"), sign: func(r *http.Request) {
		signer(a).SignRequest(r)
	}}).status)

	a.Close()
	a.Close() // twice is fine
}

func TestWriteEdgerc(t *testing.T) {
	srv := newServer(t)
	file := filepath.Join(t.TempDir(), ".edgerc")
	require.NoError(t, os.WriteFile(file, []byte("old"), 0o644))
	require.NoError(t, srv.WriteEdgerc(file, "ccu"))

	info, err := os.Stat(file)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())

	cfg, err := edgegrid.New(edgegrid.WithFile(file), edgegrid.WithSection("ccu"))
	require.NoError(t, err)
	c := srv.Credentials()
	assert.Equal(t, []string{c.Host, c.ClientToken, c.ClientSecret, c.AccessToken},
		[]string{cfg.Host, cfg.ClientToken, cfg.ClientSecret, cfg.AccessToken})
	assert.Equal(t, edgegrid.MaxBodySize, cfg.MaxBody)
	a := do(t, srv, request{body: objects("https://www.example.com/"), sign: cfg.SignRequest})
	require.Equal(t, http.StatusCreated, a.status, string(a.raw))

	require.NoError(t, srv.WriteEdgerc(file, ""))
	_, err = edgegrid.New(edgegrid.WithFile(file))
	require.NoError(t, err, "an empty section name writes [default]")

	assert.Error(t, srv.WriteEdgerc(file, "a]b"))
	assert.Error(t, srv.WriteEdgerc(filepath.Join(t.TempDir(), "missing", ".edgerc"), "ccu"))
}

func TestOptionsPanicOnMistakes(t *testing.T) {
	assert.Panics(t, func() { akamaitest.WithRateLimits(akamai.RateLimits{Tags: akamai.Bucket{Burst: 1}}) })
	assert.Panics(t, func() { akamaitest.WithRateLimits(akamai.RateLimits{Tags: akamai.Bucket{Burst: -1, PerSecond: 1}}) })
	assert.Panics(t, func() { akamaitest.WithMaxBody(-1) })
	assert.Panics(t, func() { akamaitest.NewScaledClock(0) })
	// nil is a mistake too, never a request for the default.
	assert.PanicsWithValue(t, "akamaitest: WithClock(nil): pass a clock such as akamaitest.NewScaledClock(100), or leave the option out for the system clock",
		func() { akamaitest.WithClock(nil) })
	assert.PanicsWithValue(t, "akamaitest: WithClock((*akamaitest.ScaledClock)(nil)): the clock is a nil *akamaitest.ScaledClock: pass a clock such as akamaitest.NewScaledClock(100), or leave the option out for the system clock",
		func() { akamaitest.WithClock((*akamaitest.ScaledClock)(nil)) })
	assert.PanicsWithValue(t, "akamaitest: NewServer: an Option is nil: remove it, or pass one made by a With... function",
		func() { akamaitest.NewServer(nil) })
	assert.PanicsWithValue(t, "akamaitest: WithNow(nil): pass a function such as time.Now, or leave the option out",
		func() { akamaitest.WithNow(nil) })
	assert.PanicsWithValue(t, "akamaitest: WithLatency(nil): pass a function, or leave the option out for no delay",
		func() { akamaitest.WithLatency(nil) })
	assert.NotPanics(t, func() {
		akamaitest.WithRateLimits(akamai.RateLimits{Tags: akamai.Bucket{Burst: 1_000_000, PerSecond: 1e6}})
	})
}
