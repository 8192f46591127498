package fakeapi_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/gormpurge/gormpurge/backends/internal/fakeapi"
)

func TestFailuresQueueUp(t *testing.T) {
	var f fakeapi.Failures
	f.Add(500, 1)
	f.Add(429, 2)
	f.Add(503, 0) // nothing
	var got []int
	for {
		status, ok := f.Next()
		if !ok {
			break
		}
		got = append(got, status)
	}
	assert.Equal(t, []int{500, 429, 429}, got)

	f.Add(500, 3)
	f.Reset()
	_, ok := f.Next()
	assert.False(t, ok, "Reset cancels the queue")
}

func TestHolder(t *testing.T) {
	var h fakeapi.Holder
	assert.True(t, h.Wait(context.Background()), "nothing is held before Hold")

	arrived, release := h.Hold()
	done := make(chan bool)
	go func() { done <- h.Wait(context.Background()) }()
	<-arrived
	select {
	case <-done:
		t.Fatal("a held request went on before release")
	default:
	}
	release()
	assert.True(t, <-done, "released")
	release() // twice is harmless
	assert.True(t, h.Wait(context.Background()), "nothing is held after release")

	_, _ = h.Hold()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.False(t, h.Wait(ctx), "a request whose client went away is not answered")

	_, _ = h.Hold()
	h.ReleaseAll()
	assert.True(t, h.Wait(context.Background()), "ReleaseAll releases")
}

func TestFlattenAndCount(t *testing.T) {
	type rec struct {
		objs []string
		all  bool
	}
	recs := []rec{{objs: []string{"a", "b"}}, {all: true}, {objs: []string{"c"}}}
	assert.Equal(t, []string{"a", "b", "c"}, fakeapi.Flatten(recs, func(r rec) []string { return r.objs }))
	assert.Equal(t, 1, fakeapi.Count(recs, func(r rec) bool { return r.all }))
	assert.Nil(t, fakeapi.Flatten[rec](nil, func(r rec) []string { return r.objs }))

	copied := fakeapi.Clone(recs, func(r rec) rec {
		r.objs = append([]string(nil), r.objs...)
		return r
	})
	copied[0].objs[0] = "changed"
	assert.Equal(t, "a", recs[0].objs[0], "the copy is deep")
	assert.Len(t, copied, 3)
}
