package backends_test

import (
	"fmt"
	"testing"

	"github.com/gormpurge/gormpurge/backends"
)

// BenchmarkCanonicalRequest: the check the dispatcher makes of every request
// it is handed, on requests the plugin already made canonical.
func BenchmarkCanonicalRequest(b *testing.B) {
	for _, abs := range []bool{false, true} {
		urls := make([]string, 1000)
		for i := range urls {
			urls[i] = fmt.Sprintf("/posts/%06d", i)
			if abs {
				urls[i] = "https://www.example.com" + urls[i]
			}
		}
		r := backends.NewRequest(urls, nil)
		b.Run(fmt.Sprintf("absolute=%v", abs), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = backends.CanonicalRequest(r)
			}
		})
	}
}
