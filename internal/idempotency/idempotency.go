// Package idempotency makes state-changing calls safe to resend: the first
// answer to an Idempotency-Key is kept in the database (PostgreSQL or
// SQLite) for a day, and a resend with the same key gets it again without
// the call running twice. The database decides which call runs (the first
// to insert the key's row), so losing Redis never turns one key into two
// resources. The HTTP side is internal/httpx's Idempotent middleware; this
// package knows no HTTP framework, so domain packages can check keys too.
package idempotency

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode"
	"unicode/utf8"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/onsite/onsite/internal/db"
	"github.com/onsite/onsite/internal/errs"
)

// Header is the request header clients send.
const Header = "Idempotency-Key"

// MaxKeyLen is the longest key, in characters.
const MaxKeyLen = 200

// TTL is how long an answer is kept.
const TTL = 24 * time.Hour

// Lease is how long a call may run under its key before a resend may take
// the key over (the process running it is presumed dead).
const Lease = time.Minute

// waitFor is how long a resend waits for the answer of a call still running.
const waitFor = 10 * time.Second

// CheckKey says whether key can be an Idempotency-Key: 1 to 200 characters
// of UTF-8 without control characters. A bad key is a malformed call (400),
// never a database error.
func CheckKey(key string) error {
	switch {
	case key == "":
		return errs.MalformedField(Header, "Idempotency-Key is empty")
	case !utf8.ValidString(key):
		return errs.MalformedField(Header, "Idempotency-Key is not valid UTF-8")
	case utf8.RuneCountInString(key) > MaxKeyLen:
		return errs.MalformedField(Header, "Idempotency-Key is longer than %d characters", MaxKeyLen)
	}
	for _, r := range key {
		if unicode.IsControl(r) {
			return errs.MalformedField(Header, "Idempotency-Key contains a control character")
		}
	}
	return nil
}

// Scope is what a key is unique within: the caller (role and subject), the
// method and the path, and the key itself.
type Scope struct {
	Role    string
	Subject string
	Method  string
	Path    string
	Key     string
}

// Answer is a kept answer.
type Answer struct {
	Status      int
	ContentType string
	Body        []byte
}

// Store keeps answers in the idempotency_keys table.
type Store struct {
	db  *db.DB
	now func() time.Time
}

// NewStore returns a store over d; now is the clock (time.Now in
// production).
func NewStore(d *db.DB, now func() time.Time) *Store {
	return &Store{db: d, now: func() time.Time { return db.UTC(now()) }}
}

// Row states.
const (
	stateRunning = "running"
	stateDone    = "done"
)

type record struct {
	Role        string `gorm:"primaryKey"`
	Subject     string `gorm:"primaryKey"`
	Method      string `gorm:"primaryKey"`
	Path        string `gorm:"primaryKey"`
	IdemKey     string `gorm:"primaryKey"`
	BodyHash    string
	State       string
	Claim       string
	Status      int
	ContentType string
	Body        []byte
	CreatedAt   time.Time
}

func (record) TableName() string { return "idempotency_keys" }

func (s Scope) where(q *gorm.DB) *gorm.DB {
	return q.Where("role = ? AND subject = ? AND method = ? AND path = ? AND idem_key = ?", s.Role, s.Subject, s.Method, s.Path, s.Key)
}

// Claim is the right to run a call under a key; the caller ends it with
// Finish (an answer to keep) or Release (nothing kept: the key may be used
// again).
type Claim struct {
	store *Store
	scope Scope
	token string
}

// ErrReused is the same key sent with a different body.
var ErrReused = errs.ConflictReason("idempotency_key_reused", "this Idempotency-Key was already used with a different request body")

