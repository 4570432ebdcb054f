package app_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/onsite/onsite/internal/apitest"
	"github.com/onsite/onsite/internal/auth"
	"github.com/onsite/onsite/internal/dbtest"
)

// fieldTables are the tables a refused call in the field must leave as
// they were.
var fieldTables = []string{"requests", "events", "outbox", "assignments", "customers", "contact_phones", "idempotency_keys"}

func rowCounts(s *apitest.Server) map[string]int64 {
	out := map[string]int64{}
	for _, table := range fieldTables {
		out[table] = s.Rows(table)
	}
	return out
}

// badCall is a refused call: its status, error code and field.
type badCall struct {
	name, method, path, token string
	body                      any
	status                    int
	code, field               string
}

func refuseAll(t *testing.T, s *apitest.Server, calls []badCall) {
	t.Helper()
	for _, c := range calls {
		before := rowCounts(s)
		r := s.Call(c.method, c.path, c.token, c.body)
		if r.Status != c.status {
			t.Fatalf("%s: status %d, want %d: %s", c.name, r.Status, c.status, r.Body)
		}
		if e := r.Err(t).Error; e.Code != c.code || e.Field != c.field {
			t.Fatalf("%s: error %s/%s, want %s/%s: %s", c.name, e.Code, e.Field, c.code, c.field, r.Body)
		}
		if after := rowCounts(s); !equalCounts(before, after) {
			t.Fatalf("%s wrote rows: %v → %v", c.name, before, after)
		}
	}
}

type eventRow struct {
	Type      string         `json:"type"`
	ActorRole string         `json:"actor_role"`
	ActorID   string         `json:"actor_id"`
	Data      map[string]any `json:"data"`
}

func eventsOf(t *testing.T, s *apitest.Server, id string) []eventRow {
	t.Helper()
	var list struct{ Items []eventRow }
	s.Must(http.StatusOK, "GET", "/v1/requests/"+id+"/events", s.Token(auth.Ops, "alice"), nil, &list)
	return list.Items
}

func eventTypes(evs []eventRow) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Type
	}
	return out
}

func acceptOffer(t *testing.T, s *apitest.Server, techID, requestID string) {
	t.Helper()
	o := waitOffer(t, s, techID)
	if o.RequestID != requestID {
		t.Fatalf("offer for %s, want %s", o.RequestID, requestID)
	}
	s.Must(http.StatusOK, "POST", "/v1/offers/"+o.ID+"/accept", s.Token(auth.Technician, techID), nil, nil)
}

type fieldRequest struct {
	fullRequest
	NoShowDueAt  *time.Time `json:"no_show_due_at"`
	CancelReason *string    `json:"cancel_reason"`
	CustomerID   string     `json:"customer_id"`
	Visits       int        `json:"visits"`
}

func requestState(t *testing.T, s *apitest.Server, id string) fieldRequest {
	t.Helper()
	var r fieldRequest
	s.Must(http.StatusOK, "GET", "/v1/requests/"+id, s.Token(auth.Ops, "alice"), nil, &r)
	return r
}

