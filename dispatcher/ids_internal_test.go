package dispatcher

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// A result with an id per object (Fastly answers one per URL) is logged
// with its first ids and a count of the rest, not with hundreds of ids at
// every retry.
func TestIDsAttrIsBounded(t *testing.T) {
	for _, tc := range []struct {
		n        int
		wantMore string
	}{{3, ""}, {maxLoggedIDs, ""}, {500, fmt.Sprintf("ids.more=%d", 500-maxLoggedIDs)}} {
		ids := make(map[string]string, tc.n)
		for i := range tc.n {
			ids[fmt.Sprintf("https://example.com/%03d", i)] = fmt.Sprint("id-", i)
		}
		var buf bytes.Buffer
		slog.New(slog.NewTextHandler(&buf, nil)).LogAttrs(t.Context(), slog.LevelInfo, "m", idsAttr(ids))
		out := buf.String()
		assert.Equal(t, min(tc.n, maxLoggedIDs), strings.Count(out, "=id-"), "n=%d: %s", tc.n, out)
		if tc.wantMore != "" {
			assert.Contains(t, out, tc.wantMore)
		} else {
			assert.NotContains(t, out, "ids.more")
		}
	}
}
