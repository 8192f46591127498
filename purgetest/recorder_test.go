package purgetest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/purgetest"
)

func TestRecorder(t *testing.T) {
	rec := purgetest.NewRecorder()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	done := make(chan error, 1)
	go func() { done <- rec.WaitForURLs(ctx, "/a", "/b") }()
	require.NoError(t, rec.Enqueue(ctx, backends.NewRequest([]string{"/a"}, []string{"t"})))
	_, err := rec.Purge(ctx, backends.NewRequest([]string{"/b", "/a"}, nil))
	require.NoError(t, err)
	require.NoError(t, <-done, "WaitForURLs returns once every URL has arrived")

	assert.Len(t, rec.Requests(), 2)
	assert.Equal(t, []string{"/a", "/b"}, rec.URLs())
	assert.Equal(t, []string{"t"}, rec.Tags())

	rec.Hook = func(context.Context, backends.Request) error { return errors.New("down") }
	require.Error(t, rec.Enqueue(ctx, backends.NewRequest([]string{"/c"}, nil)))
	assert.NotContains(t, rec.URLs(), "/c", "a refused request is not recorded")

	rec.Reset()
	assert.Empty(t, rec.Requests())
	short, cancelShort := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancelShort()
	assert.ErrorIs(t, rec.WaitForURLs(short, "/never"), context.DeadlineExceeded)
}
