package gormpurge_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test closes what it opens: no goroutine may outlive the package's
// tests (database pools, the dispatcher, HTTP servers).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// GORM's prepared-statement cache starts a goroutine nothing can stop.
		goleak.IgnoreTopFunction("gorm.io/gorm/internal/lru.NewLRU[...].func1"),
	)
}
