package redisstore

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends/localcache"
)

func TestEntryEncodingRoundTrips(t *testing.T) {
	body := make([]byte, 256)
	for i := range body {
		body[i] = byte(i)
	}
	tests := []struct {
		name string
		in   *localcache.Entry
	}{
		{"empty", &localcache.Entry{}},
		{"page", &localcache.Entry{
			Header:  http.Header{"Content-Type": {"text/html"}, "Link": {"</a.css>", "</b.js>"}, "Etag": {`"x"`}},
			Body:    body,
			Vary:    []string{"Accept-Encoding"},
			Indexes: []string{"p /a", "t café ✓", "k \x00"},
			TTL:     time.Hour,
		}},
		{"vary record", &localcache.Entry{VaryRecord: true, Vary: []string{"Accept-Language"}, Indexes: []string{"p /a"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := encodeEntry(nil, tt.in)
			assert.Len(t, b, encodedSize(tt.in), "encodedSize agrees with encodeEntry")
			got, err := decodeEntry(b)
			require.NoError(t, err)
			assert.Equal(t, tt.in.Header, got.Header)
			assert.Equal(t, string(tt.in.Body), string(got.Body))
			assert.Equal(t, tt.in.Vary, got.Vary)
			assert.Equal(t, tt.in.VaryRecord, got.VaryRecord)
			assert.Equal(t, tt.in.Indexes, got.Indexes)
			assert.Zero(t, got.TTL, "Redis keeps the TTL, not the encoding")
		})
	}
}

func TestDecodeRefusesWhatIsNotAnEntry(t *testing.T) {
	good := encodeEntry(nil, &localcache.Entry{Header: http.Header{"A": {"b"}}, Body: []byte("body")})
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"other version", append([]byte{entryVersion + 1}, good[1:]...)},
		{"unknown flag", append([]byte{entryVersion, 0x80}, good[2:]...)},
		{"truncated", good[:len(good)-1]},
		{"trailing bytes", append(append([]byte{}, good...), 0)},
		{"huge count", []byte{entryVersion, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}},
		{"header twice", []byte{entryVersion, 0, 2, 1, 'A', 0, 1, 'A', 0, 0, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeEntry(tt.b)
			assert.ErrorIs(t, err, errCorruptEntry)
		})
	}
}

// FuzzDecode checks that decoding never panics nor allocates more than
// its input warrants, and that whatever decodes encodes back to bytes that
// decode to the same entry.
func FuzzDecode(f *testing.F) {
	f.Add(encodeEntry(nil, &localcache.Entry{}))
	f.Add(encodeEntry(nil, &localcache.Entry{
		Header:  http.Header{"Content-Type": {"text/html"}, "Link": {"a", "b"}},
		Body:    []byte("<p>hello</p>"),
		Vary:    []string{"Accept-Encoding"},
		Indexes: []string{"p /a", "t x"},
	}))
	f.Add(encodeEntry(nil, &localcache.Entry{VaryRecord: true, Vary: []string{"Accept-Language"}}))
	f.Add([]byte{entryVersion, 0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeEntry(b)
		if err != nil {
			return
		}
		again := encodeEntry(nil, e)
		require.Len(t, again, encodedSize(e))
		e2, err := decodeEntry(again)
		require.NoError(t, err, "an entry that decoded must encode to bytes that decode")
		assert.Equal(t, e.Header, e2.Header)
		assert.Equal(t, string(e.Body), string(e2.Body))
		assert.Equal(t, e.Vary, e2.Vary)
		assert.Equal(t, e.VaryRecord, e2.VaryRecord)
		assert.Equal(t, e.Indexes, e2.Indexes)
		assert.Equal(t, again, encodeEntry(nil, e2), "encoding is deterministic")
	})
}
