package localcache_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends/localcache"
)

func newWire(t testing.TB) *localcache.Wire {
	w, err := localcache.NewWire()
	require.NoError(t, err)
	return w
}

// collect publishes e through w and returns the messages sent.
func collect(t *testing.T, w *localcache.Wire, e localcache.Event, max int) [][]byte {
	var msgs [][]byte
	require.NoError(t, w.Publish(e, max, func(b []byte) error {
		msgs = append(msgs, append([]byte(nil), b...))
		return nil
	}))
	return msgs
}

func TestWireSplitsPurgesWithinTheMessageSize(t *testing.T) {
	pub, sub := newWire(t), newWire(t)
	var want []string
	for i := range 5000 {
		want = append(want, fmt.Sprintf("p /articles/%d/<\"é\"\u2028>", i)) // characters JSON escapes
	}
	const max = 4 << 10
	msgs := collect(t, pub, localcache.Event{Kind: localcache.EventPurge, Indexes: want}, max)
	require.Greater(t, len(msgs), 10)
	var got []string
	for i, m := range msgs {
		assert.LessOrEqual(t, len(m), max, "message %d", i)
		e, others, err := sub.Decode(m)
		require.NoError(t, err)
		require.True(t, others)
		assert.Equal(t, localcache.EventPurge, e.Kind)
		assert.Equal(t, pub.Origin(), e.Origin)
		assert.Equal(t, uint64(i+1), e.Seq, "numbered from 1 without gaps")
		got = append(got, e.Indexes...)
	}
	assert.Equal(t, want, got)

	_, others, err := pub.Decode(msgs[0])
	require.NoError(t, err)
	assert.False(t, others, "a Wire recognises its own messages")
}

func TestWireRefusesWhatCannotTravel(t *testing.T) {
	w := newWire(t)
	send := func([]byte) error { return nil }
	for _, k := range []localcache.EventKind{localcache.EventUp, localcache.EventDown, 0} {
		assert.Error(t, w.Publish(localcache.Event{Kind: k}, 1<<20, send), "kind %s", k)
	}
	err := w.Publish(localcache.Event{Kind: localcache.EventPurge, Indexes: []string{strings.Repeat("x", 2000)}}, 1024, send)
	assert.ErrorIs(t, err, localcache.ErrEventTooLarge)

	boom := errors.New("boom")
	calls := 0
	err = w.Publish(localcache.Event{Kind: localcache.EventPurge, Indexes: []string{strings.Repeat("a", 500), strings.Repeat("b", 500)}}, 700,
		func([]byte) error { calls++; return boom })
	assert.ErrorIs(t, err, boom)
	assert.Equal(t, 1, calls, "the first failure stops the rest")
}

func TestWireDecodeRefusesForeignMessages(t *testing.T) {
	w := newWire(t)
	for _, tc := range []struct{ msg, want string }{
		{`not json`, "not an event"},
		{`{"v":2,"o":"x","s":1,"k":"purge"}`, "version 2"},
		{`{"v":1,"o":"x","s":1,"k":"explode"}`, `unknown kind "explode"`},
		{`{"v":1,"s":1,"k":"clear"}`, "without origin"},
		{`{"v":1,"o":"x","k":"clear"}`, "without origin or sequence"},
	} {
		_, _, err := w.Decode([]byte(tc.msg))
		require.Error(t, err, tc.msg)
		assert.Contains(t, err.Error(), tc.want)
	}
	e, others, err := w.Decode([]byte(`{"v":1,"o":"x","s":7,"k":"clear","i":["ignored"]}`))
	require.NoError(t, err)
	assert.True(t, others)
	assert.Equal(t, localcache.Event{Kind: localcache.EventClear, Origin: "x", Seq: 7}, e)
}

func FuzzWireDecode(f *testing.F) {
	f.Add([]byte(`{"v":1,"o":"x","s":1,"k":"purge","i":["p /a","t b"]}`))
	f.Add([]byte(`{"v":1,"o":"x","s":2,"k":"clear"}`))
	f.Add([]byte(`{}`))
	w := newWire(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		e, _, err := w.Decode(b)
		if err != nil {
			return
		}
		// What decodes republishes and decodes to the same indexes.
		var msgs [][]byte
		require.NoError(t, newWire(t).Publish(e, 1<<30, func(m []byte) error { msgs = append(msgs, m); return nil }))
		require.Len(t, msgs, 1)
		back, _, err := w.Decode(msgs[0])
		require.NoError(t, err)
		assert.Equal(t, e.Kind, back.Kind)
		assert.Equal(t, len(e.Indexes), len(back.Indexes))
	})
}
