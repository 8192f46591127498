package gormpurge_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/gormpurge/gormpurge"
	"github.com/gormpurge/gormpurge/backends"
)

// Page is a model whose URLs come from its data, good and bad.
type Page struct {
	ID   uint `gorm:"primaryKey"`
	URLs string
	Tag  string
}

func (p *Page) PurgeURLs() []string { return splitNonEmpty(p.URLs) }
func (p *Page) PurgeTags() []string { return []string{p.Tag} }

func splitNonEmpty(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '|' {
			if i > start {
				out = append(out, s[start:i])
			}
			start = i + 1
		}
	}
	return out
}

// Panicky is a model whose URL method panics.
type Panicky struct {
	ID uint `gorm:"primaryKey"`
}

func (*Panicky) AbsoluteURL() string { panic("template missing") }

// Semantics 11: URLs are resolved against the base URL; bad ones are
// reported with the model and the URL, never sent, and the write succeeds.
func TestURLValidation(t *testing.T) {
	e := newEnv(t, "sqlite", &gorm.Config{},
		gormpurge.WithBaseURL("https://www.example.com"),
		gormpurge.WithAllowedHosts("static.example.com"))
	require.NoError(t, e.plugin.Register(&Page{}, &Panicky{}))
	require.NoError(t, e.db.AutoMigrate(&Page{}, &Panicky{}))

	page := &Page{URLs: "/ok|https://static.example.com/a.css|https://evil.example.net/|/bad\r\nHost: x|gopher://x/", Tag: "bad tag"}
	require.NoError(t, e.db.Create(page).Error, "the write succeeds")
	assert.Equal(t, []string{"https://static.example.com/a.css", "https://www.example.com/ok"}, e.rec.URLs())
	assert.Empty(t, e.rec.Tags())

	errs := e.errs.all()
	require.Len(t, errs, 4)
	var rejected []string
	for _, err := range errs {
		var te *gormpurge.TargetError
		require.ErrorAs(t, err, &te)
		assert.Equal(t, "gormpurge_test.Page", te.Model)
		rejected = append(rejected, te.Kind+" "+te.Value)
		assert.Contains(t, err.Error(), "gormpurge_test.Page", "the message names the model")
	}
	assert.Equal(t, []string{"url https://evil.example.net/", "url /bad\r\nHost: x", "url gopher://x/", "tag bad tag"}, rejected)
	require.ErrorIs(t, errs[0], gormpurge.ErrForeignHost)
	require.ErrorIs(t, errs[1], gormpurge.ErrInvalidURL)
	require.ErrorIs(t, errs[3], gormpurge.ErrInvalidTag)

	e.rec.Reset()
	require.NoError(t, e.db.Create(&Panicky{}).Error, "a panicking URL method does not fail the write")
	assert.Empty(t, e.rec.Requests())
	errs = e.errs.all()
	require.Len(t, errs, 1)
	var me *gormpurge.ModelError
	require.ErrorAs(t, errs[0], &me)
	assert.Contains(t, me.Error(), "template missing")
}

func TestInvalidOptionsFailUse(t *testing.T) {
	sink := gormpurge.SinkFunc(func(context.Context, backends.Request) error { return nil })
	for name, p := range map[string]*gormpurge.Plugin{
		"base url": gormpurge.New(sink, gormpurge.WithBaseURL("example.com")),
		"nil sink": gormpurge.New(nil),
	} {
		t.Run(name, func(t *testing.T) {
			db, err := gorm.Open(sqlite.Open(filepath.Join(t.TempDir(), "x.db")), &gorm.Config{Logger: logger.Discard})
			require.NoError(t, err)
			closeOnCleanup(t, db)
			err = db.Use(p)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "gormpurge: ")
		})
	}
}
