package backends

import (
	"crypto/sha256"
	"database/sql/driver"
	"encoding/hex"
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// The cache tags of read tags (gormpurge.WithReadTags): a page is tagged
// with the rows it read and the tables it listed, and a commit purges the
// tags of what it changed. Their form is defined here, once, so that the
// tags a page is sent with and the tags a commit purges are the same
// strings.

// TableTag returns the cache tag of a table, which pages that list its
// rows carry: the table's name itself ("posts").
func TableTag(table string) string { return table }

// MaxRowKeyLength is the longest primary key a row tag spells out: a
// longer one, a composite one, or one with a character a cache tag may not
// hold takes the short form (see [RowTag]).
const MaxRowKeyLength = 64

// RowTag returns the cache tag of one row of table, the row whose primary
// key is key (its values in the schema's order): "{table}:{key}", as
// "posts:42" or "users:ada". A key of several values, one longer than
// [MaxRowKeyLength] bytes, or one that is not printable ASCII or holds a
// space, a comma, a colon or '#', takes a short form that is stable across
// processes and versions: "{table}:#" followed by the first 16 hex digits
// of the SHA-256 of the key's values, each as fmt.Sprint spells it and
// preceded by its length in bytes and a colon ("posts:#3f2a..." for
// (7, "fr")). Values are compared as they are spelled (fmt.Sprint's
// spelling, after following a pointer and taking a driver.Valuer's
// Value), so an int64 7, a uint 7 and a *uint pointing to 7 are the same
// key.
func RowTag(table string, key ...any) string {
	if len(key) == 1 {
		if s := keyString(key[0]); plainKey(s) {
			return table + ":" + s
		}
	}
	h := sha256.New()
	for _, v := range key {
		s := keyString(v)
		h.Write([]byte(strconv.Itoa(len(s)) + ":" + s))
	}
	return table + ":#" + hex.EncodeToString(h.Sum(nil))[:16]
}

// keyString spells one value of a key: what a pointer points to, a
// driver.Valuer's Value, an integer in decimal, anything else as
// fmt.Sprint does.
func keyString(v any) string {
	for {
		rv := reflect.ValueOf(v)
		if rv.Kind() != reflect.Pointer || rv.IsNil() {
			break
		}
		if _, valuer := v.(driver.Valuer); valuer {
			break
		}
		v = rv.Elem().Interface()
	}
	if dv, ok := v.(driver.Valuer); ok {
		if x, err := dv.Value(); err == nil {
			v = x
		}
	}
	switch x := v.(type) {
	case string:
		return x
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case uint:
		return strconv.FormatUint(uint64(x), 10)
	case uint64:
		return strconv.FormatUint(x, 10)
	case uint32:
		return strconv.FormatUint(uint64(x), 10)
	case int32:
		return strconv.FormatInt(int64(x), 10)
	case []byte:
		return string(x)
	}
	return fmt.Sprint(v)
}

// plainKey reports whether s may be spelled out in a row tag.
func plainKey(s string) bool {
	if s == "" || len(s) > MaxRowKeyLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == ',' || c == ':' || c == '#' {
			return false
		}
	}
	return true
}

// TagHeader is a response header that lists a page's cache tags for a
// cache, with the cache's limits. Use one of the functions that return
// them (SurrogateKeyHeader, XKeyHeader, CacheTagHeader), or describe
// another cache's.
type TagHeader struct {
	// Name is the header's name.
	Name string
	// Separator is what separates tags in its value: ' ' or ','.
	Separator byte
	// MaxBytes bounds the value's length in bytes; 0 for no bound.
	MaxBytes int
	// MaxTagBytes bounds one tag's length; 0 for no bound. A list with a
	// longer tag does not fit (TagReads then names the table instead of
	// its rows).
	MaxTagBytes int
	// MaxTags bounds how many tags the value lists; 0 for no bound.
	MaxTags int
	// Spell, when not nil, returns a tag as the cache knows it, as its
	// backend sends it in purges (Akamai's akamai.TagForm).
	Spell func(tag string) string
}

// Limits of the caches' tag headers.
const (
	// Fastly reads at most 16,384 bytes of Surrogate-Key, keys of at most
	// 1,024 bytes (https://docs.fastly.com/en/guides/working-with-surrogate-keys,
	// "Limitations").
	FastlySurrogateKeyMaxBytes = 16384
	FastlySurrogateKeyMaxKey   = 1024
	// Varnish refuses a backend response header longer than its
	// http_resp_hdr_len parameter, 8k by default
	// (https://varnish-cache.org/docs/trunk/reference/varnishd.html#http-resp-hdr-len);
	// the xkey vmod reads the xkey header.
	VarnishRespHdrLen = 8192
	// Cloudflare reads at most 16 KB of Cache-Tag in all, tags of at most
	// 1,024 characters
	// (https://developers.cloudflare.com/cache/how-to/purge-cache/purge-by-tags/).
	CloudflareCacheTagMaxBytes = 16 * 1024
	CloudflareCacheTagMaxTag   = 1024
)

// SurrogateKeyHeader is Fastly's Surrogate-Key (which the local cache
// reads by default too): tags separated by spaces.
func SurrogateKeyHeader() TagHeader {
	return TagHeader{Name: "Surrogate-Key", Separator: ' ', MaxBytes: FastlySurrogateKeyMaxBytes, MaxTagBytes: FastlySurrogateKeyMaxKey}
}

// XKeyHeader is the xkey header of Varnish's xkey vmod: tags separated by
// spaces, within Varnish's default header length (less its name, the
// colon and the space).
func XKeyHeader() TagHeader {
	return TagHeader{Name: "xkey", Separator: ' ', MaxBytes: VarnishRespHdrLen - len("xkey: ")}
}

// CacheTagHeader is Cloudflare's Cache-Tag: tags separated by commas.
func CacheTagHeader() TagHeader {
	return TagHeader{Name: "Cache-Tag", Separator: ',', MaxBytes: CloudflareCacheTagMaxBytes, MaxTagBytes: CloudflareCacheTagMaxTag}
}

// Fits reports whether tags, each canonical ([CanonicalTag]), fit in h's
// value, spelled as h.Spell says, and returns that value.
func (h TagHeader) Fits(tags []string) (string, bool) {
	if h.MaxTags > 0 && len(tags) > h.MaxTags {
		return "", false
	}
	var b strings.Builder
	for i, t := range tags {
		if h.Spell != nil {
			t = h.Spell(t)
		}
		if h.MaxTagBytes > 0 && len(t) > h.MaxTagBytes {
			return "", false
		}
		if i > 0 {
			b.WriteByte(h.Separator)
		}
		b.WriteString(t)
		if h.MaxBytes > 0 && b.Len() > h.MaxBytes {
			return "", false
		}
	}
	return b.String(), true
}