// TestNoShowOverHTTP: a technician at the door reports nobody there (refused
// from afar and for bad input, writing nothing); the durable timer closes the
// request as a no-show; on a second job the customer says they are home and
// the job completes; a third is handed back with a reason code and searched
// again.
func TestNoShowOverHTTP(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, "postgres", dbtest.RedisDBApp, apitest.Env("ONSITE_OFFER_STRATEGY", "sequential"),
		apitest.Env("ONSITE_NO_SHOW_WAIT", "5s"), apitest.Env("ONSITE_ARRIVAL_RADIUS", "250"))
	techs := onboard(t, s, 120, 4000)
	nina, otto := s.Token(auth.Technician, techs[0]), s.Token(auth.Technician, techs[1])
	carla := s.Token(auth.Customer, "carla")
	newRequest := func() string {
		var r fullRequest
		s.Must(http.StatusCreated, "POST", "/v1/requests", carla, map[string]any{"skill": "router_replace", "lat": 47.3769, "lng": 8.5417}, &r)
		return r.ID
	}

	first := newRequest()
	acceptOffer(t, s, techs[0], first)
	notHome := "/v1/jobs/" + first + "/not-home"
	refuseAll(t, s, []badCall{
		{"empty body", "POST", notHome, nina, "", 400, "malformed", ""},
		{"unknown field", "POST", notHome, nina, map[string]any{"notes": "x"}, 400, "malformed", "notes"},
		{"note too long", "POST", notHome, nina, map[string]any{"note": strings.Repeat("x", 501)}, 422, "invalid", "note"},
		{"not their job", "POST", notHome, otto, map[string]any{}, 404, "not_found", ""},
		{"a customer", "POST", notHome, carla, map[string]any{}, 403, "forbidden", ""},
		{"home with nobody waiting", "POST", "/v1/requests/" + first + "/home", carla, nil, 409, "conflict", ""},
	})
	var waiting fieldRequest
	s.Must(http.StatusOK, "POST", notHome, nina, map[string]any{"note": "rang twice"}, &waiting)
	if waiting.State != "on_site" || waiting.NoShowDueAt == nil || waiting.Visits != 1 {
		t.Fatalf("waiting at the door: %+v", waiting)
	}
	if r := s.Call("POST", notHome, nina, map[string]any{}); r.Status != http.StatusConflict {
		t.Fatalf("second report: %d %s", r.Status, r.Body)
	}
	s.Must(http.StatusNotFound, "POST", "/v1/requests/"+first+"/home", s.Token(auth.Customer, "someone-else"), nil, nil)
	apitest.Eventually(t, 20*time.Second, "the no-show timer", func() bool { return requestState(t, s, first).State == "no_show" })
	if r := requestState(t, s, first); r.Outcome == nil || *r.Outcome != "no_show" || r.NoShowDueAt != nil {
		t.Fatalf("no-show: %+v", r)
	}
	if types := eventTypes(eventsOf(t, s, first)); !strings.HasSuffix(strings.Join(types, ","), "on_site,customer_not_home,no_show") {
		t.Fatalf("events: %v", types)
	}

	// The customer is home: the wait ends and the job goes on.
	second := newRequest()
	acceptOffer(t, s, techs[0], second)
	s.Must(http.StatusOK, "POST", "/v1/jobs/"+second+"/not-home", nina, map[string]any{}, nil)
	var home fieldRequest
	s.Must(http.StatusOK, "POST", "/v1/requests/"+second+"/home", carla, nil, &home)
	if home.State != "on_site" || home.NoShowDueAt != nil {
		t.Fatalf("after home: %+v", home)
	}
	s.Must(http.StatusOK, "POST", "/v1/jobs/"+second+"/complete", nina, map[string]any{"outcome": "fixed"}, &home)
	if home.State != "completed" {
		t.Fatalf("after complete: %s", home.State)
	}

	// A hand-back: a reason code, searched again without the technician.
	third := newRequest()
	acceptOffer(t, s, techs[0], third)
	handBack := "/v1/jobs/" + third + "/hand-back"
	refuseAll(t, s, []badCall{
		{"no reason", "POST", handBack, nina, map[string]any{}, 422, "invalid", "reason"},
		{"free words as the reason", "POST", handBack, nina, map[string]any{"reason": "van broke"}, 422, "invalid", "reason"},
		{"other without a note", "POST", handBack, nina, map[string]any{"reason": "other"}, 422, "invalid", "note"},
		{"wrong type", "POST", handBack, nina, map[string]any{"reason": 3}, 400, "malformed", "reason"},
		{"not their job", "POST", handBack, otto, map[string]any{"reason": "emergency"}, 404, "not_found", ""},
	})
	var back fieldRequest
	s.Must(http.StatusOK, "POST", handBack, nina, map[string]any{"reason": "vehicle_problem", "note": "flat tyre"}, &back)
	if back.State != "searching" || back.TechnicianID != nil {
		t.Fatalf("after hand-back: %+v", back)
	}
	evs := eventsOf(t, s, third)
	var handed *eventRow
	for i := range evs {
		if evs[i].Type == "handed_back" {
			handed = &evs[i]
		}
	}
	if handed == nil || handed.ActorID != techs[0] || handed.Data["reason"] != "vehicle_problem" || handed.Data["note"] != "flat tyre" {
		t.Fatalf("handed_back event: %+v", handed)
	}
	acceptOffer(t, s, techs[1], third)
}

