package gormpurge_test

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge"
	"github.com/gormpurge/gormpurge/purgetest"
)

type ptrAuthor struct {
	ID   uint
	Name string
}

type ptrPost struct {
	ID       uint
	AuthorID *uint // nullable belongs-to
	Author   *ptrAuthor
}

// A preload through a nullable (pointer) foreign key tags the author's
// row as "ptr_authors:1", not by the pointer's address.
func TestReadTagsPointerForeignKey(t *testing.T) {
	db := openSQLite(t, &ptrAuthor{}, &ptrPost{})
	p := gormpurge.New(purgetest.NewRecorder(), gormpurge.WithReadTags(), gormpurge.WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, p.Register(&ptrAuthor{}, &ptrPost{}))
	require.NoError(t, db.Use(p))
	a := ptrAuthor{Name: "Ada"}
	require.NoError(t, db.Create(&a).Error)
	require.NoError(t, db.Create(&ptrPost{AuthorID: &a.ID}).Error)
	srv := httptest.NewServer(p.TagReads(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var posts []ptrPost
		require.NoError(t, db.WithContext(r.Context()).Preload("Author").Find(&posts).Error)
		fmt.Fprint(w, len(posts))
	})))
	defer srv.Close()
	res, err := http.Get(srv.URL)
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, "ptr_authors:1 ptr_posts", res.Header.Get("Surrogate-Key"))
}
