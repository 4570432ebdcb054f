package app_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onsite/onsite/internal/apitest"
	"github.com/onsite/onsite/internal/auth"
	"github.com/onsite/onsite/internal/dbtest"
)

type technician struct {
	ID             string `json:"id"`
	DutyStatus     string `json:"duty_status"`
	Cell           string `json:"cell"`
	Certifications []struct {
		Skill     string    `json:"skill"`
		ExpiresAt time.Time `json:"expires_at"`
	} `json:"certifications"`
}

type request struct {
	ID          string     `json:"id"`
	State       string     `json:"state"`
	Mode        string     `json:"mode"`
	CreatedAt   time.Time  `json:"created_at"`
	SLADeadline *time.Time `json:"sla_deadline"`
	Cell        string     `json:"cell"`
}

// TestFoundationFlow is the "done when": ops onboards and certifies a
// technician, the technician goes on duty and reports a position, a customer
// opens a request, sees it searching with its deadline, and cancels it.
func TestFoundationFlow(t *testing.T) {
	t.Parallel()
	for _, engine := range apitest.Engines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			s := apitest.Start(t, engine, dbtest.RedisDBApp)
			ops := s.Token(auth.Ops, "alice")
			s.Must(http.StatusCreated, "POST", "/v1/skills", ops, map[string]string{"code": "wifi_setup", "name": "Wi-Fi setup"}, nil)

			var tech technician
			s.Must(http.StatusCreated, "POST", "/v1/technicians", ops, map[string]string{"name": "Tina Keller", "phone": "+41791234567"}, &tech)
			if tech.ID == "" || tech.DutyStatus != "offline" {
				t.Fatalf("new technician: %+v", tech)
			}
			expires := time.Now().Add(365 * 24 * time.Hour).UTC().Truncate(time.Second)
			s.Must(http.StatusOK, "PUT", "/v1/technicians/"+tech.ID+"/certifications/wifi_setup", ops, map[string]any{"expires_at": expires}, nil)

			techTok := s.Token(auth.Technician, tech.ID)
			s.Must(http.StatusOK, "PUT", "/v1/me/duty", techTok, map[string]string{"status": "available"}, nil)
			s.Must(http.StatusOK, "POST", "/v1/me/location", techTok, map[string]any{"lat": 47.3769, "lng": 8.5417, "at": time.Now().UTC()}, nil)

			apitest.Eventually(t, 5*time.Second, "the position to be written", func() bool {
				s.Must(http.StatusOK, "GET", "/v1/technicians/"+tech.ID, ops, nil, &tech)
				return tech.Cell != ""
			})
			if tech.DutyStatus != "available" || tech.Cell == "" || len(tech.Certifications) != 1 || !tech.Certifications[0].ExpiresAt.Equal(expires) {
				t.Fatalf("technician after onboarding: %+v", tech)
			}

			cust := s.Token(auth.Customer, "carla")
			var req request
			s.Must(http.StatusCreated, "POST", "/v1/requests", cust, map[string]any{
				"skill": "wifi_setup", "lat": 47.3780, "lng": 8.5400, "address": "Bahnhofstrasse 1, Zürich", "notes": "3rd floor",
			}, &req)
			if req.State != "searching" || req.Mode != "asap" || req.SLADeadline == nil || req.SLADeadline.Sub(req.CreatedAt) != time.Hour {
				t.Fatalf("new request: %+v", req)
			}
			var got request
			s.Must(http.StatusOK, "GET", "/v1/requests/"+req.ID, cust, nil, &got)
			if got.State != "searching" && got.State != "assigned" {
				t.Fatalf("request state %s", got.State)
			}
			// another customer does not see it
			s.Must(http.StatusNotFound, "GET", "/v1/requests/"+req.ID, s.Token(auth.Customer, "mallory"), nil, nil)
			s.Must(http.StatusNotFound, "POST", "/v1/requests/"+req.ID+"/cancel", s.Token(auth.Customer, "mallory"), map[string]string{"reason": "x"}, nil)

			s.Must(http.StatusOK, "POST", "/v1/requests/"+req.ID+"/cancel", cust, map[string]string{"reason": "fixed it myself"}, &got)
			if got.State != "cancelled" {
				t.Fatalf("after cancel: %s", got.State)
			}
			// cancelling again is an illegal state change
			r := s.Must(http.StatusConflict, "POST", "/v1/requests/"+req.ID+"/cancel", cust, map[string]string{"reason": "again"}, nil)
			if e := r.Err(t); e.Error.Code != "conflict" {
				t.Fatalf("code %s", e.Error.Code)
			}
			var events struct {
				Items []struct {
					Type      string `json:"type"`
					ActorRole string `json:"actor_role"`
				} `json:"items"`
			}
			s.Must(http.StatusOK, "GET", "/v1/requests/"+req.ID+"/events", ops, nil, &events)
			if n := len(events.Items); n < 2 || events.Items[0].Type != "created" || events.Items[n-1].Type != "cancelled" || events.Items[n-1].ActorRole != "customer" {
				t.Fatalf("events: %+v", events.Items)
			}
			var list struct{ Items []request }
			s.Must(http.StatusOK, "GET", "/v1/requests?state=cancelled", ops, nil, &list)
			if len(list.Items) != 1 || list.Items[0].ID != req.ID {
				t.Fatalf("list cancelled: %+v", list.Items)
			}
			s.Must(http.StatusOK, "GET", "/readyz", "", nil, nil)
			s.Must(http.StatusOK, "GET", "/healthz", "", nil, nil)
			if m := s.Must(http.StatusOK, "GET", "/metrics", "", nil, nil); !strings.Contains(string(m.Body), "onsite_http_requests_total") {
				t.Fatal("metrics lack onsite_http_requests_total")
			}
		})
	}
}

