package app_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/onsite/onsite/internal/apitest"
	"github.com/onsite/onsite/internal/auth"
	"github.com/onsite/onsite/internal/dbtest"
	"github.com/onsite/onsite/technicians"
)

// TestEmbeddedModeUnderLoad: on SQLite (the embedded default), technicians
// pinging and customers creating requests at once, with the workers on,
// answer no error: writers wait their turn instead of failing with
// SQLITE_BUSY. (-short: a smaller load.)
func TestEmbeddedModeUnderLoad(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, "sqlite", dbtest.RedisDBApp, apitest.Env("ONSITE_RATE_LIMIT_IP", "0"), apitest.Env("ONSITE_RATE_LIMIT_PRINCIPAL", "0"))
	ctx := context.Background()
	ops := s.Token(auth.Ops, "alice")
	s.Must(http.StatusCreated, "POST", "/v1/skills", ops, map[string]string{"code": "wifi_setup", "name": "Wi-Fi"}, nil)
	techs, perSecond, run := 300, 20, 20*time.Second
	if testing.Short() {
		techs, perSecond, run = 60, 10, 5*time.Second
	}
	var tokens []string
	for i := range techs {
		tt, err := s.App.Technicians.Create(ctx, technicians.NewTechnician{Name: "Tina", Phone: fmt.Sprintf("+4179%07d", 4000000+i)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.App.Technicians.Certify(ctx, tt.ID, "wifi_setup", nil, time.Now().Add(24*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.App.Technicians.SetDuty(ctx, tt.ID, technicians.Available); err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, s.Token(auth.Technician, tt.ID))
	}
	var calls, failed atomic.Int64
	var firstFailure atomic.Value
	call := func(method, path, token string, body any, want int) {
		calls.Add(1)
		if r := s.Call(method, path, token, body); r.Status != want {
			if failed.Add(1) == 1 {
				firstFailure.Store(fmt.Sprintf("%s %s: %d %s", method, path, r.Status, r.Body))
			}
		}
	}
	deadline := time.Now().Add(run)
	var wg sync.WaitGroup
	for w := range 4 { // technicians' apps: every technician pings about every 2-3 s
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline); i++ {
				k := (w + 4*i) % len(tokens)
				call("POST", "/v1/me/location", tokens[k], map[string]any{"lat": 47.37 + float64(k%50)/1000, "lng": 8.54 + float64(i%50)/1000}, http.StatusOK)
			}
		}()
	}
	wg.Add(1)
	go func() { // customers: perSecond creates a second
		defer wg.Done()
		tick := time.NewTicker(time.Second / time.Duration(perSecond))
		defer tick.Stop()
		var inner sync.WaitGroup
		for i := 0; time.Now().Before(deadline); i++ {
			<-tick.C
			inner.Add(1)
			go func() {
				defer inner.Done()
				call("POST", "/v1/requests", s.Token(auth.Customer, fmt.Sprint("cust", i)), map[string]any{"skill": "wifi_setup", "lat": 47.37, "lng": 8.54}, http.StatusCreated)
			}()
		}
		inner.Wait()
	}()
	wg.Wait()
	t.Logf("%d calls in %v, %d failed", calls.Load(), run, failed.Load())
	if n := failed.Load(); n != 0 {
		t.Fatalf("%d of %d calls failed; first: %v", n, calls.Load(), firstFailure.Load())
	}
}
