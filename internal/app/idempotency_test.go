package app_test

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/onsite/onsite/internal/apitest"
	"github.com/onsite/onsite/internal/auth"
	"github.com/onsite/onsite/internal/dbtest"
	"github.com/onsite/onsite/internal/redistest"
)

// TestResentStepsApplyOnce resends every technician step with the same
// Idempotency-Key, as an app that lost its connection would: the first
// answer comes back and nothing is applied twice.
func TestResentStepsApplyOnce(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, "postgres", dbtest.RedisDBApp, apitest.Env("ONSITE_WORKERS", "false"),
		apitest.Env("ONSITE_OFFER_STRATEGY", "sequential"), apitest.Env("ONSITE_OFFER_TIMEOUT", "5m"))
	techs := onboard(t, s, 1000)
	tok := s.Token(auth.Technician, techs[0])
	var req fullRequest
	s.Must(http.StatusCreated, "POST", "/v1/requests", s.Token(auth.Customer, "carla"), map[string]any{"skill": "router_replace", "lat": 47.3769, "lng": 8.5417}, &req)
	res, err := s.App.Dispatch.Match(t.Context(), req.ID)
	if err != nil || len(res.Offered) != 1 {
		t.Fatalf("match %+v %v", res, err)
	}
	steps := []struct {
		path string
		body any
	}{
		{"/v1/offers/" + res.Offered[0].ID + "/accept", nil},
		{"/v1/jobs/" + req.ID + "/en-route", nil},
		{"/v1/me/location", map[string]any{"lat": 47.3770, "lng": 8.5418}},
		{"/v1/jobs/" + req.ID + "/arrived", nil},
		{"/v1/jobs/" + req.ID + "/complete", map[string]string{"outcome": "fixed"}},
	}
	for i, st := range steps {
		key := "step-" + string(rune('a'+i))
		first := s.Must(http.StatusOK, "POST", st.path, tok, st.body, nil, "Idempotency-Key", key)
		events := s.Rows("events")
		again := s.Must(http.StatusOK, "POST", st.path, tok, st.body, nil, "Idempotency-Key", key)
		if string(again.Body) != string(first.Body) || again.Header.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("%s: resend answered %s (replayed %q), first %s", st.path, again.Body, again.Header.Get("Idempotent-Replayed"), first.Body)
		}
		if s.Rows("events") != events {
			t.Fatalf("%s: the resend wrote events", st.path)
		}
	}
	var visits struct {
		Visits int    `json:"visits"`
		State  string `json:"state"`
	}
	s.Must(http.StatusOK, "GET", "/v1/requests/"+req.ID, s.Token(auth.Ops, "alice"), nil, &visits)
	if visits.Visits != 1 || visits.State != "completed" {
		t.Fatalf("after resends: %+v", visits)
	}
	// the same key with another body is refused
	r := s.Call("PUT", "/v1/me/duty", tok, map[string]string{"status": "offline"}, "Idempotency-Key", "duty-1")
	if r.Status != http.StatusOK {
		t.Fatalf("duty: %d", r.Status)
	}
	r = s.Call("PUT", "/v1/me/duty", tok, map[string]string{"status": "available"}, "Idempotency-Key", "duty-1")
	if r.Status != http.StatusConflict || r.Err(t).Error.Reason != "idempotency_key_reused" {
		t.Fatalf("reused key: %d %s", r.Status, r.Body)
	}
	// errors are kept too: a resent bad step gets the same error, not a new try
	bad := s.Call("POST", "/v1/jobs/"+req.ID+"/drop", tok, map[string]string{"reason": "late"}, "Idempotency-Key", "drop-1")
	badAgain := s.Call("POST", "/v1/jobs/"+req.ID+"/drop", tok, map[string]string{"reason": "late"}, "Idempotency-Key", "drop-1")
	if bad.Status != http.StatusNotFound || badAgain.Status != bad.Status || string(badAgain.Body) != string(bad.Body) {
		t.Fatalf("bad step resent: %d %s / %d %s", bad.Status, bad.Body, badAgain.Status, badAgain.Body)
	}
}