// TestBadInputChangesNothing sends each kind of bad input and checks the
// status, the error shape, the field named, and that no row was written.
func TestBadInputChangesNothing(t *testing.T) {
	t.Parallel()
	for _, engine := range apitest.Engines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			s := apitest.Start(t, engine, dbtest.RedisDBApp, apitest.Env("ONSITE_BODY_LIMIT", "4096"))
			ops := s.Token(auth.Ops, "alice")
			cust := s.Token(auth.Customer, "carla")
			machine := s.Token(auth.Machine, "carla")
			s.Must(http.StatusCreated, "POST", "/v1/skills", ops, map[string]string{"code": "wifi_setup", "name": "Wi-Fi"}, nil)
			var tech technician
			s.Must(http.StatusCreated, "POST", "/v1/technicians", ops, map[string]string{"name": "Tina", "phone": "+41791234567"}, &tech)
			techTok := s.Token(auth.Technician, tech.ID)
			var done request
			s.Must(http.StatusCreated, "POST", "/v1/requests", cust, map[string]any{"skill": "wifi_setup", "lat": 47.37, "lng": 8.54}, &done)
			s.Must(http.StatusOK, "POST", "/v1/requests/"+done.ID+"/cancel", cust, map[string]string{"reason": "test"}, nil)

			future := time.Now().Add(48 * time.Hour).UTC()
			tests := []struct {
				name   string
				method string
				path   string
				token  string
				body   any
				status int
				code   string
				field  string
				header []string
			}{
				{"malformed json", "POST", "/v1/requests", cust, `{"skill":`, 400, "malformed", "", nil},
				{"not json", "POST", "/v1/requests", cust, `hello`, 400, "malformed", "", nil},
				{"empty body", "POST", "/v1/requests", cust, ``, 400, "malformed", "", nil},
				{"unknown field", "POST", "/v1/requests", cust, `{"skill":"wifi_setup","lat":1,"lng":1,"colour":"red"}`, 400, "malformed", "colour", nil},
				{"wrong type", "POST", "/v1/requests", cust, `{"skill":"wifi_setup","lat":"47","lng":1}`, 400, "malformed", "lat", nil},
				{"trailing data", "POST", "/v1/requests", cust, `{"skill":"wifi_setup","lat":1,"lng":1} {}`, 400, "malformed", "", nil},
				{"NaN literal", "POST", "/v1/requests", cust, `{"skill":"wifi_setup","lat":NaN,"lng":1}`, 400, "malformed", "", nil},
				{"NUL in text", "POST", "/v1/requests", cust, `{"skill":"wifi_setup","lat":47,"lng":8,"notes":"a\u0000b"}`, 400, "malformed", "", nil},
				{"NUL in a name", "POST", "/v1/technicians", ops, `{"name":"a\u0000b","phone":"+41791234599"}`, 400, "malformed", "", nil},
				{"lat above 90", "POST", "/v1/requests", cust, map[string]any{"skill": "wifi_setup", "lat": 90.5, "lng": 8}, 422, "invalid", "lat", nil},
				{"lat below -90", "POST", "/v1/requests", cust, map[string]any{"skill": "wifi_setup", "lat": -91, "lng": 8}, 422, "invalid", "lat", nil},
				{"lng above 180", "POST", "/v1/requests", cust, map[string]any{"skill": "wifi_setup", "lat": 47, "lng": 181}, 422, "invalid", "lng", nil},
				{"lat missing", "POST", "/v1/requests", cust, map[string]any{"skill": "wifi_setup", "lng": 8}, 422, "invalid", "lat", nil},
				{"unknown skill", "POST", "/v1/requests", cust, map[string]any{"skill": "time_travel", "lat": 47, "lng": 8}, 422, "invalid", "skill", nil},
				{"window end before start", "POST", "/v1/requests", cust, map[string]any{"skill": "wifi_setup", "lat": 47, "lng": 8,
					"window": map[string]any{"start": future, "end": future.Add(-time.Hour)}}, 422, "invalid", "window.end", nil},
				{"window in the past", "POST", "/v1/requests", cust, map[string]any{"skill": "wifi_setup", "lat": 47, "lng": 8,
					"window": map[string]any{"start": time.Now().Add(-3 * time.Hour), "end": time.Now().Add(-2 * time.Hour)}}, 422, "invalid", "window.end", nil},
				{"machine without idempotency key", "POST", "/v1/requests", machine, map[string]any{"skill": "wifi_setup", "lat": 47, "lng": 8}, 422, "invalid", "Idempotency-Key", nil},
				{"oversized body", "POST", "/v1/requests", cust, `{"skill":"wifi_setup","lat":47,"lng":8,"notes":"` + strings.Repeat("x", 5000) + `"}`, 413, "too_large", "", nil},
				{"cancel completed-or-cancelled", "POST", "/v1/requests/" + done.ID + "/cancel", cust, map[string]string{"reason": "again"}, 409, "conflict", "", nil},
				{"cancel without reason", "POST", "/v1/requests/" + done.ID + "/cancel", cust, map[string]string{}, 422, "invalid", "reason", nil},
				{"cancel unknown request", "POST", "/v1/requests/nope/cancel", cust, map[string]string{"reason": "x"}, 404, "not_found", "", nil},
				{"bad phone", "POST", "/v1/technicians", ops, map[string]string{"name": "Tom", "phone": "0791234567"}, 422, "invalid", "phone", nil},
				{"phone with letters", "POST", "/v1/technicians", ops, map[string]string{"name": "Tom", "phone": "+41abc"}, 422, "invalid", "phone", nil},
				{"empty name", "POST", "/v1/technicians", ops, map[string]string{"name": " ", "phone": "+41791234568"}, 422, "invalid", "name", nil},
				{"duplicate phone", "POST", "/v1/technicians", ops, map[string]string{"name": "Tim", "phone": "+41791234567"}, 409, "conflict", "", nil},
				{"bad travel mode", "POST", "/v1/technicians", ops, map[string]any{"name": "Tim", "phone": "+41791234569", "travel_mode": "rocket"}, 422, "invalid", "travel_mode", nil},
				{"bad capacity", "POST", "/v1/technicians", ops, map[string]any{"name": "Tim", "phone": "+41791234569", "capacity": 0}, 422, "invalid", "capacity", nil},
				{"bad skill code", "POST", "/v1/skills", ops, map[string]string{"code": "Wi Fi!", "name": "x"}, 422, "invalid", "code", nil},
				{"duplicate skill", "POST", "/v1/skills", ops, map[string]string{"code": "wifi_setup", "name": "again"}, 409, "conflict", "", nil},
				{"certify unknown skill", "PUT", "/v1/technicians/" + tech.ID + "/certifications/time_travel", ops, map[string]any{"expires_at": future}, 404, "not_found", "", nil},
				{"certify unknown technician", "PUT", "/v1/technicians/nope/certifications/wifi_setup", ops, map[string]any{"expires_at": future}, 404, "not_found", "", nil},
				{"certify without expiry", "PUT", "/v1/technicians/" + tech.ID + "/certifications/wifi_setup", ops, map[string]any{}, 422, "invalid", "expires_at", nil},
				{"certify expired", "PUT", "/v1/technicians/" + tech.ID + "/certifications/wifi_setup", ops, map[string]any{"expires_at": "2020-01-01T00:00:00Z"}, 422, "invalid", "expires_at", nil},
				{"certify bad time", "PUT", "/v1/technicians/" + tech.ID + "/certifications/wifi_setup", ops, map[string]any{"expires_at": "next year"}, 400, "malformed", "", nil},
				{"revoke not held", "DELETE", "/v1/technicians/" + tech.ID + "/certifications/wifi_setup", ops, nil, 404, "not_found", "", nil},
				{"bad duty", "PUT", "/v1/me/duty", techTok, map[string]string{"status": "sleeping"}, 422, "invalid", "status", nil},
				{"location lat out of range", "POST", "/v1/me/location", techTok, map[string]any{"lat": 123, "lng": 8}, 422, "invalid", "lat", nil},
				{"location in the future", "POST", "/v1/me/location", techTok, map[string]any{"lat": 47, "lng": 8, "at": time.Now().Add(time.Hour)}, 422, "invalid", "at", nil},
				{"list bad state", "GET", "/v1/requests?state=flying", ops, nil, 422, "invalid", "state", nil},
				{"list bad limit", "GET", "/v1/technicians?limit=-3", ops, nil, 422, "invalid", "limit", nil},
				{"pings: none", "POST", "/v1/me/locations", techTok, map[string]any{"pings": []any{}}, 422, "invalid", "pings", nil},
				{"pings: a bad one", "POST", "/v1/me/locations", techTok, map[string]any{"pings": []any{map[string]any{"lat": 47, "lng": 8}, map[string]any{"lat": 95, "lng": 8}}}, 422, "invalid", "pings[1].lat", nil},
				{"assign without technician", "POST", "/v1/requests/" + done.ID + "/assign", ops, map[string]any{}, 422, "invalid", "technician_id", nil},
				{"shifts missing", "PUT", "/v1/technicians/" + tech.ID + "/shifts", ops, map[string]any{}, 422, "invalid", "shifts", nil},
				{"shift ends before it starts", "PUT", "/v1/technicians/" + tech.ID + "/shifts", ops, map[string]any{"shifts": []any{map[string]any{"start": future, "end": future.Add(-time.Hour)}}}, 422, "invalid", "shifts[0].end", nil},
				{"suspension missing", "PUT", "/v1/technicians/" + tech.ID + "/suspension", ops, map[string]any{}, 422, "invalid", "suspended", nil},
				{"kpis to before from", "GET", "/v1/kpis?from=2026-11-02T00:00:00Z&to=2026-11-01T00:00:00Z", ops, nil, 422, "invalid", "to", nil},
				{"kpis bad cell", "GET", "/v1/kpis?cell=nowhere", ops, nil, 422, "invalid", "cell", nil},
				{"kpis cell finer than the city grid", "GET", "/v1/kpis?cell=8a1f8ed9519ffff", ops, nil, 422, "invalid", "cell", nil},
				{"kpis unknown area", "GET", "/v1/kpis?area=atlantis", ops, nil, 422, "invalid", "area", nil},
				{"kpis unknown skill", "GET", "/v1/kpis?skill=time_travel", ops, nil, 422, "invalid", "skill", nil},
				{"kpis unknown technician", "GET", "/v1/kpis?technician=nobody", ops, nil, 422, "invalid", "technician", nil},
				{"kpis bad hour", "GET", "/v1/kpis?hour=25", ops, nil, 422, "invalid", "hour", nil},
				{"kpis bad grouping", "GET", "/v1/kpis?group_by=region", ops, nil, 422, "invalid", "group_by", nil},
				{"kpis unknown parameter", "GET", "/v1/kpis?region=8", ops, nil, 422, "invalid", "region", nil},
				{"complete with a long reason", "POST", "/v1/jobs/" + done.ID + "/complete", techTok, map[string]any{"outcome": "not_fixed", "reason": strings.Repeat("x", 501)}, 422, "invalid", "reason", nil},
				{"ops token bad role", "POST", "/v1/ops/tokens", ops, map[string]string{"role": "king", "subject": "x"}, 422, "invalid", "role", nil},
				{"machine key without owner", "POST", "/v1/machine-keys", ops, map[string]string{"name": "x"}, 422, "invalid", "owner", nil},
				{"webhook bad url", "POST", "/v1/webhooks", cust, map[string]string{"url": "ftp://x"}, 422, "invalid", "url", nil},
				{"rating out of range", "POST", "/v1/requests/" + done.ID + "/rating", cust, map[string]any{"stars": 9}, 422, "invalid", "stars", nil},
				{"confirm not pending", "POST", "/v1/requests/" + done.ID + "/confirm", cust, map[string]any{}, 409, "conflict", "", nil},
				{"otp bad phone", "POST", "/v1/auth/otp", "", map[string]string{"phone": "12"}, 422, "invalid", "phone", nil},
				{"refresh missing", "POST", "/v1/auth/refresh", "", map[string]string{}, 422, "invalid", "refresh_token", nil},
				{"unknown route", "GET", "/v1/nowhere", ops, nil, 404, "not_found", "", nil},
				{"wrong method", "DELETE", "/v1/skills", ops, nil, 405, "method_not_allowed", "", nil},
			}
			tables := []string{"skills", "technicians", "certifications", "shifts", "customers", "requests", "offers", "events", "outbox", "assignments",
				"machine_keys", "webhook_endpoints", "otp_codes", "refresh_tokens", "messages"}
			before := map[string]int64{}
			for _, tb := range tables {
				before[tb] = s.Rows(tb)
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					r := s.Call(tt.method, tt.path, tt.token, tt.body, tt.header...)
					if r.Status != tt.status {
						t.Fatalf("status %d, want %d: %s", r.Status, tt.status, r.Body)
					}
					e := r.Err(t)
					if e.Error.Code != tt.code || e.Error.Field != tt.field {
						t.Fatalf("error %+v, want code %s field %q", e.Error, tt.code, tt.field)
					}
				})
			}
			for _, tb := range tables {
				if n := s.Rows(tb); n != before[tb] {
					t.Errorf("table %s: %d rows, had %d before the bad input", tb, n, before[tb])
				}
			}
		})
	}
}

