package prompurge_test

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/gormpurge/gormpurge"
	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/contrib/prompurge"
	"github.com/gormpurge/gormpurge/dispatcher"
	"github.com/gormpurge/gormpurge/purgetest"
)

// Page is a model with one page to purge.
type Page struct {
	ID   uint
	Slug string
}

func (p *Page) AbsoluteURL() string { return "/pages/" + p.Slug }

// TestACommittedChangeIsCounted wires the Collector into the plugin and
// the dispatcher, as an application does, and commits one change.
func TestACommittedChangeIsCounted(t *testing.T) {
	ctx := context.Background()
	reg := prometheus.NewPedanticRegistry()
	col, err := prompurge.New(reg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, col.Close(ctx)) })

	rec := purgetest.NewRecorder()
	d, err := dispatcher.New([]backends.Backend{rec}, dispatcher.WithObserver(col), dispatcher.WithLinger(0))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, d.Close(ctx)) })

	db, err := gorm.Open(sqlite.Open("file:"+t.Name()+"?mode=memory&cache=shared"), &gorm.Config{Logger: logger.Discard})
	require.NoError(t, err)
	t.Cleanup(func() {
		if sqlDB, err := db.DB(); err == nil {
			sqlDB.Close()
		}
	})
	p := gormpurge.New(d, gormpurge.WithObserver(col))
	require.NoError(t, p.Register(&Page{}))
	require.NoError(t, db.Use(p))
	require.NoError(t, db.AutoMigrate(&Page{}))

	require.NoError(t, db.Create(&Page{Slug: "hello"}).Error)
	require.NoError(t, d.Flush(ctx))
	require.Equal(t, []string{"/pages/hello"}, rec.URLs())

	objects := series(t, reg, "gormpurge_purge_objects_total", map[string]string{"backend": rec.Name(), "outcome": "delivered"})
	assert.Equal(t, 1.0, objects.GetCounter().GetValue())
	handoffs := series(t, reg, "gormpurge_handoffs_total", map[string]string{"outcome": "handed_off"})
	assert.Equal(t, 1.0, handoffs.GetCounter().GetValue())
	latency := series(t, reg, "gormpurge_purge_latency_seconds", map[string]string{"backend": rec.Name(), "outcome": "delivered"})
	assert.EqualValues(t, 1, latency.GetHistogram().GetSampleCount())
	duration := series(t, reg, "gormpurge_purge_duration_seconds", map[string]string{"backend": rec.Name(), "outcome": "ok", "error_class": ""})
	assert.EqualValues(t, 1, duration.GetHistogram().GetSampleCount())
}