// TestIdempotencyKeysOutliveRedis: the database decides which call runs
// under an Idempotency-Key, so a key replays its first answer even after
// Redis lost everything (FLUSHALL on the test's own Redis), a concurrent
// resend waits for the first answer, another body is refused, a server error
// is not kept, and bad keys answer 400 in the shared shape, on both engines.
func TestIdempotencyKeysOutliveRedis(t *testing.T) {
	t.Parallel()
	for _, engine := range apitest.Engines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			rs := redistest.StartServer(t)
			s := apitest.Start(t, engine, 0, apitest.RedisURL(rs.URL()), apitest.Env("ONSITE_WORKERS", "false"))
			rc := redis.NewClient(&redis.Options{Addr: rs.Addr})
			t.Cleanup(func() { _ = rc.Close() })
			owner := s.Token(auth.Customer, "owner-1")
			hook := map[string]string{"url": "https://hooks.example.test/onsite"}

			first := s.Must(http.StatusCreated, "POST", "/v1/webhooks", owner, hook, nil, "Idempotency-Key", "hook-1")
			if err := rc.FlushAll(t.Context()).Err(); err != nil {
				t.Fatal(err)
			}
			again := s.Must(http.StatusCreated, "POST", "/v1/webhooks", owner, hook, nil, "Idempotency-Key", "hook-1")
			if string(again.Body) != string(first.Body) || again.Header.Get("Idempotent-Replayed") != "true" {
				t.Fatalf("resend after FLUSHALL: %s (replayed %q), first %s", again.Body, again.Header.Get("Idempotent-Replayed"), first.Body)
			}
			if n := s.Rows("webhook_endpoints"); n != 1 {
				t.Fatalf("%d endpoints after a resend across a Redis flush, want 1", n)
			}
			// another body under the same key changes nothing
			r := s.Call("POST", "/v1/webhooks", owner, map[string]string{"url": "https://other.example.test/"}, "Idempotency-Key", "hook-1")
			if r.Status != http.StatusConflict || r.Err(t).Error.Reason != "idempotency_key_reused" {
				t.Fatalf("other body: %d %s", r.Status, r.Body)
			}

			// a concurrent pair: one endpoint, one answer
			answers := make([]apitest.Response, 2)
			var wg sync.WaitGroup
			for i := range answers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					answers[i] = s.Call("POST", "/v1/webhooks", owner, hook, "Idempotency-Key", "hook-2")
				}()
			}
			wg.Wait()
			if answers[0].Status != http.StatusCreated || answers[1].Status != http.StatusCreated || string(answers[0].Body) != string(answers[1].Body) {
				t.Fatalf("concurrent pair: %d %s / %d %s", answers[0].Status, answers[0].Body, answers[1].Status, answers[1].Body)
			}
			if n := s.Rows("webhook_endpoints"); n != 2 {
				t.Fatalf("%d endpoints after a concurrent pair, want 2", n)
			}

			// a server error is not kept: the same key runs again once the
			// database is whole
			if err := s.App.DB.Exec("ALTER TABLE webhook_endpoints RENAME TO webhook_endpoints_away").Error; err != nil {
				t.Fatal(err)
			}
			failed := s.Call("POST", "/v1/webhooks", owner, hook, "Idempotency-Key", "hook-3")
			if err := s.App.DB.Exec("ALTER TABLE webhook_endpoints_away RENAME TO webhook_endpoints").Error; err != nil {
				t.Fatal(err)
			}
			if failed.Status != http.StatusInternalServerError {
				t.Fatalf("with the table away: %d %s", failed.Status, failed.Body)
			}
			retried := s.Must(http.StatusCreated, "POST", "/v1/webhooks", owner, hook, nil, "Idempotency-Key", "hook-3")
			if retried.Header.Get("Idempotent-Replayed") != "" || s.Rows("webhook_endpoints") != 3 {
				t.Fatalf("retry after a server error: replayed %q, %d endpoints", retried.Header.Get("Idempotent-Replayed"), s.Rows("webhook_endpoints"))
			}

			// bad keys: 400 in the shared shape, nothing written
			keys, endpoints := s.Rows("idempotency_keys"), s.Rows("webhook_endpoints")
			for name, key := range map[string]string{
				"201 characters": strings.Repeat("k", 201),
				"not UTF-8":      "key-\xff",
				"a tab":          "key\tkey",
			} {
				r := s.Call("POST", "/v1/webhooks", owner, hook, "Idempotency-Key", key)
				if r.Status != http.StatusBadRequest {
					t.Fatalf("%s: %d %s", name, r.Status, r.Body)
				}
				if e := r.Err(t); e.Error.Code != "malformed" || e.Error.Field != "Idempotency-Key" {
					t.Fatalf("%s: %s", name, r.Body)
				}
			}
			// Go's HTTP server refuses a NUL in a header itself (400) before
			// any handler runs; send one raw to see it never becomes a 500.
			if status := rawStatus(t, s.URL, "POST /v1/webhooks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+owner+
				"\r\nIdempotency-Key: a\x00b\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"); status != http.StatusBadRequest {
				t.Fatalf("NUL in the key: %d", status)
			}
			if s.Rows("idempotency_keys") != keys || s.Rows("webhook_endpoints") != endpoints {
				t.Fatal("a bad key wrote something")
			}
		})
	}
}

