package backends_test

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/backends/cloudflare"
)

// shortForm is RowTag's documented short form, worked out by hand: the
// first 16 hex digits of the SHA-256 of each value as "{len}:{value}".
func shortForm(table string, spelled ...string) string {
	h := sha256.New()
	for _, s := range spelled {
		h.Write([]byte(strings.Join([]string{itoa(len(s)), s}, ":")))
	}
	return table + ":#" + hex.EncodeToString(h.Sum(nil))[:16]
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

func TestRowTag(t *testing.T) {
	long := strings.Repeat("k", backends.MaxRowKeyLength)
	tests := []struct {
		name string
		key  []any
		want string
	}{
		{"integer key", []any{42}, "posts:42"},
		{"string key", []any{"ada"}, "posts:ada"},
		{"uint", []any{uint(7)}, "posts:7"},
		{"int64", []any{int64(7)}, "posts:7"},
		{"key of exactly MaxRowKeyLength bytes is spelled out", []any{long}, "posts:" + long},
		{"longer key takes the short form", []any{long + "k"}, shortForm("posts", long+"k")},
		{"composite key", []any{7, "fr"}, shortForm("posts", "7", "fr")},
		{"composite key of one value is not composite", []any{"fr"}, "posts:fr"},
		{"colon", []any{"a:b"}, shortForm("posts", "a:b")},
		{"hash", []any{"#1"}, shortForm("posts", "#1")},
		{"comma", []any{"a,b"}, shortForm("posts", "a,b")},
		{"space", []any{"a b"}, shortForm("posts", "a b")},
		{"tab", []any{"a\tb"}, shortForm("posts", "a\tb")},
		{"non-ASCII", []any{"café"}, shortForm("posts", "café")},
		{"DEL", []any{"a\x7f"}, shortForm("posts", "a\x7f")},
		{"empty string", []any{""}, shortForm("posts", "")},
		{"[]byte is spelled as the string it holds", []any{[]byte("ab")}, "posts:ab"},
		{"a pointer is spelled as what it points to", []any{ptr(uint(7))}, "posts:7"},
		{"printable punctuation is spelled out", []any{"a-b_c.d/e"}, "posts:a-b_c.d/e"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := backends.RowTag("posts", tt.key...)
			assert.Equal(t, tt.want, got)
			_, err := backends.CanonicalTag(got)
			assert.NoError(t, err)
		})
	}
}

func TestRowTagKeysAreComparedAsSpelled(t *testing.T) {
	assert.Equal(t, backends.RowTag("t", uint(9)), backends.RowTag("t", int64(9)))
	assert.Equal(t, backends.RowTag("t", uint8(9)), backends.RowTag("t", "9"), "a key read from a URL is the same key")
	assert.Equal(t, backends.RowTag("t", uint(1), "x y"), backends.RowTag("t", int64(1), "x y"))
	assert.NotEqual(t, backends.RowTag("t", 1, 23), backends.RowTag("t", 12, 3), "the values' lengths keep composite keys apart")
	assert.NotEqual(t, backends.RowTag("t", "a b"), backends.RowTag("t", "a", "b"))
	assert.NotEqual(t, backends.RowTag("a", 1), backends.RowTag("b", 1), "the table is part of the tag")
	assert.NotEqual(t, backends.RowTag("t", 7, "fr"), backends.RowTag("t", "fr", 7), "the order of a composite key matters")
	assert.NotEqual(t, backends.RowTag("t", 1), backends.TableTag("t"), "a row's tag is not its table's")
}

func TestTableTag(t *testing.T) {
	for _, table := range []string{"posts", "rt_post_tags", "public.posts"} {
		assert.Equal(t, table, backends.TableTag(table))
		assert.True(t, strings.HasPrefix(backends.RowTag(table, 1), backends.TableTag(table)+":"))
	}
}

