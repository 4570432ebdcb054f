package ratelimit

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/onsite/onsite/internal/dbtest"
)

func TestSlidingWindow(t *testing.T) {
	t.Parallel()
	rdb := testRedis(t)
	l := NewWindow(rdb, fmt.Sprintf("test%d:", time.Now().UnixNano()), time.Minute)
	at := time.Date(2026, 11, 27, 10, 0, 50, 0, time.UTC) // 10 s before a window ends
	l.now = func() time.Time { return at }
	ctx := context.Background()
	for i := range 3 {
		if ok, _, err := l.Allow(ctx, "k", 3); !ok || err != nil {
			t.Fatalf("call %d refused: %v", i, err)
		}
	}
	// Refused 10 s before the window ends; the 4 calls then weigh in the
	// next window, fading over it: one more fits once 4×(1−e/60 s)+1 ≤ 3,
	// 30 s into it.
	if ok, retry, _ := l.Allow(ctx, "k", 3); ok || retry != 40*time.Second {
		t.Fatalf("4th call: ok %v retry %v, want 40s", ok, retry)
	}
	// just after the window turns, the last window still counts
	at = at.Add(15 * time.Second)
	if ok, _, _ := l.Allow(ctx, "k", 3); ok {
		t.Fatal("a burst at the window's edge got through twice")
	}
	// a window later it is free again
	at = at.Add(time.Minute)
	if ok, _, _ := l.Allow(ctx, "k", 3); !ok {
		t.Fatal("still refused a window later")
	}
	if ok, _, _ := l.Allow(ctx, "other", 3); !ok {
		t.Fatal("another key was refused")
	}
}

// TestLocalShare runs two processes' limiters on one Redis counter, each
// spending its share of the headroom locally: together they let exactly the
// limit through before Redis refuses (a refusal only ever comes from the
// shared count), far fewer calls ask Redis, and what one let through locally
// is counted on its next round trip.
func TestLocalShare(t *testing.T) {
	t.Parallel()
	rdb := testRedis(t)
	tests := []struct {
		name      string
		processes int
		limit     int
		calls     int
	}{
		{"two processes near the limit", 2, 100, 300},
		{"four processes, a roomy limit", 4, 600, 400},
		{"limit smaller than the shares", 8, 5, 40},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := fmt.Sprintf("share%d:", time.Now().UnixNano())
			at := time.Date(2026, 11, 27, 10, 0, 5, 0, time.UTC)
			var procs []*Limiter
			for range tt.processes {
				l := NewWindow(rdb, prefix, time.Minute).WithLocalShare(tt.processes)
				l.now = func() time.Time { return at }
				procs = append(procs, l)
			}
			ctx := context.Background()
			allowed := 0
			var askedBefore int64 // round trips while under the limit
			for i := range tt.calls {
				ok, _, err := procs[i%len(procs)].Allow(ctx, "k", tt.limit)
				if err != nil {
					t.Fatal(err)
				}
				if ok {
					allowed++
				}
				if i+1 == min(tt.calls, tt.limit) {
					for _, l := range procs {
						askedBefore += l.asked.Load()
					}
				}
			}
			if want := min(tt.calls, tt.limit); allowed != want {
				t.Fatalf("%d calls let through, want %d", allowed, want)
			}
			if under := min(tt.calls, tt.limit); under >= 100 && askedBefore*3 > int64(under) {
				t.Fatalf("%d of the %d calls under the limit asked Redis", askedBefore, under)
			}
			// Every call let through locally is counted once the process
			// asks again.
			for _, l := range procs {
				if x := l.local.keys["k"]; x != nil {
					x.left = 0
				}
				if _, _, err := l.Allow(ctx, "k", 1<<30); err != nil {
					t.Fatal(err)
				}
			}
			n, err := rdb.Get(ctx, procs[0].windowKey("k", at.Truncate(time.Minute))).Int()
			if err != nil {
				t.Fatal(err)
			}
			if want := tt.calls + len(procs); n != want {
				t.Fatalf("Redis counted %d calls, want %d", n, want)
			}
		})
	}
}

// TestLocalShareAddressAndCallers: calls from many callers behind one
// address (the per-address key busy, each caller's key new, so every call
// asks Redis for its caller while the address spends its allowance): the
// address's limit still holds exactly, and every call is counted against it.
func TestLocalShareAddressAndCallers(t *testing.T) {
	t.Parallel()
	rdb := testRedis(t)
	prefix := fmt.Sprintf("callers%d:", time.Now().UnixNano())
	at := time.Date(2026, 11, 27, 10, 0, 5, 0, time.UTC)
	l := NewWindow(rdb, prefix, time.Minute).WithLocalShare(1)
	l.now = func() time.Time { return at }
	ctx := context.Background()
	const addressLimit, calls = 300, 400
	allowed := 0
	for i := range calls {
		ok, _, err := l.AllowAll(ctx, []string{"ip", fmt.Sprint("caller", i)}, []int{addressLimit, 600})
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			allowed++
		}
	}
	if allowed != addressLimit {
		t.Fatalf("%d calls let through, want the address's %d", allowed, addressLimit)
	}
	if x := l.local.keys["ip"]; x != nil {
		x.left = 0
	}
	if _, _, err := l.AllowAll(ctx, []string{"ip"}, []int{1 << 30}); err != nil {
		t.Fatal(err)
	}
	n, err := rdb.Get(ctx, l.windowKey("ip", at.Truncate(time.Minute))).Int()
	if err != nil || n != calls+1 {
		t.Fatalf("the address counted %d calls (%v), want %d", n, err, calls+1)
	}
}

// testRedis is a client of the tests' Redis database for this package.
func testRedis(t *testing.T) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(dbtest.RedisURL(dbtest.RedisDBAPI))
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}