// TestIdempotentCreateRace fires 50 creates with one Idempotency-Key at once:
// one request exists afterwards and every answer carries its id (invariant 5).
func TestIdempotentCreateRace(t *testing.T) {
	t.Parallel()
	for _, engine := range apitest.Engines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			s := apitest.Start(t, engine, dbtest.RedisDBApp)
			ops := s.Token(auth.Ops, "alice")
			s.Must(http.StatusCreated, "POST", "/v1/skills", ops, map[string]string{"code": "modem_install", "name": "Modem"}, nil)
			machine := s.Token(auth.Machine, "owner-7")
			body := map[string]any{"skill": "modem_install", "lat": 47.37, "lng": 8.54, "notes": "fault E42"}
			ids := make([]string, 50)
			var wg sync.WaitGroup
			for i := range ids {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					r := s.Call("POST", "/v1/requests", machine, body, "Idempotency-Key", "fault-42")
					if r.Status != http.StatusCreated {
						t.Errorf("create %d: %d %s", i, r.Status, r.Body)
						return
					}
					var req request
					r.Decode(t, &req)
					ids[i] = req.ID
				}(i)
			}
			wg.Wait()
			for i, id := range ids {
				if id != ids[0] {
					t.Fatalf("answer %d has id %s, answer 0 has %s", i, id, ids[0])
				}
			}
			if n := s.Rows("requests"); n != 1 {
				t.Fatalf("%d requests, want 1", n)
			}
			var created int64
			s.App.DB.Table("events").Where("type = ?", "created").Count(&created)
			if created != 1 {
				t.Fatalf("%d created events, want 1", created)
			}
			// the same key with another body is a conflict
			other := map[string]any{"skill": "modem_install", "lat": 46.0, "lng": 8.54}
			r := s.Must(http.StatusConflict, "POST", "/v1/requests", machine, other, nil, "Idempotency-Key", "fault-42")
			if e := r.Err(t); e.Error.Reason != "idempotency_key_reused" {
				t.Fatalf("reason %q", e.Error.Reason)
			}
			// another owner may use the same key
			s.Must(http.StatusCreated, "POST", "/v1/requests", s.Token(auth.Machine, "owner-8"), body, nil, "Idempotency-Key", "fault-42")
			if n := s.Rows("requests"); n != 2 {
				t.Fatalf("%d requests, want 2", n)
			}
		})
	}
}

