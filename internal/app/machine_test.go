package app_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/onsite/onsite/internal/apitest"
	"github.com/onsite/onsite/internal/auth"
	"github.com/onsite/onsite/internal/dbtest"
)

type machineKey struct {
	ID          string `json:"id"`
	Secret      string `json:"secret"`
	Owner       string `json:"owner"`
	AutoConfirm bool   `json:"auto_confirm"`
}

// TestConfirmBySMSLink: the owner of a device is texted a link that confirms
// the request it opened, without an account.
func TestConfirmBySMSLink(t *testing.T) {
	t.Parallel()
	s, tw := startWithTwilio(t, "sqlite")
	ops := s.Token(auth.Ops, "alice")
	s.Must(http.StatusCreated, "POST", "/v1/skills", ops, map[string]string{"code": "router_replace", "name": "Router"}, nil)
	var key machineKey
	s.Must(http.StatusUnprocessableEntity, "POST", "/v1/machine-keys", ops, map[string]any{"owner": "o", "name": "n", "owner_phone": "123"}, nil)
	s.Must(http.StatusCreated, "POST", "/v1/machine-keys", ops, map[string]any{"owner": "owner-5", "name": "router", "owner_phone": "+41791239999"}, &key)
	var req fullRequest
	s.Must(http.StatusCreated, "POST", "/v1/requests", key.Secret, map[string]any{"skill": "router_replace", "lat": 47.3769, "lng": 8.5417,
		"device_id": "rt-1", "fault_code": "WAN_DOWN"}, &req, "Idempotency-Key", "x1")
	sms := waitSMS(t, tw, "+41791239999", "Confirm: ")
	link := sms.Get("Body")[strings.Index(sms.Get("Body"), publicURL):]
	token := link[strings.LastIndex(link, "/")+1:]
	if page := s.Must(http.StatusOK, "GET", "/confirm/"+token, "", nil, nil); !strings.Contains(string(page.Body), "/v1/confirm/") {
		t.Fatal("no confirmation page")
	}
	s.Must(http.StatusNotFound, "POST", "/v1/confirm/"+token+"x", "", map[string]any{}, nil)
	s.Must(http.StatusOK, "POST", "/v1/confirm/"+token, "", map[string]any{}, &req)
	if req.State != "searching" {
		t.Fatalf("after the link: %s", req.State)
	}
	s.Must(http.StatusConflict, "POST", "/v1/confirm/"+token, "", map[string]any{}, nil)
}

// TestMachineCustomers: ops creates a key (a retried create answers the
// first body), a device opens a request with it that waits for its owner, a
// second fault joins the open request, the owner confirms, a revoked key
// stops working, and an auto-confirm key's requests search at once.
func TestMachineCustomers(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, "postgres", dbtest.RedisDBApp, apitest.Env("ONSITE_WORKERS", "false"))
	onboard(t, s, 1000)
	ops := s.Token(auth.Ops, "alice")
	var key, again machineKey
	s.Must(http.StatusCreated, "POST", "/v1/machine-keys", ops, map[string]any{"owner": "owner-1", "name": "living-room router"}, &key, "Idempotency-Key", "k1")
	s.Must(http.StatusCreated, "POST", "/v1/machine-keys", ops, map[string]any{"owner": "owner-1", "name": "living-room router"}, &again, "Idempotency-Key", "k1")
	if key.Secret == "" || again.ID != key.ID || again.Secret != key.Secret || s.Rows("machine_keys") != 1 {
		t.Fatalf("keys %+v %+v (%d rows)", key, again, s.Rows("machine_keys"))
	}
	s.Must(http.StatusUnprocessableEntity, "POST", "/v1/machine-keys", ops, map[string]any{"name": "x"}, nil)
	var stored string
	s.App.DB.Table("machine_keys").Select("secret_hash").Scan(&stored)
	if stored == key.Secret || len(stored) != 64 {
		t.Fatal("the secret is not stored hashed")
	}

	fault := map[string]any{"skill": "router_replace", "lat": 47.3769, "lng": 8.5417, "device_id": "rt-42", "fault_code": "WAN_DOWN",
		"diagnostics": map[string]any{"uptime_s": 12, "wan": "no carrier"}}
	var req fullRequest
	s.Must(http.StatusCreated, "POST", "/v1/requests", key.Secret, fault, &req, "Idempotency-Key", "f1")
	if req.State != "pending_confirmation" || req.SLADeadline != nil {
		t.Fatalf("device request %+v", req)
	}
	// device fields are for machines
	s.Must(http.StatusUnprocessableEntity, "POST", "/v1/requests", s.Token(auth.Customer, "owner-1"), fault, nil)
	// two more faults at once join the open request
	var wg sync.WaitGroup
	for i, k := range []string{"f2", "f3"} {
		wg.Add(1)
		go func(i int, k string) {
			defer wg.Done()
			f := map[string]any{"skill": "router_replace", "lat": 47.3769, "lng": 8.5417, "device_id": "rt-42", "fault_code": "DNS_FAIL"}
			r := s.Call("POST", "/v1/requests", key.Secret, f, "Idempotency-Key", k)
			if r.Status != http.StatusOK {
				t.Errorf("fault %s: %d %s", k, r.Status, r.Body)
			}
		}(i, k)
	}
	wg.Wait()
	if n := s.Rows("requests"); n != 1 {
		t.Fatalf("%d requests for one device", n)
	}
	var faults struct {
		Faults    int    `json:"faults"`
		FaultCode string `json:"fault_code"`
		State     string `json:"state"`
	}
	owner := s.Token(auth.Customer, "owner-1")
	s.Must(http.StatusOK, "GET", "/v1/requests/"+req.ID, owner, nil, &faults)
	if faults.Faults != 3 || faults.FaultCode != "DNS_FAIL" {
		t.Fatalf("faults %+v", faults)
	}
	s.Must(http.StatusNotFound, "POST", "/v1/requests/"+req.ID+"/confirm", s.Token(auth.Customer, "someone"), map[string]any{}, nil)
	s.Must(http.StatusOK, "POST", "/v1/requests/"+req.ID+"/confirm", owner, map[string]any{}, &req)
	if req.State != "searching" || req.SLADeadline == nil {
		t.Fatalf("confirmed %+v", req)
	}
	s.Must(http.StatusConflict, "POST", "/v1/requests/"+req.ID+"/confirm", owner, map[string]any{}, nil)

	// revoked keys stop working
	s.Must(http.StatusNoContent, "DELETE", "/v1/machine-keys/"+key.ID, ops, nil, nil)
	s.Must(http.StatusUnauthorized, "GET", "/v1/requests/"+req.ID, key.Secret, nil, nil)
	s.Must(http.StatusNotFound, "DELETE", "/v1/machine-keys/"+key.ID, ops, nil, nil)

	// an auto-confirm key's request searches at once
	var auto machineKey
	s.Must(http.StatusCreated, "POST", "/v1/machine-keys", ops, map[string]any{"owner": "owner-2", "name": "car", "auto_confirm": true}, &auto)
	fault["device_id"] = "car-7"
	s.Must(http.StatusCreated, "POST", "/v1/requests", auto.Secret, fault, &req, "Idempotency-Key", "c1")
	if req.State != "searching" {
		t.Fatalf("auto-confirm: %s", req.State)
	}
}