// TestCreateRequestKeyAgrees: POST /v1/requests has two guards, the
// middleware's record and the requests table's unique (customer, key)
// index; a resend agrees with the first answer whichever of them answers
// (the record lost, as after its day, leaves the index to answer).
func TestCreateRequestKeyAgrees(t *testing.T) {
	t.Parallel()
	for _, engine := range apitest.Engines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			s := apitest.Start(t, engine, dbtest.RedisDBApp, apitest.Env("ONSITE_WORKERS", "false"))
			ops := s.Token(auth.Ops, "alice")
			s.Must(http.StatusCreated, "POST", "/v1/skills", ops, map[string]string{"code": "wifi_setup", "name": "Wi-Fi"}, nil)
			cust := s.Token(auth.Customer, "carla")
			body := map[string]any{"skill": "wifi_setup", "lat": 47.37, "lng": 8.54}
			var first, replayed, fromIndex request
			s.Must(http.StatusCreated, "POST", "/v1/requests", cust, body, &first, "Idempotency-Key", "req-1")
			r := s.Must(http.StatusCreated, "POST", "/v1/requests", cust, body, &replayed, "Idempotency-Key", "req-1")
			if replayed.ID != first.ID || r.Header.Get("Idempotent-Replayed") != "true" {
				t.Fatalf("replay %s (%q), first %s", replayed.ID, r.Header.Get("Idempotent-Replayed"), first.ID)
			}
			if err := s.App.DB.Exec("DELETE FROM idempotency_keys").Error; err != nil {
				t.Fatal(err)
			}
			r = s.Must(http.StatusCreated, "POST", "/v1/requests", cust, body, &fromIndex, "Idempotency-Key", "req-1")
			if fromIndex.ID != first.ID || r.Header.Get("Idempotent-Replayed") != "true" {
				t.Fatalf("from the index %s (%q), first %s", fromIndex.ID, r.Header.Get("Idempotent-Replayed"), first.ID)
			}
			if err := s.App.DB.Exec("DELETE FROM idempotency_keys").Error; err != nil {
				t.Fatal(err)
			}
			other := map[string]any{"skill": "wifi_setup", "lat": 46.2, "lng": 6.14}
			r = s.Must(http.StatusConflict, "POST", "/v1/requests", cust, other, nil, "Idempotency-Key", "req-1")
			if r.Err(t).Error.Reason != "idempotency_key_reused" {
				t.Fatalf("another body, from the index: %s", r.Body)
			}
			if n := s.Rows("requests"); n != 1 {
				t.Fatalf("%d requests, want 1", n)
			}
			long := s.Call("POST", "/v1/requests", cust, body, "Idempotency-Key", strings.Repeat("x", 201))
			if long.Status != http.StatusBadRequest || long.Err(t).Error.Field != "Idempotency-Key" {
				t.Fatalf("long key: %d %s", long.Status, long.Body)
			}
		})
	}
}

// rawStatus sends a raw HTTP/1.1 request and returns the answer's status.
func rawStatus(t *testing.T, baseURL, raw string) int {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(baseURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(raw)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
