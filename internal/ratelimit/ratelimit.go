// Package ratelimit counts calls per key in fixed one-minute windows in
// Redis, so every process shares the same counts.
package ratelimit

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Limiter allows up to a number of calls per key and window.
type Limiter struct {
	rdb    redis.UniversalClient
	prefix string
	window time.Duration
	now    func() time.Time
}

// New returns a limiter with one-minute windows.
func New(rdb redis.UniversalClient, prefix string) *Limiter {
	return &Limiter{rdb: rdb, prefix: prefix + "rl:", window: time.Minute, now: time.Now}
}

// Allow counts one call for key and reports whether it is within limit; when
// it is not, retryAfter says when the window ends. A Redis error is returned
// with ok true: the caller decides whether to fail open.
func (l *Limiter) Allow(ctx context.Context, key string, limit int) (ok bool, retryAfter time.Duration, err error) {
	now := l.now()
	start := now.Truncate(l.window)
	k := fmt.Sprintf("%s%s:%d", l.prefix, key, start.Unix())
	pipe := l.rdb.Pipeline()
	incr := pipe.Incr(ctx, k)
	pipe.Expire(ctx, k, l.window+time.Second)
	if _, err := pipe.Exec(ctx); err != nil {
		return true, 0, fmt.Errorf("rate limit %s: %w", key, err)
	}
	if incr.Val() > int64(limit) {
		return false, start.Add(l.window).Sub(now), nil
	}
	return true, 0, nil
}
