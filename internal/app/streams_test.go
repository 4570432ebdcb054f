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

// TestStreamsEndWithTheirSubject: a customer's request stream and a
// tracking link's stream close with a final "end" event once the request
// is closed, instead of staying open for nothing.
func TestStreamsEndWithTheirSubject(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, "postgres", dbtest.RedisDBApp)
	cust := s.Token(auth.Customer, "carla")
	s.Must(http.StatusCreated, "POST", "/v1/skills", s.Token(auth.Ops, "alice"), map[string]string{"code": "wifi_setup", "name": "Wi-Fi"}, nil)
	var req struct{ ID string }
	s.Must(http.StatusCreated, "POST", "/v1/requests", cust, map[string]any{"skill": "wifi_setup", "lat": 47.3769, "lng": 8.5417}, &req)
	var link struct{ Token string }
	s.Must(http.StatusCreated, "POST", "/v1/requests/"+req.ID+"/share", cust, nil, &link)
	own := s.Stream("/v1/requests/"+req.ID+"/stream", cust, "")
	tracking := s.Stream("/v1/track/"+link.Token+"/stream", "", "")
	time.Sleep(300 * time.Millisecond) // both streams read from now on
	s.Must(http.StatusOK, "POST", "/v1/requests/"+req.ID+"/cancel", cust, map[string]string{"reason": "fixed it myself"}, nil)
	for name, stream := range map[string]<-chan apitest.SSE{"request stream": own, "tracking stream": tracking} {
		var events []string
		timeout := time.After(15 * time.Second)
	read:
		for {
			select {
			case ev, open := <-stream:
				if !open {
					break read
				}
				events = append(events, ev.Event+" "+ev.Data)
			case <-timeout:
				t.Fatalf("%s still open 15 s after the cancellation: %q", name, events)
			}
		}
		if n := len(events); n == 0 || events[n-1] != `end {"reason":"cancelled"}` {
			t.Fatalf("%s ended with %q, want a final end event", name, events)
		}
		if name == "tracking stream" && strings.Contains(strings.Join(events, " "), "carla") {
			t.Fatalf("the tracking stream carried request data: %q", events)
		}
	}
}

// TestBadBytesAreBadInput: NUL and bytes that are not UTF-8 in a path, a
// query, a header or a JSON body are 400 malformed in the shared error shape
// and write nothing (each of these answered 500 once).
func TestBadBytesAreBadInput(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, "sqlite", dbtest.RedisDBApp, apitest.Env("ONSITE_WORKERS", "false"))
	cust := s.Token(auth.Customer, "carla")
	ops := s.Token(auth.Ops, "alice")
	s.Must(http.StatusCreated, "POST", "/v1/skills", ops, map[string]string{"code": "wifi_setup", "name": "Wi-Fi"}, nil)
	before := s.Rows("requests") + s.Rows("idempotency_keys")
	for _, tt := range []struct {
		name, method, path string
		body               any
		header             []string
	}{
		{"NUL in the path", "GET", "/v1/requests/r%00x", nil, nil},
		{"NUL in the query", "GET", "/v1/requests?state=%00", nil, nil},
		{"not UTF-8 in the query", "GET", "/v1/requests?state=%ff", nil, nil},
		{"not UTF-8 in Idempotency-Key", "POST", "/v1/requests", `{"skill":"wifi_setup","lat":47.37,"lng":8.54}`, []string{"Idempotency-Key", "key-\xff"}},
		{"not UTF-8 in the body", "POST", "/v1/requests", "{\"skill\":\"wifi_setup\",\"lat\":47.37,\"lng\":8.54,\"address\":\"Bahnhof\xffstrasse\"}", nil},
		{"a raw NUL in the body", "POST", "/v1/requests", "{\"skill\":\"wifi_setup\",\"lat\":47.37,\"lng\":8.54,\"notes\":\"a\x00b\"}", nil},
	} {
		r := s.Call(tt.method, tt.path, cust, tt.body, tt.header...)
		if r.Status != http.StatusBadRequest || r.Err(t).Error.Code != "malformed" {
			t.Errorf("%s: %d %s, want 400 malformed", tt.name, r.Status, r.Body)
		}
	}
	if after := s.Rows("requests") + s.Rows("idempotency_keys"); after != before {
		t.Fatalf("bad bytes wrote %d rows", after-before)
	}
}
