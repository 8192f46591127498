// Package testdb opens fresh, private databases for tests: a SQLite file in
// the test's temporary directory, a PostgreSQL schema or a MariaDB/MySQL
// database of its own, dropped at cleanup. PostgreSQL and MariaDB are used
// when GORMPURGE_TEST_POSTGRES_DSN and GORMPURGE_TEST_MYSQL_DSN are set; the
// test is skipped, saying so, when they are not.
package testdb

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/stretchr/testify/require"
	gmysql "gorm.io/driver/mysql"
	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Kinds are the databases the tests run on, in order.
var Kinds = []string{"sqlite", "postgres", "mysql"}

// Environment variables naming the servers.
const (
	PostgresEnv = "GORMPURGE_TEST_POSTGRES_DSN"
	MySQLEnv    = "GORMPURGE_TEST_MYSQL_DSN"
)

// DSN returns a data source name for a fresh database of the given kind,
// created now and dropped when t ends, or skips t when the server's
// variable is unset.
func DSN(t testing.TB, kind string) string {
	t.Helper()
	switch kind {
	case "sqlite":
		return "file:" + filepath.Join(t.TempDir(), "test.db") + "?_busy_timeout=10000&_journal_mode=WAL&_txlock=immediate&_foreign_keys=on"
	case "postgres":
		dsn := os.Getenv(PostgresEnv)
		if dsn == "" {
			t.Skip(PostgresEnv + " is not set; set it (e.g. \"host=127.0.0.1 user=postgres dbname=test sslmode=disable\") to run against PostgreSQL")
		}
		schema := UniqueName()
		admin, err := gorm.Open(postgres.Open(dsn), &gorm.Config{Logger: logger.Discard})
		require.NoError(t, err)
		require.NoError(t, admin.Exec("CREATE SCHEMA "+schema).Error)
		t.Cleanup(func() {
			admin.Exec("DROP SCHEMA " + schema + " CASCADE")
			if sqlDB, err := admin.DB(); err == nil {
				sqlDB.Close()
			}
		})
		return dsn + " search_path=" + schema
	case "mysql":
		dsn := os.Getenv(MySQLEnv)
		if dsn == "" {
			t.Skip(MySQLEnv + " is not set; set it (e.g. \"root@tcp(127.0.0.1:3306)/test?parseTime=true\") to run against MariaDB or MySQL")
		}
		cfg, err := mysql.ParseDSN(dsn)
		require.NoError(t, err)
		cfg.ParseTime = true
		name := UniqueName()
		admin, err := gorm.Open(gmysql.Open(cfg.FormatDSN()), &gorm.Config{Logger: logger.Discard})
		require.NoError(t, err)
		require.NoError(t, admin.Exec("CREATE DATABASE "+name).Error)
		t.Cleanup(func() {
			admin.Exec("DROP DATABASE " + name)
			if sqlDB, err := admin.DB(); err == nil {
				sqlDB.Close()
			}
		})
		cfg.DBName = name
		return cfg.FormatDSN()
	}
	t.Fatalf("testdb: unknown database kind %q", kind)
	return ""
}

// Dialector returns a GORM dialector for dsn, a DSN of the given kind.
func Dialector(kind, dsn string) gorm.Dialector {
	switch kind {
	case "postgres":
		return postgres.Open(dsn)
	case "mysql":
		return gmysql.Open(dsn)
	}
	return sqlite.Open(dsn)
}

// Open opens a fresh database of the given kind (see [DSN]) and closes its
// pool when t ends.
func Open(t testing.TB, kind string, cfg *gorm.Config) *gorm.DB {
	t.Helper()
	return OpenDSN(t, kind, DSN(t, kind), cfg)
}

// OpenDSN opens dsn, a DSN of the given kind, and closes its pool when t
// ends. A nil cfg, or one without a logger, logs nothing.
func OpenDSN(t testing.TB, kind, dsn string, cfg *gorm.Config) *gorm.DB {
	t.Helper()
	if cfg == nil {
		cfg = &gorm.Config{}
	}
	if cfg.Logger == nil {
		cfg.Logger = logger.Discard
	}
	db, err := gorm.Open(Dialector(kind, dsn), cfg)
	require.NoError(t, err)
	CloseOnCleanup(t, db)
	return db
}

// CloseOnCleanup closes db's connection pool when t ends.
func CloseOnCleanup(t testing.TB, db *gorm.DB) {
	t.Cleanup(func() {
		if sqlDB, err := db.DB(); err == nil {
			sqlDB.Close()
		}
	})
}

// UniqueName returns a random name for a schema or database.
func UniqueName() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "gp_" + hex.EncodeToString(b[:])
}
