package app_test

import (
	"net/http"
	"testing"

	"github.com/onsite/onsite/internal/apitest"
	"github.com/onsite/onsite/internal/auth"
	"github.com/onsite/onsite/internal/dbtest"
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