// TestDeviceExceptionsOverHTTP: a device's request its owner never confirms
// is cancelled by its timer; a fault of another skill opens its own request.
func TestDeviceExceptionsOverHTTP(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, "sqlite", dbtest.RedisDBApp, apitest.Env("ONSITE_CONFIRM_TTL", "5s"))
	onboard(t, s)
	ops := s.Token(auth.Ops, "alice")
	s.Must(http.StatusCreated, "POST", "/v1/skills", ops, map[string]string{"code": "wifi_setup", "name": "Wi-Fi setup"}, nil)
	var key, auto machineKey
	s.Must(http.StatusCreated, "POST", "/v1/machine-keys", ops, map[string]any{"owner": "owner-1", "name": "router"}, &key)
	s.Must(http.StatusCreated, "POST", "/v1/machine-keys", ops, map[string]any{"owner": "owner-2", "name": "router", "auto_confirm": true}, &auto)

	var pending fieldRequest
	s.Must(http.StatusCreated, "POST", "/v1/requests", key.Secret, map[string]any{"skill": "router_replace", "lat": 47.3769, "lng": 8.5417,
		"device_id": "rt-1", "fault_code": "WAN_DOWN"}, &pending, "Idempotency-Key", "p1")
	if pending.State != "pending_confirmation" {
		t.Fatalf("device request: %s", pending.State)
	}
	apitest.Eventually(t, 20*time.Second, "the confirmation to expire", func() bool { return requestState(t, s, pending.ID).State == "cancelled" })
	if r := requestState(t, s, pending.ID); r.CancelReason == nil || *r.CancelReason != "confirmation_expired" {
		t.Fatalf("expired: %+v", r)
	}
	if types := eventTypes(eventsOf(t, s, pending.ID)); strings.Join(types, ",") != "created,confirmation_expired,cancelled" {
		t.Fatalf("events: %v", types)
	}
	s.Must(http.StatusConflict, "POST", "/v1/requests/"+pending.ID+"/confirm", s.Token(auth.Customer, "owner-1"), map[string]any{}, nil)

	fault := func(idem, skill, code string, status int) fieldRequest {
		var r fieldRequest
		s.Must(status, "POST", "/v1/requests", auto.Secret, map[string]any{"skill": skill, "lat": 47.3769, "lng": 8.5417,
			"device_id": "box-9", "fault_code": code}, &r, "Idempotency-Key", idem)
		return r
	}
	router := fault("f1", "router_replace", "WAN_DOWN", http.StatusCreated)
	wifi := fault("f2", "wifi_setup", "WIFI_WEAK", http.StatusCreated)
	again := fault("f3", "wifi_setup", "WIFI_GONE", http.StatusOK) // attached to the open Wi-Fi request
	if router.ID == wifi.ID || again.ID != wifi.ID {
		t.Fatalf("router %s, wifi %s, second wifi fault %s", router.ID, wifi.ID, again.ID)
	}
}

