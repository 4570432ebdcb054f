// Package lease gives one process at a time a named, expiring lease held in
// the database (the leases table), and a fencing token that lets a write
// transaction refuse work done under a lease that has since been lost.
//
// A lease is acquired and renewed by one conditional UPDATE (the row is
// mine, or it has expired) and created by an INSERT when the row is missing;
// both engines (PostgreSQL and SQLite) honour these, so no process-local lock
// is involved. Every change of owner raises the token by one. Times come from
// the store's clock (the process's wall clock): processes sharing a lease
// must agree on the time to well within its TTL (NTP does).
package lease

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/onsite/onsite/internal/db"
)

// ErrLost is returned by Fence.Check when the lease has a new owner, a new
// token, or has expired: the caller must roll its transaction back.
var ErrLost = errors.New("lease lost: expired or taken over by another process")

// Store acquires, renews and releases leases.
type Store struct {
	db  *db.DB
	now func() time.Time
}

// Option tunes a Store.
type Option func(*Store)

// WithClock sets the clock the store compares expiry times with (tests).
func WithClock(now func() time.Time) Option { return func(s *Store) { s.now = now } }

// NewStore returns a lease store over d.
func NewStore(d *db.DB, opts ...Option) *Store {
	s := &Store{db: d, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Lease is a lease as it stood when it was acquired or renewed.
type Lease struct {
	Name      string
	Owner     string
	Token     int64
	ExpiresAt time.Time

	now func() time.Time
}

// Fence returns the fence that checks this lease inside a transaction.
func (l Lease) Fence() Fence { return Fence{Name: l.Name, Owner: l.Owner, Token: l.Token, now: l.now} }

// Fence names one tenure of a lease: its name, its owner and the token it
// was granted. The zero Fence never passes Check.
type Fence struct {
	Name  string
	Owner string
	Token int64

	now func() time.Time
}

// IsZero reports whether f names no lease.
func (f Fence) IsZero() bool { return f.Name == "" && f.Owner == "" && f.Token == 0 }

// String names the fence in logs and errors.
func (f Fence) String() string {
	return fmt.Sprintf("%s (owner %s, token %d)", f.Name, f.Owner, f.Token)
}

// Check verifies, inside the caller's write transaction tx, that the lease
// still has this owner and token and has not expired; otherwise it returns
// an error that errors.Is ErrLost, and the caller must roll back.
//
// On PostgreSQL the row is read FOR SHARE, so from a passing Check until tx
// ends no other process can take the lease over: its conditional UPDATE
// waits, and the writes of tx land before the new owner's tenure begins.
// SQLite runs one write transaction at a time (Onsite begins them IMMEDIATE),
// which gives the same order. Outside a transaction Check proves nothing
// about the writes that follow it.
func (f Fence) Check(tx *gorm.DB) error {
	if f.IsZero() {
		return fmt.Errorf("lease: no fence given: %w", ErrLost)
	}
	now := time.Now
	if f.now != nil {
		now = f.now
	}
	q := "SELECT token FROM leases WHERE name = ? AND owner = ? AND token = ? AND expires_at > ?"
	if tx.Dialector.Name() == "postgres" {
		q += " FOR SHARE"
	}
	var tokens []int64
	if err := tx.Raw(q, f.Name, f.Owner, f.Token, db.UTC(now())).Scan(&tokens).Error; err != nil {
		return fmt.Errorf("lease %s: check: %w", f, err)
	}
	if len(tokens) != 1 {
		return fmt.Errorf("lease %s: %w", f, ErrLost)
	}
	return nil
}

type row struct {
	Name      string
	Owner     string
	Token     int64
	ExpiresAt time.Time
}

func (s *Store) lease(r row) Lease {
	return Lease{Name: r.Name, Owner: r.Owner, Token: r.Token, ExpiresAt: r.ExpiresAt.UTC(), now: s.now}
}

// Acquire gives the lease name to owner for ttl from now: it renews the
// lease when owner holds it (the token stays), takes it over when it has
// expired (the token goes up by one), and creates it when it does not exist
// (token 1). ok is false, with no error, while another owner holds it.
func (s *Store) Acquire(ctx context.Context, name, owner string, ttl time.Duration) (l Lease, ok bool, err error) {
	if name == "" || owner == "" {
		return Lease{}, false, errors.New("lease: acquire needs a name and an owner")
	}
	if ttl <= 0 {
		return Lease{}, false, fmt.Errorf("lease %s: ttl %v must be positive", name, ttl)
	}
	for try := 0; try < 2; try++ {
		now := db.UTC(s.now())
		expires := db.UTC(now.Add(ttl))
		// SET expressions see the row as it was, so the CASE compares the
		// previous owner.
		var rows []row
		err := s.db.WithContext(ctx).Raw(`UPDATE leases
			SET owner = ?, token = CASE WHEN owner = ? THEN token ELSE token + 1 END, expires_at = ?, updated_at = ?
			WHERE name = ? AND (owner = ? OR expires_at <= ?)
			RETURNING name, owner, token, expires_at`,
			owner, owner, expires, now, name, owner, now).Scan(&rows).Error
		if err != nil {
			return Lease{}, false, fmt.Errorf("lease %s: renew: %w", name, err)
		}
		if len(rows) == 1 {
			return s.lease(rows[0]), true, nil
		}
		// Not ours and not expired, or missing: create it. Two processes
		// creating it at once collide on the primary key; the loser tries
		// the update again, which then tells whether the winner holds it.
		res := s.db.WithContext(ctx).Exec(`INSERT INTO leases (name, owner, token, expires_at, updated_at)
			VALUES (?, ?, 1, ?, ?) ON CONFLICT (name) DO NOTHING`, name, owner, expires, now)
		if res.Error != nil && !db.IsDuplicate(res.Error) {
			return Lease{}, false, fmt.Errorf("lease %s: create: %w", name, res.Error)
		}
		if res.Error == nil && res.RowsAffected == 1 {
			return s.lease(row{Name: name, Owner: owner, Token: 1, ExpiresAt: expires}), true, nil
		}
	}
	return Lease{}, false, nil
}

// Release ends owner's tenure now, so another process may take the lease
// over at once. Releasing a lease no longer held does nothing.
func (s *Store) Release(ctx context.Context, f Fence) error {
	return s.ReleaseAt(ctx, f, s.now())
}

// ReleaseAt shortens owner's tenure to end at at (never lengthens it): a
// periodic runner that stops in the middle of a window hands over at the
// next window, so the window it already ran is not run again elsewhere.
func (s *Store) ReleaseAt(ctx context.Context, f Fence, at time.Time) error {
	at = db.UTC(at)
	err := s.db.WithContext(ctx).Exec(`UPDATE leases SET expires_at = ?, updated_at = ?
		WHERE name = ? AND owner = ? AND token = ? AND expires_at > ?`,
		at, db.UTC(s.now()), f.Name, f.Owner, f.Token, at).Error
	if err != nil {
		return fmt.Errorf("lease %s: release: %w", f, err)
	}
	return nil
}

// Get returns the lease name as stored (expired or not); ok is false when
// there is no such lease.
func (s *Store) Get(ctx context.Context, name string) (l Lease, ok bool, err error) {
	var rows []row
	if err := s.db.WithContext(ctx).Raw("SELECT name, owner, token, expires_at FROM leases WHERE name = ?", name).Scan(&rows).Error; err != nil {
		return Lease{}, false, fmt.Errorf("lease %s: get: %w", name, err)
	}
	if len(rows) == 0 {
		return Lease{}, false, nil
	}
	return s.lease(rows[0]), true, nil
}
