package gormpurge_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/gormpurge/gormpurge"
	"github.com/gormpurge/gormpurge/backends"
)

// tableSink is a TxSink that writes each request as a row of outbox_rows
// inside the transaction, the way the durable outbox does.
type tableSink struct {
	kind    string
	fail    bool
	mu      sync.Mutex
	enqueue []backends.Request
}

type outboxRow struct {
	ID   uint `gorm:"primaryKey"`
	URLs string
}

func (s *tableSink) EnqueueTx(ctx context.Context, tx gorm.ConnPool, r backends.Request) error {
	table := "outbox_rows"
	if s.fail {
		table = "missing_table" // a real SQL error: on PostgreSQL it would abort the transaction
	}
	q := "INSERT INTO " + table + " (urls) VALUES (?)"
	if s.kind == "postgres" {
		q = "INSERT INTO " + table + " (urls) VALUES ($1)"
	}
	_, err := tx.ExecContext(ctx, q, strings.Join(r.URLs, " "))
	return err
}

func (s *tableSink) Enqueue(_ context.Context, r backends.Request) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.enqueue = append(s.enqueue, r)
	return nil
}

// Semantics 12: a TxSink writes inside the user's transaction, so the
// database keeps the request with a commit and drops it with a rollback.
func TestTxSinkWritesInsideTheTransaction(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		sink := &tableSink{kind: e.kind}
		p := gormpurge.New(sink, gormpurge.WithErrorHandler(e.errs.handler))
		require.NoError(t, p.Register(&Post{}))
		db, err := gorm.Open(e.db.Dialector, &gorm.Config{Logger: e.db.Logger})
		require.NoError(t, err)
		closeOnCleanup(t, db)
		require.NoError(t, db.Use(p))
		require.NoError(t, db.AutoMigrate(&outboxRow{}))
		rows := func() (out []string) {
			var rs []outboxRow
			require.NoError(t, e.other.Order("id").Find(&rs).Error)
			for _, r := range rs {
				out = append(out, r.URLs)
			}
			return out
		}

		require.NoError(t, db.Transaction(func(tx *gorm.DB) error {
			require.NoError(t, tx.Create(&Post{Slug: "kept"}).Error)
			_ = tx.Transaction(func(tx2 *gorm.DB) error {
				require.NoError(t, tx2.Create(&Post{Slug: "savepoint-dropped"}).Error)
				return errors.New("undo")
			})
			return nil
		}))
		tx := db.Begin()
		require.NoError(t, tx.Create(&Post{Slug: "rolled-back"}).Error)
		require.NoError(t, tx.Rollback().Error)
		assert.Equal(t, []string{"/ /posts/kept"}, rows())
		assert.Empty(t, sink.enqueue, "nothing went through the in-memory path")

		// When the write inside the transaction fails, the request falls
		// back to Enqueue after the commit: reported, not lost.
		sink.fail = true
		require.NoError(t, db.Create(&Post{Slug: "fallback"}).Error)
		require.Len(t, sink.enqueue, 1)
		assert.Equal(t, []string{"/", "/posts/fallback"}, sink.enqueue[0].URLs)
		errs := e.errs.all()
		require.Len(t, errs, 1)
		assert.Contains(t, errs[0].Error(), "missing_table")
		assert.NoError(t, e.other.Where("slug = ?", "fallback").First(&Post{}).Error, "the user's write was committed")
	})
}
