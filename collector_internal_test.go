package gormpurge

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestParseSavepoint(t *testing.T) {
	for in, want := range map[string]struct {
		op   spOp
		name string
	}{
		"SAVEPOINT sp1":                         {spCreate, "sp1"},
		"savepoint `sp1`":                       {spCreate, "sp1"},
		"ROLLBACK TO SAVEPOINT sp1":             {spRollback, "sp1"},
		"ROLLBACK TO sp1;":                      {spRollback, "sp1"},
		"RELEASE SAVEPOINT \"sp1\"":             {spRelease, "sp1"},
		"RELEASE sp1":                           {spRelease, "sp1"},
		"SAVE TRANSACTION sp1":                  {spCreate, "sp1"},
		"ROLLBACK TRANSACTION sp1":              {spRollback, "sp1"},
		"ROLLBACK":                              {spNone, ""},
		"SELECT 1":                              {spNone, ""},
		"UPDATE posts SET x = 1":                {spNone, ""},
		"SAVEPOINT a b":                         {spNone, ""},
		"REPLACE INTO posts (id) VALUES (1)":    {spNone, ""},
		"  \n\tsavepoint   sp_9  ":              {spCreate, "sp_9"},
		"rollback to savepoint sp0x1400012a000": {spRollback, "sp0x1400012a000"},
	} {
		op, name := parseSavepoint(in)
		assert.Equal(t, want.op, op, in)
		assert.Equal(t, want.name, name, in)
	}
}

// The collector dedupes the same way below and above the size at which it
// switches from scanning to a map, also across savepoint rollbacks.
func TestCollectorDedupesAcrossSizes(t *testing.T) {
	for _, n := range []int{3, smallSet, smallSet + 1, 100} {
		var c collector
		urls := make([]string, n)
		for i := range urls {
			urls[i] = "/p/" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		}
		c.add(urls[:n/2], nil)
		c.savepoint(spCreate, "sp")
		c.add(urls, []string{"t"})
		c.add(urls, []string{"t"})
		assert.Len(t, c.request().URLs, n)
		c.savepoint(spRollback, "sp")
		c.add(urls[n/2:n/2+1], nil)
		c.add(urls[n/2:n/2+1], nil)
		assert.Len(t, c.request().URLs, n/2+1, "n=%d", n)
		assert.Empty(t, c.request().Tags)
	}
}
