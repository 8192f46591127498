package outbox_test

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Getenv(crashChildEnv) != "" {
		crashChild() // the child process of TestCrashSafety; never returns
	}
	goleak.VerifyTestMain(m,
		// GORM's prepared-statement cache starts a goroutine nothing can stop.
		goleak.IgnoreTopFunction("gorm.io/gorm/internal/lru.NewLRU[...].func1"),
	)
}
