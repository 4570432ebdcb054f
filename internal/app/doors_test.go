package app_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/onsite/onsite/internal/apitest"
	"github.com/onsite/onsite/internal/auth"
	"github.com/onsite/onsite/internal/dbtest"
)

// TestHandAssignmentRulesOverHTTP: ops assigning a technician without the
// skill get 409 not_eligible in the shared error shape and nothing is
// written; an override needs a reason (422 otherwise) and is kept in the
// audit trail.
func TestHandAssignmentRulesOverHTTP(t *testing.T) {
	t.Parallel()
	for _, engine := range apitest.Engines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			s := apitest.Start(t, engine, dbtest.RedisDBApp, apitest.Env("ONSITE_WORKERS", "false"))
			techs := onboard(t, s, 1000)
			ops := s.Token(auth.Ops, "alice")
			s.Must(http.StatusCreated, "POST", "/v1/skills", ops, map[string]string{"code": "wifi_setup", "name": "Wi-Fi setup"}, nil)
			var req fullRequest
			s.Must(http.StatusCreated, "POST", "/v1/requests", s.Token(auth.Customer, "carla"),
				map[string]any{"skill": "wifi_setup", "lat": 47.3769, "lng": 8.5417}, &req)

			tables := []string{"events", "assignments", "offers", "outbox"}
			rows := func() map[string]int64 {
				out := map[string]int64{}
				for _, table := range tables {
					out[table] = s.Rows(table)
				}
				return out
			}
			before := rows()
			path := "/v1/requests/" + req.ID + "/assign"
			for _, tt := range []struct {
				name   string
				body   map[string]any
				status int
				code   string
				reason string
				field  string
			}{
				{"no certification", map[string]any{"technician_id": techs[0]}, 409, "conflict", "not_eligible", ""},
				{"reason without override", map[string]any{"technician_id": techs[0], "reason": "asked for"}, 409, "conflict", "not_eligible", ""},
				{"override without a reason", map[string]any{"technician_id": techs[0], "override": true}, 422, "invalid", "", "reason"},
				{"override as text", map[string]any{"technician_id": techs[0], "override": "yes", "reason": "x"}, 400, "malformed", "", "override"},
			} {
				e := s.Must(tt.status, "POST", path, ops, tt.body, nil).Err(t)
				if e.Error.Code != tt.code || e.Error.Reason != tt.reason || e.Error.Field != tt.field {
					t.Fatalf("%s: %+v", tt.name, e.Error)
				}
				if tt.reason == "not_eligible" && !strings.HasSuffix(e.Error.Message, ": no current certification") {
					t.Fatalf("%s: message %q does not name the rule", tt.name, e.Error.Message)
				}
				if after := rows(); !equalCounts(before, after) {
					t.Fatalf("%s wrote rows: %v, then %v", tt.name, before, after)
				}
			}

			s.Must(http.StatusOK, "POST", path, ops, map[string]any{"technician_id": techs[0], "override": true, "reason": "certified yesterday, paperwork pending"}, &req)
			if req.State != "assigned" || req.TechnicianID == nil || *req.TechnicianID != techs[0] {
				t.Fatalf("override: %+v", req.request)
			}
			var evs struct {
				Items []struct {
					Type    string         `json:"type"`
					ActorID string         `json:"actor_id"`
					Data    map[string]any `json:"data"`
				}
			}
			s.Must(http.StatusOK, "GET", "/v1/requests/"+req.ID+"/events", ops, nil, &evs)
			last := evs.Items[len(evs.Items)-1]
			if last.Type != "assigned" || last.ActorID != "alice" || last.Data["override"] != true ||
				last.Data["reason"] != "certified yesterday, paperwork pending" || last.Data["overridden"] != "no current certification" {
				t.Fatalf("assigned event: %+v", last)
			}
		})
	}
}

func equalCounts(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestSMSYesRefusedWhenNotEligible: a technician whose certification was
// revoked after the offer went out answers YES by SMS: the reply says why
// in fixed words (what to check in the app),
// the job stays searching and nothing is written.
func TestSMSYesRefusedWhenNotEligible(t *testing.T) {
	t.Parallel()
	s, tw := startWithTwilio(t, "postgres", apitest.Env("ONSITE_OFFER_STRATEGY", "sequential"), apitest.Env("ONSITE_OFFER_TIMEOUT", "5m"))
	techs := onboard(t, s, 1000)
	ops := s.Token(auth.Ops, "alice")
	var req fullRequest
	s.Must(http.StatusCreated, "POST", "/v1/requests", s.Token(auth.Customer, "carla"),
		map[string]any{"skill": "router_replace", "lat": 47.3769, "lng": 8.5417}, &req)
	waitSMS(t, tw, "+41795550000", "Reply YES")
	s.Must(http.StatusNoContent, "DELETE", "/v1/technicians/"+techs[0]+"/certifications/router_replace", ops, nil, nil)

	tables := []string{"events", "assignments", "offers"}
	before := map[string]int64{}
	for _, table := range tables {
		before[table] = s.Rows(table)
	}
	r := sms(s, "+41795550000", "YES", true)
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), "no longer available") ||
		!strings.Contains(string(r.Body), "check your certifications") {
		t.Fatalf("yes by SMS: %d %s", r.Status, r.Body)
	}
	for _, table := range tables {
		if n := s.Rows(table); n != before[table] {
			t.Fatalf("%s: %d rows, then %d", table, before[table], n)
		}
	}
	s.Must(http.StatusOK, "GET", "/v1/requests/"+req.ID, ops, nil, &req)
	if req.State != "searching" || req.TechnicianID != nil {
		t.Fatalf("after a refused yes: %+v", req)
	}
}