// TestRateLimits: past the limit a caller gets 429 with Retry-After, per
// signed-in caller and per address, and other callers are not affected.
func TestRateLimits(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, "sqlite", dbtest.RedisDBApp, apitest.Env("ONSITE_RATE_LIMIT_PRINCIPAL", "5"), apitest.Env("ONSITE_RATE_LIMIT_IP", "12"))
	alice := s.Token(auth.Ops, "alice")
	for range 5 {
		s.Must(http.StatusOK, "GET", "/v1/skills", alice, nil, nil)
	}
	r := s.Call("GET", "/v1/skills", alice, nil)
	if r.Status != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" || r.Err(t).Error.Code != "rate_limited" {
		t.Fatalf("6th call: %d %q %s", r.Status, r.Header.Get("Retry-After"), r.Body)
	}
	s.Must(http.StatusOK, "GET", "/v1/skills", s.Token(auth.Ops, "bob"), nil, nil) // another caller
	// the address limit covers public routes too
	for {
		r = s.Call("POST", "/v1/auth/ops", "", map[string]string{"name": "x", "password": "y"})
		if r.Status == http.StatusTooManyRequests {
			break
		}
		if r.Status != http.StatusUnauthorized {
			t.Fatalf("sign-in: %d", r.Status)
		}
	}
	if r.Header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
}