// TestIntakeOverHTTP: a dispatcher takes a request for a caller (bad input
// refused, writing nothing; a resend with the same key answers the first);
// the caller's account is made by phone, the phone counts as proved, so the
// caller gets the same texts as anyone; the audit trail names the
// dispatcher; the tracking link works. Another account giving that phone
// for its own request is still withheld.
func TestIntakeOverHTTP(t *testing.T) {
	t.Parallel()
	s, tw := startWithTwilio(t, "sqlite", apitest.Env("ONSITE_OFFER_STRATEGY", "sequential"))
	techs := onboard(t, s, 500)
	alice := s.Token(auth.Ops, "alice")
	phone := "+41791234500"
	body := func(edit func(b map[string]any)) map[string]any {
		b := map[string]any{"name": "Heidi Muster", "phone": phone, "locale": "en", "skill": "router_replace",
			"lat": 47.3769, "lng": 8.5417, "address": "Bahnhofstrasse 1", "notes": "no internet at home"}
		edit(b)
		return b
	}
	refuseAll(t, s, []badCall{
		{"a customer", "POST", "/v1/intake", s.Token(auth.Customer, "carla"), body(func(map[string]any) {}), 403, "forbidden", ""},
		{"empty body", "POST", "/v1/intake", alice, "", 400, "malformed", ""},
		{"unknown field", "POST", "/v1/intake", alice, body(func(b map[string]any) { b["customer_id"] = "x" }), 400, "malformed", "customer_id"},
		{"no name", "POST", "/v1/intake", alice, body(func(b map[string]any) { delete(b, "name") }), 422, "invalid", "name"},
		{"no phone", "POST", "/v1/intake", alice, body(func(b map[string]any) { delete(b, "phone") }), 422, "invalid", "phone"},
		{"not E.164", "POST", "/v1/intake", alice, body(func(b map[string]any) { b["phone"] = "079 123 45 00" }), 422, "invalid", "phone"},
		{"not texted there", "POST", "/v1/intake", alice, body(func(b map[string]any) { b["phone"] = "+12025550123" }), 422, "invalid", "phone"},
		{"unknown skill", "POST", "/v1/intake", alice, body(func(b map[string]any) { b["skill"] = "plumbing" }), 422, "invalid", "skill"},
		{"no place", "POST", "/v1/intake", alice, body(func(b map[string]any) { delete(b, "lng") }), 422, "invalid", "lng"},
		{"latitude out of range", "POST", "/v1/intake", alice, body(func(b map[string]any) { b["lat"] = 91 }), 422, "invalid", "lat"},
		{"window ends before it starts", "POST", "/v1/intake", alice, body(func(b map[string]any) {
			b["window"] = map[string]any{"start": time.Now().Add(3 * time.Hour), "end": time.Now().Add(2 * time.Hour)}
		}), 422, "invalid", "window.end"},
	})

	var in struct {
		Request  fieldRequest `json:"request"`
		Customer struct {
			ID      string `json:"id"`
			Created bool   `json:"created"`
		} `json:"customer"`
		Tracking struct {
			Token string `json:"token"`
			URL   string `json:"url"`
		} `json:"tracking"`
	}
	s.Must(http.StatusCreated, "POST", "/v1/intake", alice, body(func(map[string]any) {}), &in, "Idempotency-Key", "call-1")
	var resent struct {
		Request fieldRequest `json:"request"`
	}
	s.Must(http.StatusCreated, "POST", "/v1/intake", alice, body(func(map[string]any) {}), &resent, "Idempotency-Key", "call-1")
	if resent.Request.ID != in.Request.ID || s.Rows("requests") != 1 {
		t.Fatalf("resend made another request: %s %s (%d)", in.Request.ID, resent.Request.ID, s.Rows("requests"))
	}
	if !in.Customer.Created || in.Request.CustomerID != in.Customer.ID || in.Request.State != "searching" ||
		!strings.HasPrefix(in.Tracking.URL, publicURL+"/track/") {
		t.Fatalf("intake: %+v", in)
	}
	evs := eventsOf(t, s, in.Request.ID)
	if evs[0].Type != "created" || evs[0].ActorRole != "ops" || evs[0].ActorID != "alice" || evs[0].Data["intake"] != true {
		t.Fatalf("created event: %+v", evs[0])
	}
	s.Must(http.StatusOK, "GET", "/v1/track/"+in.Tracking.Token, "", nil, nil)
	// The caller, signing in later with the phone, sees the request as theirs.
	s.Must(http.StatusOK, "GET", "/v1/requests/"+in.Request.ID, s.Token(auth.Customer, in.Customer.ID), nil, nil)

	acceptOffer(t, s, techs[0], in.Request.ID)
	waitSMS(t, tw, phone, "will take care of your Replace a router request")
	s.Must(http.StatusOK, "POST", "/v1/jobs/"+in.Request.ID+"/arrived", s.Token(auth.Technician, techs[0]), nil, nil)
	s.Must(http.StatusOK, "POST", "/v1/jobs/"+in.Request.ID+"/complete", s.Token(auth.Technician, techs[0]), map[string]any{"outcome": "fixed"}, nil)

	// Another account naming that phone for its own request is not proved by
	// the dispatcher's word for Heidi's account.
	mallory := s.Token(auth.Customer, "mallory")
	var theirs fullRequest
	s.Must(http.StatusCreated, "POST", "/v1/requests", mallory, map[string]any{"skill": "router_replace", "lat": 47.3769, "lng": 8.5417, "phone": phone}, &theirs)
	acceptOffer(t, s, techs[0], theirs.ID)
	apitest.Eventually(t, 15*time.Second, "the text to an unproved phone to be withheld", func() bool {
		var n int64
		s.App.DB.Table("sms_withheld").Where("request_id = ? AND to_phone = ? AND reason = 'contact_unconfirmed'", theirs.ID, phone).Count(&n)
		return n > 0
	})
}
