package outbox

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
)

type sqlStateError string

func (e sqlStateError) Error() string    { return "driver error" }
func (e sqlStateError) SQLState() string { return string(e) }

// A claim that lost a deadlock is tried again instead of being reported:
// these are the answers that mean so, from each database.
func TestIsLockConflict(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{errors.New("Error 1213 (40001): Deadlock found when trying to get lock; try restarting transaction"), true},
		{errors.New("Error 1205 (HY000): Lock wait timeout exceeded; try restarting transaction"), true},
		{fmt.Errorf("claim: %w", sqlStateError("40P01")), true},
		{sqlStateError("40001"), true},
		{errors.New("ERROR: deadlock detected (SQLSTATE 40P01)"), true},
		{sqlStateError("23505"), false},
		{errors.New("Error 1146 (42S02): Table 'test.gormpurge_outbox' doesn't exist"), false},
		{errors.New("database is locked"), false},
	} {
		assert.Equal(t, c.want, isLockConflict(c.err), c.err.Error())
	}
}
