// Package ratelimit counts calls per key in fixed one-minute windows in
// Redis, so every process shares the same counts.
package ratelimit

import (
	"context"
	"errors"
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
	return NewWindow(rdb, prefix, time.Minute)
}

// NewWindow returns a limiter with windows of the given length.
func NewWindow(rdb redis.UniversalClient, prefix string, window time.Duration) *Limiter {
	return &Limiter{rdb: rdb, prefix: prefix + "rl:", window: window, now: time.Now}
}

// Allow counts one call for key and reports whether it is within limit; when
// it is not, retryAfter says when to try again. It weighs the previous
// window by how much of it still overlaps the last window-length of time (a
// sliding window), so a burst at a window's edge is not let through twice. A
// Redis error is returned with ok true: the caller decides whether to fail
// open.
func (l *Limiter) Allow(ctx context.Context, key string, limit int) (ok bool, retryAfter time.Duration, err error) {
	now := l.now()
	start := now.Truncate(l.window)
	cur := fmt.Sprintf("%s%s:%d", l.prefix, key, start.Unix())
	prev := fmt.Sprintf("%s%s:%d", l.prefix, key, start.Add(-l.window).Unix())
	pipe := l.rdb.Pipeline()
	incr := pipe.Incr(ctx, cur)
	pipe.Expire(ctx, cur, 2*l.window+time.Second)
	before := pipe.Get(ctx, prev)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return true, 0, fmt.Errorf("rate limit %s: %w", key, err)
	}
	prevCount, _ := before.Int64()
	overlap := 1 - float64(now.Sub(start))/float64(l.window)
	if float64(incr.Val())+float64(prevCount)*overlap > float64(limit) {
		return false, start.Add(l.window).Sub(now), nil
	}
	return true, 0, nil
}
