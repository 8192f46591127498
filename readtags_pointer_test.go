package gormpurge_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"gorm.io/gorm"
)

// A primary key given as a pointer tags the row it names, not the
// pointer's address; a missing one lists the table, which its create purges.
func TestReadTagsOfAPrimaryKeyGivenByPointer(t *testing.T) {
	r := newReadDB(t, "sqlite")
	r.seed(t)
	missing, found := uint(99), uint(2)
	assert.Equal(t, []string{"rd_posts"}, r.tags(t, func(db *gorm.DB) error { return db.Find(&[]rdPost{}, "id = ?", &missing).Error }))
	assert.Equal(t, []string{"rd_posts:2"}, r.tags(t, func(db *gorm.DB) error { return db.Find(&[]rdPost{}, "id = ?", &found).Error }))
}
