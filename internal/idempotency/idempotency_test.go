package idempotency_test

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/onsite/onsite/internal/db"
	"github.com/onsite/onsite/internal/dbtest"
	"github.com/onsite/onsite/internal/errs"
	"github.com/onsite/onsite/internal/idempotency"
)

func TestCheckKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		key  string
		ok   bool
	}{
		{"uuid", "3f0c2a9e-7d1b-4a55-9a65-2f1d8c0b6e11", true},
		{"200 characters", strings.Repeat("k", 200), true},
		{"200 letters of two bytes", strings.Repeat("é", 200), true},
		{"spaces and punctuation", "step a/1: ok", true},
		{"empty", "", false},
		{"201 characters", strings.Repeat("k", 201), false},
		{"not UTF-8", "key-\xff\xfe", false},
		{"NUL", "key\x00", false},
		{"tab", "key\tx", false},
		{"newline", "key\nx", false},
		{"DEL", "key\x7f", false},
		{"C1 control", "key\u0085", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := idempotency.CheckKey(tc.key)
			if tc.ok != (err == nil) {
				t.Fatalf("CheckKey(%q) = %v", tc.key, err)
			}
			if err != nil {
				e, ok := errs.As(err)
				if !ok || e.Code != errs.Malformed || e.Field != idempotency.Header {
					t.Fatalf("error %v, want malformed on %s", err, idempotency.Header)
				}
			}
		})
	}
}

// clock is a settable clock.
type clock struct{ offset atomic.Int64 }

func (c *clock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) advance(d time.Duration) { c.offset.Add(int64(d)) }

func scope(key string) idempotency.Scope {
	return idempotency.Scope{Role: "customer", Subject: "carla", Method: "POST", Path: "/v1/webhooks", Key: key}
}

func reason(err error) string {
	if e, ok := errs.As(err); ok {
		return e.Reason
	}
	return ""
}

func TestStore(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := t.Context()
		var c clock
		s := idempotency.NewStore(d, c.now)

		claim, prev, err := s.Begin(ctx, scope("a"), "h1")
		if err != nil || claim == nil || prev != nil {
			t.Fatalf("first call: %v %v %v", claim, prev, err)
		}
		if err := claim.Finish(ctx, idempotency.Answer{Status: 201, ContentType: "application/json", Body: []byte(`{"id":"1"}`)}); err != nil {
			t.Fatal(err)
		}
		// the resend gets the kept answer
		claim, prev, err = s.Begin(ctx, scope("a"), "h1")
		if err != nil || claim != nil || prev == nil || prev.Status != 201 || string(prev.Body) != `{"id":"1"}` || prev.ContentType != "application/json" {
			t.Fatalf("resend: %v %+v %v", claim, prev, err)
		}
		// another body under the same key
		if _, _, err := s.Begin(ctx, scope("a"), "h2"); reason(err) != "idempotency_key_reused" {
			t.Fatalf("other body: %v", err)
		}
		// the same key by another caller, or on another path, is another key
		other := scope("a")
		other.Subject = "dora"
		if claim, _, err := s.Begin(ctx, other, "h2"); err != nil || claim == nil {
			t.Fatalf("other caller: %v %v", claim, err)
		}
		other = scope("a")
		other.Path = "/v1/requests"
		if claim, _, err := s.Begin(ctx, other, "h1"); err != nil || claim == nil {
			t.Fatalf("other path: %v %v", claim, err)
		}

		// a released key (a server error) may be used again
		claim, _, err = s.Begin(ctx, scope("b"), "h1")
		if err != nil || claim == nil {
			t.Fatal(err)
		}
		if err := claim.Release(ctx); err != nil {
			t.Fatal(err)
		}
		if claim, _, err := s.Begin(ctx, scope("b"), "h2"); err != nil || claim == nil {
			t.Fatalf("after release: %v %v", claim, err)
		}

		// a call that runs past its lease is taken over, and its late answer
		// does not overwrite its successor's
		stale, _, err := s.Begin(ctx, scope("c"), "h1")
		if err != nil || stale == nil {
			t.Fatal(err)
		}
		c.advance(idempotency.Lease + time.Second)
		fresh, _, err := s.Begin(ctx, scope("c"), "h1")
		if err != nil || fresh == nil {
			t.Fatalf("take over: %v %v", fresh, err)
		}
		if err := stale.Finish(ctx, idempotency.Answer{Status: 200, Body: []byte("late")}); err == nil {
			t.Fatal("the taken-over call kept its answer")
		}
		if err := fresh.Finish(ctx, idempotency.Answer{Status: 200, Body: []byte("fresh")}); err != nil {
			t.Fatal(err)
		}
		if _, prev, _ := s.Begin(ctx, scope("c"), "h1"); prev == nil || string(prev.Body) != "fresh" {
			t.Fatalf("after take-over: %+v", prev)
		}

		// after a day the key is free again, and the housekeeping deletes
		// what has expired
		c.advance(idempotency.TTL)
		if claim, _, err := s.Begin(ctx, scope("a"), "h2"); err != nil || claim == nil {
			t.Fatalf("after a day: %v %v", claim, err)
		}
		n, err := s.Expire(ctx)
		if err != nil || n != 4 { // b, c and the two keys of other callers and paths
			t.Fatalf("expired %d, %v", n, err)
		}
		if left := dbtest.Count(t, d, "idempotency_keys"); left != 1 {
			t.Fatalf("%d rows left, want 1", left)
		}
	})
}

// TestConcurrentResends: 20 calls with one key at once; exactly one runs and
// every other gets its answer.
func TestConcurrentResends(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := t.Context()
		s := idempotency.NewStore(d, time.Now)
		var ran atomic.Int32
		var wg sync.WaitGroup
		answers := make([]string, 20)
		for i := range answers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				claim, prev, err := s.Begin(ctx, scope("race"), "h")
				switch {
				case err != nil:
					t.Errorf("call %d: %v", i, err)
				case claim != nil:
					ran.Add(1)
					time.Sleep(100 * time.Millisecond) // the work
					if err := claim.Finish(ctx, idempotency.Answer{Status: 201, Body: []byte("one")}); err != nil {
						t.Error(err)
					}
					answers[i] = "one"
				default:
					answers[i] = string(prev.Body)
				}
			}()
		}
		wg.Wait()
		if ran.Load() != 1 {
			t.Fatalf("%d calls ran", ran.Load())
		}
		for i, a := range answers {
			if a != "one" {
				t.Fatalf("call %d answered %q", i, a)
			}
		}
	})
}

// TestResendOfFailedCall: a resend waiting on a call that fails (and
// releases its key) is told to retry, and the retry runs.
func TestResendOfFailedCall(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := t.Context()
		s := idempotency.NewStore(d, time.Now)
		first, _, err := s.Begin(ctx, scope("f"), "h")
		if err != nil || first == nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			_, _, err := s.Begin(ctx, scope("f"), "h")
			done <- err
		}()
		time.Sleep(100 * time.Millisecond)
		if err := first.Release(ctx); err != nil {
			t.Fatal(err)
		}
		if err := <-done; reason(err) != "idempotency_key_in_use" {
			t.Fatalf("waiting resend: %v", err)
		}
		if claim, _, err := s.Begin(ctx, scope("f"), "h"); err != nil || claim == nil {
			t.Fatalf("retry: %v %v", claim, err)
		}
	})
}
