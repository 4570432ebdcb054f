// Package db opens Onsite's database (PostgreSQL, or an SQLite file in
// embedded mode) and applies the embedded migrations.
package db

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/glebarez/sqlite"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/onsite/onsite/migrations"
)

// Dialect names the database engine.
type Dialect string

// The supported engines.
const (
	Postgres Dialect = "postgres"
	SQLite   Dialect = "sqlite"
)

// DB is an open database and the engine behind it.
type DB struct {
	*gorm.DB
	Dialect Dialect
	Schema  string // the PostgreSQL search_path given in the URL, if any

	url       string // for the change feed's own listening connections
	feed      *feed
	listenErr func(channel string, err error)
}

// OpenPostgres opens PostgreSQL at url; TimeZone=UTC is added so TIMESTAMP
// columns hold UTC.
func OpenPostgres(ctx context.Context, rawURL string) (*DB, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	q := u.Query()
	if q.Get("TimeZone") == "" {
		q.Set("TimeZone", "UTC")
	}
	u.RawQuery = q.Encode()
	g, err := gorm.Open(postgres.Open(u.String()), gormConfig())
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	sqlDB, err := g.DB()
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	sqlDB.SetMaxOpenConns(32)
	sqlDB.SetMaxIdleConns(16)
	sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	if err := sqlDB.PingContext(ctx); err != nil {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("ping postgres: %w", err)
	}
	return &DB{DB: g, Dialect: Postgres, Schema: q.Get("search_path"), url: u.String(), feed: newFeed()}, nil
}

// OpenSQLite opens (creating if needed) the SQLite file at path, in WAL mode
// with a busy timeout so concurrent writers wait instead of failing. Writes
// begin IMMEDIATE, so a transaction never has to upgrade a read lock (which
// SQLite refuses at once with SQLITE_BUSY). Note: glebarez/go-sqlite ignores
// _txlock when _time_format is given, so times use the driver's default
// format (comparable as text in UTC).
func OpenSQLite(ctx context.Context, path string) (*DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	dsn := "file:" + path + "?_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_txlock=immediate"
	g, err := gorm.Open(sqlite.Open(dsn), gormConfig())
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	sqlDB, err := g.DB()
	if err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	sqlDB.SetMaxOpenConns(8)
	if err := sqlDB.PingContext(ctx); err != nil {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("ping sqlite: %w", err)
	}
	return &DB{DB: g, Dialect: SQLite, feed: newFeed()}, nil
}

func gormConfig() *gorm.Config {
	return &gorm.Config{
		TranslateError:         true,
		SkipDefaultTransaction: true,
		Logger:                 logger.Discard,
		NowFunc:                func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) },
	}
}

// Close closes the connection pool.
func (d *DB) Close() error {
	sqlDB, err := d.DB.DB()
	if err != nil {
		return err
	}
	return sqlDB.Close()
}

// Ping checks that the database answers.
func (d *DB) Ping(ctx context.Context) error {
	sqlDB, err := d.DB.DB()
	if err != nil {
		return err
	}
	return sqlDB.PingContext(ctx)
}

// MigrateOption tunes Migrate.
type MigrateOption func(*migrateOptions)

type migrateOptions struct {
	lockID int64
	down   bool
}

// WithLockID sets the PostgreSQL advisory lock that keeps N processes from
// migrating at once (tests use one per schema so they need not wait).
func WithLockID(id int64) MigrateOption { return func(o *migrateOptions) { o.lockID = id } }

// Down rolls every migration back instead of applying them.
func Down() MigrateOption { return func(o *migrateOptions) { o.down = true } }

