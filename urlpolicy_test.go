package gormpurge_test

import (
	"bytes"
	"errors"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/gormpurge/gormpurge"
)

// A user-chosen slug behind "/" + slug cannot make the plugin purge (or
// the warmer fetch) another host: "//host/x" is refused, and with a base
// URL only its host is allowed unless WithAllowedHosts names others.
func TestSlugCannotNameAnotherHost(t *testing.T) {
	e := newEnv(t, "sqlite", &gorm.Config{}, gormpurge.WithBaseURL("https://www.example.com"))
	require.NoError(t, e.plugin.Register(&Page{}))
	for _, slug := range []string{"/attacker.example:8080/x", "/attacker.example/x"} {
		page := &Page{URLs: "/" + slug + "|https://attacker.example/y|/ok"}
		err := e.plugin.Purge(t.Context(), page)
		require.Error(t, err, slug)
		assert.ErrorIs(t, err, gormpurge.ErrInvalidURL)
		assert.ErrorIs(t, err, gormpurge.ErrForeignHost)
	}
	assert.Equal(t, []string{"https://www.example.com/ok"}, e.rec.URLs(), "only the base host's page is purged")
}

// No credential a model puts in a URL reaches an error, the error handler
// or a log line.
func TestCredentialsInModelURLsNeverReachLogs(t *testing.T) {
	const marker = "s3cr3tMARK"
	var logs bytes.Buffer
	e := newEnv(t, "sqlite", &gorm.Config{},
		gormpurge.WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	require.NoError(t, e.plugin.Register(&Page{}))
	require.NoError(t, e.db.AutoMigrate(&Page{}))
	values := []string{
		"https://admin:" + marker + "@www.example.com/x",
		"https://" + marker + "@www.example.com/x",
		"http://admin:p%" + marker + "@www.example.com/x",
		"http://admin:" + marker + "/x@www.example.com/",
		"ftp://admin:" + marker + "@www.example.com/",
	}
	for _, v := range values {
		require.NoError(t, e.db.Create(&Page{URLs: v + "|/ok", Tag: "t"}).Error)
		err := e.plugin.Purge(t.Context(), &Page{URLs: v})
		require.Error(t, err, v)
		assert.NotContains(t, err.Error(), marker, v)
	}
	reported := e.errs.all()
	require.NotEmpty(t, reported)
	for _, err := range reported {
		assert.NotContains(t, err.Error(), marker)
		var te *gormpurge.TargetError
		if errors.As(err, &te) {
			assert.NotContains(t, te.Value, marker)
		}
	}
	assert.NotContains(t, logs.String(), marker)
	for _, u := range e.rec.URLs() {
		assert.NotContains(t, u, marker)
	}
}

// Every spelling of a page that a model, a user or a browser could write
// is handed off as its one canonical form (backends.CanonicalURL).
func TestSpellingsOfOnePageHandOffOneURL(t *testing.T) {
	e := newEnv(t, "sqlite", &gorm.Config{}, gormpurge.WithAllowedHosts("ex\u00e4mple.com"))
	require.NoError(t, e.plugin.Register(&Page{}))
	require.NoError(t, e.plugin.Purge(t.Context(),
		"/search?q=caf\u00e9", "/search?q=caf%c3%a9", "/search?q=caf%C3%A9",
		"/x?a=b c", "/x?a=b%20c",
		"/tags/go%2ffeed", "/tags/go%2Ffeed",
		"https://EX\u00c4MPLE.com:443/x", "https://xn--exmple-cua.com/x",
	))
	assert.Equal(t, []string{
		"/search?q=caf%C3%A9",
		"/tags/go%2Ffeed",
		"/x?a=b%20c",
		"https://xn--exmple-cua.com/x",
	}, e.rec.URLs())
}
