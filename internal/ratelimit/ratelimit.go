// Package ratelimit counts calls per key in fixed one-minute windows in
// Redis, so every process shares the same counts.
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Limiter allows up to a number of calls per key and window.
type Limiter struct {
	rdb    redis.UniversalClient
	prefix string
	window time.Duration
	now    func() time.Time
	local  *allowances  // nil: every call asks Redis
	asked  atomic.Int64 // round trips to Redis (tests)
}

// WithLocalShare lets each process spend part of a key's headroom without
// asking Redis: after a count, with est counted against limit L, it may let
// (L − est) / (2·processes) more calls through on its own and adds them to
// the count on its next round trip. With at most that many processes, the
// calls let through stay under L plus what other processes counted since
// a grant (at worst half the headroom, in a window where several
// processes hold grants and others fill it); in the common case of a key
// far from its limit, most calls cost no round trip. A refusal always comes
// from Redis. Allowances are dropped when the window turns (their calls go
// uncounted in the previous window's weight) and when they would hold more
// than maxLocalKeys keys.
func (l *Limiter) WithLocalShare(processes int) *Limiter {
	if processes > 0 {
		l.local = &allowances{processes: processes, keys: map[string]*allowance{}}
	}
	return l
}

// maxLocalKeys bounds the keys a process holds allowances for in a window.
const maxLocalKeys = 200_000

// allowances are the calls a process may still let through per key in the
// current window, and those it let through but has not counted in Redis.
type allowances struct {
	mu        sync.Mutex
	processes int
	start     time.Time
	keys      map[string]*allowance
}

type allowance struct{ left, unsent int }

// take lets one call through on the allowance of every key that has one
// left and returns the keys (and limits) that have none: those must ask.
func (a *allowances) take(keys []string, limits []int, start time.Time) (ask []string, askLimits []int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.start.Equal(start) {
		a.start, a.keys = start, map[string]*allowance{}
		return keys, limits
	}
	for i, k := range keys {
		if x := a.keys[k]; x != nil && x.left > 0 {
			x.left--
			x.unsent++
			continue
		}
		ask, askLimits = append(ask, k), append(askLimits, limits[i])
	}
	return ask, askLimits
}

// unsent returns, and forgets, the calls let through but not yet counted.
func (a *allowances) unsent(keys []string, start time.Time) []int {
	out := make([]int, len(keys))
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.start.Equal(start) {
		return out
	}
	for i, k := range keys {
		if x := a.keys[k]; x != nil {
			out[i], x.unsent = x.unsent, 0
		}
	}
	return out
}

// putBack returns calls that could not be counted (Redis was away).
func (a *allowances) putBack(keys []string, start time.Time, n []int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.start.Equal(start) {
		return
	}
	for i, k := range keys {
		if x := a.keys[k]; x != nil {
			x.unsent += n[i]
		}
	}
}

// grant sets each key's allowance from its count est against limit.
func (a *allowances) grant(keys []string, limits []int, est []float64, start time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.start.Equal(start) {
		a.start, a.keys = start, map[string]*allowance{}
	}
	for i, k := range keys {
		left := int(math.Floor((float64(limits[i]) - est[i]) / float64(2*a.processes)))
		x := a.keys[k]
		if x == nil {
			if left <= 0 || len(a.keys) >= maxLocalKeys {
				continue
			}
			x = &allowance{}
			a.keys[k] = x
		}
		x.left = max(left, 0)
	}
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
	ask, askLimits, add := keys, limits, make([]int, len(keys))
	if l.local != nil {
		// Keys with an allowance left spend it; only the others ask Redis
		// (a caller's first call of a window asks for the caller, not for
		// their busy address).
		ask, askLimits = l.local.take(keys, limits, start)
		if len(ask) == 0 {
			return true, 0, nil
		}
		add = l.local.unsent(ask, start)
	}
	est, err := l.count(ctx, ask, add, now, start)
	if err != nil {
		if l.local != nil {
			l.local.putBack(ask, start, add)
		}
		return true, 0, err
	}
	retry := time.Duration(0)
	for i := range ask {
		if est[i] > float64(askLimits[i]) {
			retry = max(retry, l.retryAfter(est[i], askLimits[i], now, start))
		}
	}
	if retry > 0 {
		return false, retry, nil
	}
	if l.local != nil {
		l.local.grant(ask, askLimits, est, start)
	}
	return true, 0, nil
}

// retryAfter is how long until a key counted est against limit allows a
// call (if no more come meanwhile): past this window's end, while the
// window's count still weighs in the next one (the sliding window lets it
// fade linearly over a window), it must fade until one more call fits.
func (l *Limiter) retryAfter(est float64, limit int, now, start time.Time) time.Duration {
	fade := max(0, 1-float64(limit-1)/est) // the share of the next window it takes to fade
	return start.Add(l.window).Sub(now) + time.Duration(fade*float64(l.window))
}

// count adds this call (and add[i] earlier ones) to each key's window in
// one round trip and returns each key's sliding-window count.
func (l *Limiter) count(ctx context.Context, keys []string, add []int, now, start time.Time) ([]float64, error) {
	l.asked.Add(1)
	pipe := l.rdb.Pipeline()
	incrs := make([]*redis.IntCmd, len(keys))
	prevs := make([]*redis.StringCmd, len(keys))
	for i, key := range keys {
		cur, prev := l.windowKey(key, start), l.windowKey(key, start.Add(-l.window))
		incrs[i] = pipe.IncrBy(ctx, cur, int64(1+add[i]))
		pipe.Expire(ctx, cur, 2*l.window+time.Second)
		prevs[i] = pipe.Get(ctx, prev)
	}
	// On a Redis Cluster the pipeline is split by node and sent to each at
	// once, still one round trip; a key's two windows share a slot.
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("rate limit %v: %w", keys, err)
	}
	for i := range keys {
		// Exec reports only the first failed command, which may be the
		// harmless redis.Nil of a missing previous window: look at each.
		if err := incrs[i].Err(); err != nil {
			return nil, fmt.Errorf("rate limit %v: %w", keys, err)
		}
		if err := prevs[i].Err(); err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("rate limit %v: %w", keys, err)
		}
	}
	overlap := 1 - float64(now.Sub(start))/float64(l.window)
	est := make([]float64, len(keys))
	for i := range keys {
		prevCount, _ := prevs[i].Int64()
		est[i] = float64(incrs[i].Val()) + float64(prevCount)*overlap
	}
	return est, nil
}