// Migrate applies every embedded migration not yet applied.
func Migrate(ctx context.Context, d *DB, log *slog.Logger, opts ...MigrateOption) error {
	o := migrateOptions{lockID: lock.DefaultLockID}
	if d.Schema != "" {
		// Processes migrating different schemas need not wait for each other.
		o.lockID = int64(crc32.ChecksumIEEE([]byte(d.Schema)))
	}
	for _, f := range opts {
		f(&o)
	}
	sqlDB, err := d.DB.DB()
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	gooseOpts := []goose.ProviderOption{goose.WithGoMigrations(migrations.Go(d.Dialect == Postgres)...)}
	dialect := goose.DialectSQLite3
	if d.Dialect == Postgres {
		dialect = goose.DialectPostgres
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(o.lockID), lock.WithLockTimeout(1, 300))
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		gooseOpts = append(gooseOpts, goose.WithSessionLocker(locker))
	}
	p, err := goose.NewProvider(dialect, sqlDB, migrations.FS, gooseOpts...)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	var results []*goose.MigrationResult
	if o.down {
		results, err = p.DownTo(ctx, 0)
	} else {
		results, err = p.Up(ctx)
	}
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for _, r := range results {
		log.Info("migration applied", "version", r.Source.Version, "path", r.Source.Path, "direction", r.Direction, "took", r.Duration)
	}
	return nil
}

// IsDuplicate reports whether err is a unique-constraint violation.
func IsDuplicate(err error) bool { return errors.Is(err, gorm.ErrDuplicatedKey) }

// IsNotFound reports whether err is GORM's record-not-found.
func IsNotFound(err error) bool { return errors.Is(err, gorm.ErrRecordNotFound) }

// Conn returns the underlying *sql.DB.
func (d *DB) Conn() (*sql.DB, error) { return d.DB.DB() }

// NewID returns a new time-ordered identifier (UUIDv7).
func NewID() string {
	return uuid.Must(uuid.NewV7()).String()
}

// UTC truncates t to the microsecond precision both engines keep, in UTC.
func UTC(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// Retryable reports whether PostgreSQL aborted a transaction for a deadlock
// or a serialization failure, which a retry resolves.
func Retryable(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && (pg.Code == "40P01" || pg.Code == "40001")
}

// Tx runs fn in a transaction, and again (up to three tries) when PostgreSQL
// aborts it for a deadlock: two transactions that lock the same rows in
// opposite order are resolved by running one after the other. What fn
// notified (Notify) reaches this process's subscribers after the commit.
func (d *DB) Tx(ctx context.Context, fn func(tx *gorm.DB) error) error {
	var err error
	for try := 0; try < 3; try++ {
		n := &notes{db: d}
		err = d.DB.WithContext(context.WithValue(ctx, notesKey{}, n)).Transaction(fn)
		if err == nil {
			d.deliver(n.list)
			return nil
		}
		if !Retryable(err) || ctx.Err() != nil {
			return err
		}
		time.Sleep(time.Duration(try+1) * 5 * time.Millisecond)
	}
	return err
}

// ScanJSON reads a JSON text column (string or bytes) into dst, for the
// sql.Scanner of a JSON-valued field; it reports false for NULL, leaving
// dst as it is. what names the field in errors.
func ScanJSON(v any, dst any, what string) (bool, error) {
	var raw []byte
	switch x := v.(type) {
	case string:
		raw = []byte(x)
	case []byte:
		raw = x
	case nil:
		return false, nil
	default:
		return false, fmt.Errorf("%s: cannot scan %T", what, v)
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return false, fmt.Errorf("%s: %w", what, err)
	}
	return true, nil
}

// Unavailable reports whether err says a dependency is away (the database
// or Redis cannot be reached, the server is shutting down or restarting)
// rather than that the call was wrong: the caller may try again shortly.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	var op *net.OpError
	var ce *pgconn.ConnectError
	var pg *pgconn.PgError
	switch {
	case errors.As(err, &ce), errors.As(err, &op), errors.Is(err, driver.ErrBadConn), errors.Is(err, context.DeadlineExceeded):
		return true
	case errors.As(err, &pg):
		// admin_shutdown, crash_shutdown, cannot_connect_now, and the
		// connection exceptions (08…)
		return pg.Code == "57P01" || pg.Code == "57P02" || pg.Code == "57P03" || strings.HasPrefix(pg.Code, "08")
	}
	msg := err.Error()
	return pgconn.Timeout(err) || strings.Contains(msg, "conn closed") || strings.Contains(msg, "connection refused") ||
		strings.Contains(msg, "redis: client is closed") || strings.Contains(msg, "broken pipe")
}
