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
