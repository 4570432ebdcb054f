// Package idempotency makes state-changing calls safe to resend: the first
// answer to an Idempotency-Key is kept (in Redis, for a day) and a resend
// with the same key gets it again without running the call twice.
package idempotency

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/redis/go-redis/v9"

	"github.com/onsite/onsite/internal/auth"
	"github.com/onsite/onsite/internal/errs"
)

// Header is the request header clients send.
const Header = "Idempotency-Key"

// Store keeps answers by key. Every command touches one key (SETNX, GET,
// SET, DEL), never two at once, so it runs as is on a Redis Cluster: each
// key lives on the node owning its slot and needs no hash tag.
type Store struct {
	rdb    redis.UniversalClient
	prefix string
	ttl    time.Duration
}

// NewStore returns a store; prefix keeps deployments apart.
func NewStore(rdb redis.UniversalClient, prefix string) *Store {
	return &Store{rdb: rdb, prefix: prefix + "idem:", ttl: 24 * time.Hour}
}

type record struct {
	BodyHash string `json:"body_hash"`
	Done     bool   `json:"done"`
	Status   int    `json:"status"`
	Type     string `json:"type,omitempty"`
	Body     []byte `json:"body,omitempty"`
}

// Middleware replays the first answer to a key (per caller, method and path).
// A call still running under the key answers 409; the same key with another
// body answers 409. Server errors are not kept, so they can be retried.
func (s *Store) Middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		key := c.Request().Header.Get(Header)
		if key == "" {
			return next(c)
		}
		if len(key) > 200 {
			return errs.InvalidField(Header, "Idempotency-Key is longer than 200 characters")
		}
		body, err := io.ReadAll(c.Request().Body)
		if err != nil {
			return errs.E(errs.Malformed, "could not read the request body")
		}
		c.Request().Body = io.NopCloser(bytes.NewReader(body))
		sum := sha256.Sum256(body)
		hash := hex.EncodeToString(sum[:])
		p, _ := auth.FromContext(c.Request().Context())
		k := s.prefix + string(p.Role) + ":" + p.Subject + ":" + c.Request().Method + ":" + c.Request().URL.Path + ":" + key
		ctx := c.Request().Context()
		placeholder, _ := json.Marshal(record{BodyHash: hash})
		ok, err := s.rdb.SetNX(ctx, k, placeholder, s.ttl).Result()
		if err != nil {
			c.Logger().Warn(err) // without Redis, run the call as if no key was sent
			return next(c)
		}
		if !ok {
			// Another call holds the key: wait for its answer (a resend
			// usually races the original) and give the same one.
			prev, err := s.await(ctx, k)
			if err != nil {
				return err
			}
			if prev.BodyHash != hash {
				return errs.ConflictReason("idempotency_key_reused", "this Idempotency-Key was already used with a different request body")
			}
			c.Response().Header().Set("Idempotent-Replayed", "true")
			return c.Blob(prev.Status, prev.Type, prev.Body)
		}
		rec := &recorder{ResponseWriter: c.Response().Writer}
		c.Response().Writer = rec
		err = next(c)
		if err != nil {
			c.Error(err) // write the error answer now, so it is recorded too
		}
		status := c.Response().Status
		if status >= 500 || status == 0 {
			_ = s.rdb.Del(ctx, k).Err()
			return nil
		}
		done, _ := json.Marshal(record{BodyHash: hash, Done: true, Status: status, Type: c.Response().Header().Get(echo.HeaderContentType), Body: rec.buf.Bytes()})
		if err := s.rdb.Set(ctx, k, done, s.ttl).Err(); err != nil {
			c.Logger().Warn(err)
		}
		return nil
	}
}

// await reads the record under k until its call is done (at most 10 s).
func (s *Store) await(ctx context.Context, k string) (record, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		var prev record
		raw, err := s.rdb.Get(ctx, k).Bytes()
		if err == nil && json.Unmarshal(raw, &prev) == nil && (prev.Done || prev.BodyHash == "") {
			return prev, nil
		}
		if err == nil && json.Unmarshal(raw, &prev) == nil && time.Now().After(deadline) {
			return prev, errs.ConflictReason("idempotency_key_in_use", "a call with this Idempotency-Key is still running; retry shortly")
		}
		if errors.Is(err, redis.Nil) || time.Now().After(deadline) {
			// The first call failed (its key was released) or Redis is
			// away: tell the client to try again.
			return prev, errs.ConflictReason("idempotency_key_in_use", "a call with this Idempotency-Key did not finish; retry")
		}
		select {
		case <-ctx.Done():
			return prev, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

type recorder struct {
	http.ResponseWriter
	buf bytes.Buffer
}

func (r *recorder) Write(b []byte) (int, error) {
	r.buf.Write(b)
	return r.ResponseWriter.Write(b)
}
