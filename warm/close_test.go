package warm_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/gormpurge/gormpurge/warm"
)

// Close on a Warmer never started (the zero value) does nothing.
func TestCloseNeverStarted(t *testing.T) {
	var w warm.Warmer
	assert.NoError(t, w.Close(t.Context()))
	assert.NoError(t, w.Close(t.Context()), "twice")
}
