package gormpurge_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/gormpurge/gormpurge"
	"github.com/gormpurge/gormpurge/backends"
	"github.com/gormpurge/gormpurge/dispatcher"
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
	tests := []struct {
		name string
		p    *gormpurge.Plugin
		want []string // each must appear in db.Use's error
	}{
		{"base url", gormpurge.New(sink, gormpurge.WithBaseURL("example.com")), []string{`gormpurge: WithBaseURL("example.com")`}},
		{"nil sink", gormpurge.New(nil), []string{"gormpurge: New: sink is nil"}},
		{"negative handoff timeout", gormpurge.New(sink, gormpurge.WithHandoffTimeout(-time.Second)), []string{"gormpurge: WithHandoffTimeout(-1s)"}},
		{"nil logger", gormpurge.New(sink, gormpurge.WithLogger(nil)), []string{"gormpurge: WithLogger(nil): pass slog.New(slog.DiscardHandler)"}},
		{"nil error handler", gormpurge.New(sink, gormpurge.WithErrorHandler(nil)), []string{"gormpurge: WithErrorHandler(nil): pass a function"}},
		{"every mistake at once", gormpurge.New(sink, gormpurge.WithLogger(nil), gormpurge.WithHandoffTimeout(-time.Second)),
			[]string{"WithLogger(nil)", "WithHandoffTimeout(-1s)"}},
		{"typed-nil sink", gormpurge.New((*dispatcher.Dispatcher)(nil)),
			[]string{"gormpurge: New: sink is a nil *dispatcher.Dispatcher: pass a *dispatcher.Dispatcher made by dispatcher.New"}},
		{"typed-nil sink func", gormpurge.New(gormpurge.SinkFunc(nil)), []string{"gormpurge: New: sink is a nil gormpurge.SinkFunc"}},
		{"nil option", gormpurge.New(sink, nil), []string{"gormpurge: an Option is nil: remove it, or pass one made by a With... function"}},
		{"nil sink and invalid options", gormpurge.New(nil, gormpurge.WithLogger(nil), nil, gormpurge.WithBaseURL("example.com")),
			[]string{"sink is nil", "WithLogger(nil)", "an Option is nil", `WithBaseURL("example.com")`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, err := gorm.Open(sqlite.Open(filepath.Join(t.TempDir(), "x.db")), &gorm.Config{Logger: logger.Discard})
			require.NoError(t, err)
			closeOnCleanup(t, db)
			err = db.Use(tt.p)
			require.Error(t, err)
			for _, want := range tt.want {
				assert.ErrorContains(t, err, want)
			}
		})
	}
}