// FuzzRowTag checks that every row tag is a canonical tag Cloudflare
// accepts, fits a Surrogate-Key, no
// longer than its table, a colon and MaxRowKeyLength bytes, and
// the same each time.
func FuzzRowTag(f *testing.F) {
	f.Add("posts", "42", int64(1), false)
	f.Add("posts", "a b,c:d#e", int64(-3), true)
	f.Add("rt_posts", strings.Repeat("x", 65), int64(0), false)
	f.Add("t", "café\x00\n", int64(9), true)
	f.Fuzz(func(t *testing.T, table, s string, n int64, composite bool) {
		if table == "" || len(table) > 32 || strings.ContainsFunc(table, func(r rune) bool {
			return r <= ' ' || r > '~' || r == ',' || r == ':' || r == '#'
		}) {
			t.Skip("tables are SQL identifiers")
		}
		key := []any{s}
		if composite {
			key = append(key, n)
		}
		tag := backends.RowTag(table, key...)
		require.Equal(t, tag, backends.RowTag(table, key...), "deterministic")
		require.LessOrEqual(t, len(tag), len(table)+1+backends.MaxRowKeyLength)
		require.True(t, strings.HasPrefix(tag, table+":"))
		_, err := backends.CanonicalTag(tag)
		require.NoError(t, err)
		require.NoError(t, cloudflare.CheckTag(tag))
		_, fits := backends.SurrogateKeyHeader().Fits([]string{tag})
		require.True(t, fits)
	})
}

func TestTagHeaderFits(t *testing.T) {
	tests := []struct {
		name string
		h    backends.TagHeader
		tags []string
		want string
		fits bool
	}{
		{"no tags", backends.TagHeader{Separator: ' ', MaxBytes: 1}, nil, "", true},
		{"spaces", backends.TagHeader{Separator: ' '}, []string{"a", "b:1", "c"}, "a b:1 c", true},
		{"commas", backends.TagHeader{Separator: ','}, []string{"a", "b:1"}, "a,b:1", true},
		{"exactly MaxBytes", backends.TagHeader{Separator: ' ', MaxBytes: 7}, []string{"abc", "def"}, "abc def", true},
		{"one byte over MaxBytes", backends.TagHeader{Separator: ' ', MaxBytes: 6}, []string{"abc", "def"}, "", false},
		{"the separator counts", backends.TagHeader{Separator: ',', MaxBytes: 6}, []string{"abc", "de"}, "abc,de", true},
		{"one tag over MaxBytes", backends.TagHeader{Separator: ' ', MaxBytes: 2}, []string{"abc"}, "", false},
		{"tag of exactly MaxTagBytes", backends.TagHeader{Separator: ' ', MaxTagBytes: 3}, []string{"abc", "d"}, "abc d", true},
		{"tag over MaxTagBytes", backends.TagHeader{Separator: ' ', MaxTagBytes: 3}, []string{"d", "abcd"}, "", false},
		{"exactly MaxTags", backends.TagHeader{Separator: ' ', MaxTags: 2}, []string{"a", "b"}, "a b", true},
		{"over MaxTags", backends.TagHeader{Separator: ' ', MaxTags: 2}, []string{"a", "b", "c"}, "", false},
		{"no bounds", backends.TagHeader{Separator: ' '}, []string{strings.Repeat("x", 100_000)}, strings.Repeat("x", 100_000), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, fits := tt.h.Fits(tt.tags)
			assert.Equal(t, tt.fits, fits)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestBuiltInTagHeadersAtTheirLimits(t *testing.T) {
	for _, h := range []backends.TagHeader{backends.SurrogateKeyHeader(), backends.XKeyHeader(), backends.CacheTagHeader()} {
		t.Run(h.Name, func(t *testing.T) {
			require.Positive(t, h.MaxBytes)
			// Tags of 9 bytes and a separator fill MaxBytes to the byte.
			tag := "posts:123"
			n := (h.MaxBytes + 1) / (len(tag) + 1)
			tags := make([]string, n)
			for i := range tags {
				tags[i] = tag
			}
			v, fits := h.Fits(tags)
			require.True(t, fits)
			assert.LessOrEqual(t, len(v), h.MaxBytes)
			pad := h.MaxBytes - len(v) - 1
			if pad > 0 {
				v, fits = h.Fits(append(tags, strings.Repeat("p", pad)))
				require.True(t, fits, "a value of exactly MaxBytes fits")
				assert.Len(t, v, h.MaxBytes)
				_, fits = h.Fits(append(tags, strings.Repeat("p", pad+1)))
				assert.False(t, fits, "one byte more does not")
			}
			if h.MaxTagBytes > 0 {
				_, fits = h.Fits([]string{strings.Repeat("t", h.MaxTagBytes)})
				assert.True(t, fits)
				_, fits = h.Fits([]string{strings.Repeat("t", h.MaxTagBytes+1)})
				assert.False(t, fits)
			}
		})
	}
	assert.Equal(t, backends.VarnishRespHdrLen, len("xkey: ")+backends.XKeyHeader().MaxBytes)
}

func ptr[T any](v T) *T { return &v }
