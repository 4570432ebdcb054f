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
	return l.AllowAll(ctx, []string{key}, []int{limit})
}

// windowKey is the counter of key in the window starting at start. The key
// is the hash tag, so that both windows of one key live in one Redis Cluster
// slot (a script or MULTI over them stays possible); different keys spread
// over the cluster.
func (l *Limiter) windowKey(key string, start time.Time) string {
	return fmt.Sprintf("%s{%s}:%d", l.prefix, key, start.Unix())
}

// AllowAll counts one call for every key (with its limit) in one round trip
// and reports whether all are within their limits.
func (l *Limiter) AllowAll(ctx context.Context, keys []string, limits []int) (ok bool, retryAfter time.Duration, err error) {
	now := l.now()
	start := now.Truncate(l.window)
	pipe := l.rdb.Pipeline()
	incrs := make([]*redis.IntCmd, len(keys))
	prevs := make([]*redis.StringCmd, len(keys))
	for i, key := range keys {
		cur, prev := l.windowKey(key, start), l.windowKey(key, start.Add(-l.window))
		incrs[i] = pipe.Incr(ctx, cur)
		pipe.Expire(ctx, cur, 2*l.window+time.Second)
		prevs[i] = pipe.Get(ctx, prev)
	}
	// On a Redis Cluster the pipeline is split by node and sent to each at
	// once, still one round trip; a key's two windows share a slot.
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return true, 0, fmt.Errorf("rate limit %v: %w", keys, err)
	}
	for i := range keys {
		// Exec reports only the first failed command, which may be the
		// harmless redis.Nil of a missing previous window: look at each.
		if err := incrs[i].Err(); err != nil {
			return true, 0, fmt.Errorf("rate limit %v: %w", keys, err)
		}
		if err := prevs[i].Err(); err != nil && !errors.Is(err, redis.Nil) {
			return true, 0, fmt.Errorf("rate limit %v: %w", keys, err)
		}
	}
	overlap := 1 - float64(now.Sub(start))/float64(l.window)
	for i := range keys {
		prevCount, _ := prevs[i].Int64()
		if float64(incrs[i].Val())+float64(prevCount)*overlap > float64(limits[i]) {
			return false, start.Add(l.window).Sub(now), nil
		}
	}
	return true, 0, nil
}
