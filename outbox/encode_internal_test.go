package outbox

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends"
)

func TestClip(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		n    int
		want string
	}{
		{"short", "cache down", 100, "cache down"},
		{"exactly n", "abcd", 4, "abcd"},
		{"ASCII cut", "abcdef", 4, "abcd…"},
		{"inside a 2-byte character", "aéé", 4, "aé…"},
		{"inside a 3-byte character", "日本語", 7, "日本…"},
		{"inside a 4-byte character", "a😀", 3, "a…"},
		{"invalid UTF-8 replaced", "bad \xff\xfe byte", 100, "bad \uFFFD byte"},
		{"NUL replaced", "nul\x00here", 100, "nul\uFFFDhere"},
		{"replacement counts in the cut", "\xffabc", 4, "\uFFFDa…"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := clip(tc.in, tc.n, "…")
			assert.Equal(t, tc.want, got)
			assert.True(t, utf8.ValidString(got))
			assert.LessOrEqual(t, len(strings.TrimSuffix(got, "…")), tc.n)
		})
	}
}

func TestAsciiText(t *testing.T) {
	assert.Equal(t, `refus\u00e9 \x00 \"quoted\" \\ \U0001f600`, asciiText("refusé \x00 \"quoted\" \\ 😀"))
}

// A request is written as rows of at most the limit, each holding what
// the next fits, in order; a small one is one row, as encodeList writes it.
func TestSplitRows(t *testing.T) {
	urls := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("/pages/%03d", i) // 12 bytes of JSON with its quotes, 13 with a comma
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		req   backends.Request
		limit int
		rows  int
	}{
		{"one URL", backends.Request{URLs: []string{"/a"}}, 100, 1},
		{"tags only", backends.Request{Tags: []string{"t1", "t2"}}, 100, 1},
		{"just fits", backends.Request{URLs: urls(7)}, 3 + 7*13, 1}, // [..] [] and 6 commas
		{"one byte short", backends.Request{URLs: urls(7)}, 3 + 7*13 - 1, 2},
		{"many rows", backends.Request{URLs: urls(1000)}, 200, 67}, // 15 a row
		{"tags join the last URLs", backends.Request{URLs: urls(10), Tags: []string{"tag-a", "tag-b", "tag-c"}}, 100, 2},
		{"tags spill over", backends.Request{URLs: urls(14), Tags: []string{"tag-a", "tag-b", "tag-c"}}, 100, 3},
		{"an item larger than the limit gets a row", backends.Request{URLs: []string{"/" + strings.Repeat("x", 300), "/b"}}, 100, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rows, err := splitRows(tc.req, tc.limit)
			require.NoError(t, err)
			assert.Len(t, rows, tc.rows)
			var got backends.Request
			for _, r := range rows {
				if len(r.urls)+len(r.tags) > tc.limit {
					assert.Equal(t, 1, strings.Count(r.urls+r.tags, `"`)/2, "only a lone item may exceed the limit")
				}
				u, err := decodeList(r.urls)
				require.NoError(t, err)
				g, err := decodeList(r.tags)
				require.NoError(t, err)
				got.URLs = append(got.URLs, u...)
				got.Tags = append(got.Tags, g...)
			}
			assert.Equal(t, tc.req, got)
		})
	}

	// A request that fits is the row encodeList wrote before, minus the
	// escaping of <, > and &.
	r := backends.Request{URLs: []string{"/a?b=1&c=<2>", "/é"}, Tags: []string{"t"}}
	rows, err := splitRows(r, maxRowBytes)
	require.NoError(t, err)
	require.Len(t, rows, 1)
	assert.Equal(t, `["/a?b=1&c=<2>","/é"]`, rows[0].urls)
	assert.Equal(t, `["t"]`, rows[0].tags)
}

func TestRowBytesFor(t *testing.T) {
	assert.Equal(t, maxRowBytes, rowBytesFor(0), "unknown")
	assert.Equal(t, maxRowBytes, rowBytesFor(16<<20), "MariaDB's default")
	assert.Equal(t, (1<<20-4096)/4, rowBytesFor(1<<20), "a server limited to 1 MiB")
	assert.Equal(t, 256, rowBytesFor(1024), "MySQL's smallest")
}

// appendJSONString writes what encoding/json writes, without escaping
// <, > and &, and decodes back to the string (invalid UTF-8 aside).
func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{
		"", "/pages/a", "/a?b=1&c=<2>", `/quote"d`, `/back\slash`, "/tab\there", "/é/日本/😀",
		"/line\u2028sep", "/del\x7f", "/nul\x00",
	} {
		got, err := appendJSONString([]byte("x"), s)
		require.NoError(t, err)
		var want strings.Builder
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		require.NoError(t, enc.Encode(s))
		assert.Equal(t, "x"+strings.TrimSuffix(want.String(), "\n"), string(got), "%q", s)
		var back string
		require.NoError(t, json.Unmarshal(got[1:], &back))
		assert.Equal(t, s, back)
	}
	got, err := appendJSONString(nil, "/bad\xff")
	require.NoError(t, err)
	assert.Equal(t, `"/bad\ufffd"`, string(got), "as json.Marshal, invalid UTF-8 becomes U+FFFD")
}
