package warm_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/warm"
)

func TestOnResultPanicIsRecoveredAndLogged(t *testing.T) {
	logged := make(chan string, 10)
	logger := hookLogger(func(msg string) {
		if strings.Contains(msg, "panicked") {
			logged <- msg
		}
	})
	w := newWarmer(t, warm.WithHandler(http.NotFoundHandler()), warm.WithLogger(logger),
		warm.WithOnResult(func(warm.Result) { panic("metrics exporter broke") }))

	w.Enqueue("/a") // in the background: a panic there would end the process
	assert.Equal(t, "warm: the WithOnResult function panicked", <-logged)
	w.Enqueue("not a URL", "/b")
	assert.Equal(t, "warm: the WithOnResult function panicked", <-logged, "Enqueue went on")
	assert.Equal(t, "warm: the WithOnResult function panicked", <-logged)
	sum := w.Fetch(context.Background(), []string{"/c"}, nil)
	assert.Equal(t, 1, sum.URLs)
	assert.Equal(t, "warm: the WithOnResult function panicked", <-logged)
	require.NoError(t, w.Close(context.Background()))
	assert.Equal(t, warm.Stats{Failed: 4}, w.Stats())
}

func TestOnResultMayCallClose(t *testing.T) {
	closed := make(chan error, 1)
	var w *warm.Warmer
	w = newWarmer(t, warm.WithHandler(http.NotFoundHandler()), warm.WithOnResult(func(r warm.Result) {
		closed <- w.Close(context.Background()) // must not wait for this very call
	}))
	w.Enqueue("/a")
	require.NoError(t, <-closed)
	w.Enqueue("/b")
	assert.Equal(t, warm.Stats{Failed: 1, Dropped: 1}, w.Stats())
}
