package redisstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/gormpurge/gormpurge/backends/localcache"
)

// entryVersion is the first byte of an encoded entry. Change it whenever
// the format changes: an instance reading an entry of another version
// treats it as a miss, so instances of two versions can share a Redis
// during a rolling deploy (each renders the pages the other stored).
const entryVersion = 1

// Flags of an encoded entry.
const flagVaryRecord = 1

// errCorruptEntry is wrapped by the error decodeEntry returns for bytes that
// are not an entry of this version.
var errCorruptEntry = errors.New("redisstore: not a cached entry of this version")

// encodeEntry appends e to dst in the store's binary format and returns
// the result:
//
//	version byte, flags byte (1: VaryRecord)
//	headers: uvarint count, then per name: string name, uvarint count, strings
//	vary:    uvarint count, strings
//	indexes: uvarint count, strings
//	body:    string
//
// where a string is a uvarint length and its bytes. Header names are
// written sorted, so that one entry always encodes to the same bytes. The
// TTL is not encoded: Redis keeps it.
func encodeEntry(dst []byte, e *localcache.Entry) []byte {
	var flags byte
	if e.VaryRecord {
		flags |= flagVaryRecord
	}
	dst = append(dst, entryVersion, flags)
	names := make([]string, 0, len(e.Header))
	for name := range e.Header {
		names = append(names, name)
	}
	slices.Sort(names)
	dst = binary.AppendUvarint(dst, uint64(len(names)))
	for _, name := range names {
		dst = appendString(dst, name)
		dst = appendStrings(dst, e.Header[name])
	}
	dst = appendStrings(dst, e.Vary)
	dst = appendStrings(dst, e.Indexes)
	dst = binary.AppendUvarint(dst, uint64(len(e.Body)))
	return append(dst, e.Body...)
}

// encodedSize returns the length of encodeEntry(nil, e), without encoding.
func encodedSize(e *localcache.Entry) int {
	n := 2 + uvarintLen(len(e.Header))
	for name, vs := range e.Header {
		n += stringLen(name) + stringsLen(vs)
	}
	return n + stringsLen(e.Vary) + stringsLen(e.Indexes) + stringLen(string(e.Body))
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendStrings(dst []byte, ss []string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(ss)))
	for _, s := range ss {
		dst = appendString(dst, s)
	}
	return dst
}

func uvarintLen(n int) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutUvarint(b[:], uint64(n))
}

func stringLen(s string) int { return uvarintLen(len(s)) + len(s) }

func stringsLen(ss []string) int {
	n := uvarintLen(len(ss))
	for _, s := range ss {
		n += stringLen(s)
	}
	return n
}

// decodeEntry reads an entry encoded by encodeEntry. The entry's Body
// shares b's memory; its TTL is 0. It returns an error wrapping
// errCorruptEntry for anything else, and never panics.
func decodeEntry(b []byte) (*localcache.Entry, error) {
	d := decoder{b: b}
	if len(b) < 2 {
		return nil, fmt.Errorf("%w: %d bytes", errCorruptEntry, len(b))
	}
	if b[0] != entryVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", errCorruptEntry, b[0], entryVersion)
	}
	if b[1]&^flagVaryRecord != 0 {
		return nil, fmt.Errorf("%w: unknown flags %#x", errCorruptEntry, b[1])
	}
	e := &localcache.Entry{VaryRecord: b[1]&flagVaryRecord != 0}
	d.b = b[2:]
	if n := d.count(); n > 0 {
		e.Header = make(http.Header, n)
		for range n {
			name := d.string()
			if _, dup := e.Header[name]; dup && d.err == nil {
				d.err = fmt.Errorf("header %q twice", name)
			}
			e.Header[name] = d.strings()
		}
	}
	e.Vary = d.strings()
	e.Indexes = d.strings()
	if n := d.count(); n > 0 && d.err == nil {
		e.Body = d.b[:n:n]
		d.b = d.b[n:]
	}
	if d.err == nil && len(d.b) > 0 {
		d.err = fmt.Errorf("%d bytes after the body", len(d.b))
	}
	if d.err != nil {
		return nil, fmt.Errorf("%w: %w", errCorruptEntry, d.err)
	}
	return e, nil
}

// decoder reads the parts of an encoded entry, remembering the first
// error; after one, every read returns a zero value.
type decoder struct {
	b   []byte
	err error
}

// count reads a uvarint that counts items of at least one byte each (or
// bytes) that follow, so that it is at most the bytes left: a corrupt
// count cannot make the decoder allocate more than the entry's size.
func (d *decoder) count() int {
	if d.err != nil {
		return 0
	}
	n, k := binary.Uvarint(d.b)
	if k <= 0 {
		d.err = errors.New("truncated length")
		return 0
	}
	d.b = d.b[k:]
	if n > uint64(len(d.b)) {
		d.err = fmt.Errorf("length %d beyond the %d bytes left", n, len(d.b))
		return 0
	}
	return int(n)
}

func (d *decoder) string() string {
	n := d.count()
	if d.err != nil {
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) strings() []string {
	n := d.count()
	if n == 0 || d.err != nil {
		return nil
	}
	ss := make([]string, n)
	for i := range ss {
		ss[i] = d.string()
	}
	if d.err != nil {
		return nil
	}
	return ss
}
