package webhooks

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		attempt int
		jitter  float64
		want    time.Duration
	}{
		{"first retry, no jitter", 1, 0.5, 10 * time.Second},
		{"first retry, least", 1, 0, 8 * time.Second},
		{"first retry, more", 1, 0.75, 11 * time.Second},
		{"doubles", 2, 0.5, 20 * time.Second},
		{"doubles again", 4, 0.5, 80 * time.Second},
		{"just under the cap", 9, 0.5, 2560 * time.Second},
		{"capped at an hour", 10, 0.5, time.Hour},
		{"capped, jittered down", 10, 0, 48 * time.Minute},
		{"stays capped", 40, 0.5, time.Hour},
		{"attempt 0 counts as the first", 0, 0.5, 10 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := Backoff(tc.attempt, tc.jitter); got != tc.want {
				t.Fatalf("Backoff(%d, %v) = %v, want %v", tc.attempt, tc.jitter, got, tc.want)
			}
		})
	}
}

// TestBackoffOutlastsRetryFor: with the shortest waits, attempts go on for a
// whole day before a delivery can be given up.
func TestBackoffOutlastsRetryFor(t *testing.T) {
	t.Parallel()
	var waited time.Duration
	attempts := 1
	for waited < RetryFor {
		waited += Backoff(attempts, 0)
		attempts++
	}
	if attempts < 25 || attempts > 40 {
		t.Fatalf("%d attempts in the first %v", attempts, RetryFor)
	}
}
