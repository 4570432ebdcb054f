// Package dbtest gives each test a fresh, migrated database: its own schema on
// the PostgreSQL at TEST_DATABASE_URL, and an SQLite file in t.TempDir().
package dbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/onsite/onsite/internal/db"
)

// DefaultPostgresURL is used when TEST_DATABASE_URL is not set.
const DefaultPostgresURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// PostgresURL is the server the tests use.
func PostgresURL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return DefaultPostgresURL
}

// Each runs body once on a fresh PostgreSQL schema and once on a fresh SQLite
// file, as subtests named "postgres" and "sqlite".
func Each(t *testing.T, body func(t *testing.T, d *db.DB)) {
	t.Helper()
	t.Run("postgres", func(t *testing.T) { body(t, Postgres(t)) })
	t.Run("sqlite", func(t *testing.T) { body(t, SQLite(t)) })
}

// SQLite returns a migrated SQLite database in a temporary directory.
func SQLite(t testing.TB) *db.DB {
	t.Helper()
	ctx := context.Background()
	d, err := db.OpenSQLite(ctx, filepath.Join(t.TempDir(), "test.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	if err := db.Migrate(ctx, d, quiet()); err != nil {
		t.Fatal(err)
	}
	return d
}

// Postgres returns a migrated database in a new schema, dropped at cleanup.
func Postgres(t testing.TB) *db.DB {
	t.Helper()
	u := PostgresSchemaURL(t)
	ctx := context.Background()
	d, err := db.OpenPostgres(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	if err := db.Migrate(ctx, d, quiet()); err != nil {
		t.Fatal(err)
	}
	return d
}

// PostgresSchemaURL creates an empty schema, drops it at cleanup, and returns a
// URL whose connections use it as their search_path.
func PostgresSchemaURL(t testing.TB) string {
	t.Helper()
	ctx := context.Background()
	admin, err := db.OpenPostgres(ctx, PostgresURL())
	if err != nil {
		t.Fatalf("postgres not reachable at %s (set TEST_DATABASE_URL): %v", PostgresURL(), err)
	}
	schema := "t_" + randomHex(8)
	if err := admin.Exec("CREATE SCHEMA " + schema).Error; err != nil {
		t.Fatal(err)
	}
	_ = admin.Close()
	t.Cleanup(func() {
		admin, err := db.OpenPostgres(context.Background(), PostgresURL())
		if err != nil {
			t.Logf("drop schema %s: %v", schema, err)
			return
		}
		defer admin.Close()
		if n, err := orphans(admin, schema); err != nil {
			t.Errorf("count orphans in %s: %v", schema, err)
		} else if n > 0 {
			t.Errorf("%d offers or events in %s point at a request or technician that does not exist", n, schema)
		}
		if err := admin.Exec("DROP SCHEMA " + schema + " CASCADE").Error; err != nil {
			t.Logf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(PostgresURL())
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// orphans counts the offers and events of schema whose request or
// technician does not exist. On PostgreSQL these tables have no foreign keys
// (migrations/go.go says why): every test checks at its end that no writer
// relied on them.
func orphans(admin *db.DB, schema string) (int64, error) {
	var migrated bool
	if err := admin.Raw("SELECT to_regclass(?) IS NOT NULL AND to_regclass(?) IS NOT NULL", schema+".offers", schema+".events").
		Scan(&migrated).Error; err != nil || !migrated {
		return 0, err
	}
	var n int64
	err := admin.Raw(`SELECT
		(SELECT count(*) FROM ` + schema + `.offers o WHERE NOT EXISTS (SELECT 1 FROM ` + schema + `.requests r WHERE r.id = o.request_id)
			OR NOT EXISTS (SELECT 1 FROM ` + schema + `.technicians t WHERE t.id = o.technician_id)) +
		(SELECT count(*) FROM ` + schema + `.events e WHERE NOT EXISTS (SELECT 1 FROM ` + schema + `.requests r WHERE r.id = e.request_id))`).
		Scan(&n).Error
	return n, err
}

// Count returns the number of rows in table.
func Count(t testing.TB, d *db.DB, table string) int64 {
	t.Helper()
	var n int64
	if err := d.Table(table).Count(&n).Error; err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("random: %v", err))
	}
	return hex.EncodeToString(b)
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// Redis DB numbers, one per package, so that packages running in parallel
// never flush each other's keys. Allocated here and nowhere else.
const (
	RedisDBApp      = 1
	RedisDBJobs     = 2
	RedisDBDispatch = 3
	RedisDBNotify   = 4
	RedisDBMobile   = 5
	RedisDBCmd      = 6
	RedisDBAPI      = 7
	RedisDBSignin   = 8
)

// RedisURL is the Redis server tests use, with the given DB number.
func RedisURL(dbNumber int) string {
	base := os.Getenv("TEST_REDIS_ADDR")
	if base == "" {
		base = "127.0.0.1:6379"
	}
	return fmt.Sprintf("redis://%s/%d", base, dbNumber)
}