// Begin claims scope's key for a call whose body hashes to bodyHash. It
// returns either a claim (run the call, then Finish or Release it) or the
// answer kept for the key (replay it). The same key with another body is
// ErrReused; a call still running under the key is waited for (up to 10 s),
// and one that ends without an answer, or runs on, is a conflict
// (idempotency_key_in_use) the client retries.
func (s *Store) Begin(ctx context.Context, scope Scope, bodyHash string) (*Claim, *Answer, error) {
	if err := CheckKey(scope.Key); err != nil {
		return nil, nil, err
	}
	deadline := time.Now().Add(waitFor)
	for {
		if time.Now().After(deadline) {
			return nil, nil, errs.ConflictReason("idempotency_key_in_use", "a call with this Idempotency-Key is still running; retry shortly")
		}
		now := s.now()
		token := db.NewID()
		rec := record{Role: scope.Role, Subject: scope.Subject, Method: scope.Method, Path: scope.Path, IdemKey: scope.Key,
			BodyHash: bodyHash, State: stateRunning, Claim: token, CreatedAt: now}
		res := s.db.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&rec)
		if res.Error != nil {
			return nil, nil, fmt.Errorf("claim idempotency key: %w", res.Error)
		}
		if res.RowsAffected == 1 {
			return &Claim{store: s, scope: scope, token: token}, nil, nil
		}
		var prev record
		err := scope.where(s.db.WithContext(ctx)).First(&prev).Error
		if db.IsNotFound(err) {
			continue // released or expired meanwhile: claim again
		}
		if err != nil {
			return nil, nil, fmt.Errorf("read idempotency key: %w", err)
		}
		switch {
		case !prev.CreatedAt.After(now.Add(-TTL)):
			// Kept long enough: the key is free again.
			if err := scope.where(s.db.WithContext(ctx)).Where("claim = ?", prev.Claim).Delete(&record{}).Error; err != nil {
				return nil, nil, fmt.Errorf("expire idempotency key: %w", err)
			}
			continue
		case prev.BodyHash != bodyHash:
			return nil, nil, ErrReused
		case prev.State == stateDone:
			return nil, &Answer{Status: prev.Status, ContentType: prev.ContentType, Body: prev.Body}, nil
		case !prev.CreatedAt.After(now.Add(-Lease)):
			// The call has run past its lease: its process is gone. Take
			// the key over (one resend wins the conditional update).
			res := scope.where(s.db.WithContext(ctx).Model(&record{})).Where("claim = ? AND state = ?", prev.Claim, stateRunning).
				Updates(map[string]any{"claim": token, "created_at": now})
			if res.Error != nil {
				return nil, nil, fmt.Errorf("take over idempotency key: %w", res.Error)
			}
			if res.RowsAffected == 1 {
				return &Claim{store: s, scope: scope, token: token}, nil, nil
			}
			continue
		}
		// Running: a resend usually races the original; wait for its answer.
		ans, err := s.await(ctx, scope, prev.Claim, deadline)
		if err != nil || ans != nil {
			return nil, ans, err
		}
	}
}

// await polls the key's row until the call holding claim is done; it
// returns no answer and no error when the key was taken over meanwhile
// (Begin then looks again).
func (s *Store) await(ctx context.Context, scope Scope, claim string, deadline time.Time) (*Answer, error) {
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(25 * time.Millisecond):
		}
		var prev record
		err := scope.where(s.db.WithContext(ctx)).First(&prev).Error
		switch {
		case db.IsNotFound(err):
			// The first call failed (its key was released): the client may
			// send it again.
			return nil, errs.ConflictReason("idempotency_key_in_use", "a call with this Idempotency-Key did not finish; retry")
		case err != nil:
			return nil, fmt.Errorf("read idempotency key: %w", err)
		case prev.State == stateDone:
			return &Answer{Status: prev.Status, ContentType: prev.ContentType, Body: prev.Body}, nil
		case prev.Claim != claim:
			return nil, nil
		case time.Now().After(deadline):
			return nil, errs.ConflictReason("idempotency_key_in_use", "a call with this Idempotency-Key is still running; retry shortly")
		}
	}
}

// Finish keeps the call's answer for resends.
func (c *Claim) Finish(ctx context.Context, a Answer) error {
	body := a.Body
	if body == nil {
		body = []byte{}
	}
	res := c.scope.where(c.store.db.WithContext(ctx).Model(&record{})).Where("claim = ? AND state = ?", c.token, stateRunning).
		Updates(map[string]any{"state": stateDone, "status": a.Status, "content_type": a.ContentType, "body": body})
	if res.Error != nil {
		return fmt.Errorf("keep idempotent answer: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return errors.New("keep idempotent answer: the key was taken over")
	}
	return nil
}

// Release frees the key without keeping an answer (a server error: the
// client may retry under the same key).
func (c *Claim) Release(ctx context.Context) error {
	err := c.scope.where(c.store.db.WithContext(ctx)).Where("claim = ? AND state = ?", c.token, stateRunning).Delete(&record{}).Error
	if err != nil {
		return fmt.Errorf("release idempotency key: %w", err)
	}
	return nil
}

// Expire deletes the answers older than TTL and returns how many; the
// periodic housekeeping calls it.
func (s *Store) Expire(ctx context.Context) (int64, error) {
	res := s.db.WithContext(ctx).Where("created_at <= ?", s.now().Add(-TTL)).Delete(&record{})
	if res.Error != nil {
		return 0, fmt.Errorf("expire idempotency keys: %w", res.Error)
	}
	return res.RowsAffected, nil
}
