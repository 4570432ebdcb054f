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
	opt, err := redis.ParseURL(dbtest.RedisURL(dbtest.RedisDBAPI))
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { _ = rdb.Close() })
	l := NewWindow(rdb, fmt.Sprintf("test%d:", time.Now().UnixNano()), time.Minute)
	at := time.Date(2026, 11, 27, 10, 0, 50, 0, time.UTC) // 10 s before a window ends
	l.now = func() time.Time { return at }
	ctx := context.Background()
	for i := range 3 {
		if ok, _, err := l.Allow(ctx, "k", 3); !ok || err != nil {
			t.Fatalf("call %d refused: %v", i, err)
		}
	}
	if ok, retry, _ := l.Allow(ctx, "k", 3); ok || retry != 10*time.Second {
		t.Fatalf("4th call: ok %v retry %v", ok, retry)
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
