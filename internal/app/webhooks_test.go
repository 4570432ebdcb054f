package app_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onsite/onsite/internal/apitest"
	"github.com/onsite/onsite/internal/auth"
	"github.com/onsite/onsite/internal/dbtest"
)

// TestOwnerWebhooks: an owner registers a URL; status changes of its
// requests arrive there signed (HMAC-SHA256 over timestamp and body),
// through the real task workers: a failing receiver gets the delivery again
// after the backoff, and a redelivery the owner asks for arrives with the
// same delivery id. (deliveries_test.go drives outages on a test clock.)
func TestOwnerWebhooks(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []map[string]any
	failures := 1
	var secret string
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		sig := r.Header.Get("Onsite-Signature")
		ts, v1, _ := strings.Cut(strings.TrimPrefix(sig, "t="), ",v1=")
		m := hmac.New(sha256.New, []byte(secret))
		m.Write([]byte(ts + "."))
		m.Write(body)
		if hex.EncodeToString(m.Sum(nil)) != v1 {
			t.Errorf("bad signature %q", sig)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if failures > 0 {
			failures--
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		var d map[string]any
		_ = json.Unmarshal(body, &d)
		got = append(got, d)
	}))
	t.Cleanup(recv.Close)
	s := apitest.Start(t, "postgres", dbtest.RedisDBApp, apitest.Env("ONSITE_OFFER_STRATEGY", "sequential"))
	onboard(t, s, 1000)
	owner := s.Token(auth.Customer, "owner-9")
	var ep struct {
		ID, Secret string
	}
	s.Must(http.StatusUnprocessableEntity, "POST", "/v1/webhooks", owner, map[string]string{"url": "not a url"}, nil)
	mu.Lock()
	s.Must(http.StatusCreated, "POST", "/v1/webhooks", owner, map[string]string{"url": recv.URL + "/onsite"}, &ep)
	secret = ep.Secret
	mu.Unlock()
	var list struct{ Items []struct{ ID string } }
	s.Must(http.StatusOK, "GET", "/v1/webhooks", owner, nil, &list)
	if len(list.Items) != 1 {
		t.Fatalf("list %+v", list)
	}
	var req fullRequest
	s.Must(http.StatusCreated, "POST", "/v1/requests", owner, map[string]any{"skill": "router_replace", "lat": 47.3769, "lng": 8.5417}, &req)
	s.Must(http.StatusOK, "POST", "/v1/requests/"+req.ID+"/cancel", owner, map[string]string{"reason": "fixed itself"}, nil)
	apitest.Eventually(t, 20*time.Second, "created and cancelled deliveries (one after a retry)", func() bool {
		mu.Lock()
		defer mu.Unlock()
		types := map[string]bool{}
		for _, d := range got {
			types[d["type"].(string)] = true
		}
		return types["created"] && types["cancelled"]
	})
	mu.Lock()
	var created string
	for _, d := range got {
		r := d["request"].(map[string]any)
		if r["id"] != req.ID {
			t.Errorf("delivery for %v", r["id"])
		}
		if d["type"] == "created" {
			created = d["id"].(string)
		}
	}
	mu.Unlock()
	s.Must(http.StatusAccepted, "POST", "/v1/webhooks/"+ep.ID+"/deliveries/"+created+"/redeliver", owner, nil, nil)
	apitest.Eventually(t, 10*time.Second, "the redelivery", func() bool {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, d := range got {
			if d["id"] == created {
				n++
			}
		}
		return n == 2
	})
	s.Must(http.StatusNotFound, "DELETE", "/v1/webhooks/"+ep.ID, s.Token(auth.Customer, "someone"), nil, nil)
	s.Must(http.StatusNoContent, "DELETE", "/v1/webhooks/"+ep.ID, owner, nil, nil)
}
