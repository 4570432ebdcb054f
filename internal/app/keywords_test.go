package app_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/onsite/onsite/internal/apitest"
	"github.com/onsite/onsite/internal/auth"
	"github.com/onsite/onsite/internal/twiliotest"
)

// TestSMSStopStartHelp: STOP, START and HELP work for anyone who texts
// Onsite, as carriers expect. A technician who replied STOP gets no offer
// texts (they are recorded as withheld; the offer itself stands in the
// app) until START; anyone else who writes is told that the number reads
// no replies.
func TestSMSStopStartHelp(t *testing.T) {
	t.Parallel()
	s, tw := startWithTwilio(t, "postgres", apitest.Env("ONSITE_OFFER_STRATEGY", "sequential"), apitest.Env("ONSITE_OFFER_TIMEOUT", "5m"))
	onboard(t, s, 1000)
	const techPhone, stranger = "+41795550000", "+41790000999"
	replies := []struct {
		from, body, want string
	}{
		{techPhone, "STOP", "no more texts"},
		{techPhone, " help ", "Everything is in the Onsite app"},
		{stranger, "hello, is anyone there?", "does not read replies"},
		{stranger, "Stop.", "no more texts"},
	}
	for _, r := range replies {
		got := sms(s, r.from, r.body, true)
		if got.Status != http.StatusOK || !strings.Contains(string(got.Body), r.want) {
			t.Fatalf("%s from %s: %d %s", r.body, r.from, got.Status, got.Body)
		}
	}
	var out []string
	s.App.DB.Raw("SELECT phone FROM sms_optouts ORDER BY phone").Scan(&out)
	if len(out) != 2 || out[0] != stranger || out[1] != techPhone {
		t.Fatalf("opted out: %v", out)
	}

	// An offer to the technician who said STOP is made, not texted.
	var req struct{ ID string }
	s.Must(http.StatusCreated, "POST", "/v1/requests", s.Token(auth.Customer, "carla"),
		map[string]any{"skill": "router_replace", "lat": 47.3769, "lng": 8.5417}, &req)
	apitest.Eventually(t, 15*time.Second, "the offer text to be withheld", func() bool {
		var n int64
		s.App.DB.Raw("SELECT count(*) FROM sms_withheld WHERE to_phone = ? AND reason = 'opted_out'", techPhone).Scan(&n)
		return n == 1
	})
	for _, m := range tw.Messages() {
		if m.Get("To") == techPhone {
			t.Fatalf("texted %s after STOP: %q", techPhone, m.Get("Body"))
		}
	}
	var offers struct{ Items []struct{ State string } }
	s.Must(http.StatusOK, "GET", "/v1/requests/"+req.ID+"/offers", s.Token(auth.Ops, "alice"), nil, &offers)
	if len(offers.Items) != 1 || offers.Items[0].State != "pending" {
		t.Fatalf("offers: %+v", offers)
	}

	if got := sms(s, techPhone, "START", true); !strings.Contains(string(got.Body), "on again") {
		t.Fatalf("START: %d %s", got.Status, got.Body)
	}
	s.App.DB.Raw("SELECT phone FROM sms_optouts").Scan(&out)
	if len(out) != 1 || out[0] != stranger {
		t.Fatalf("still opted out after START: %v", out)
	}
}

// TestInboundSMSReplayChangesNothing: a signed YES captured and sent again
// (the same MessageSid) is answered with nothing and changes nothing; the
// first one took the job.
func TestInboundSMSReplayChangesNothing(t *testing.T) {
	t.Parallel()
	s, tw := startWithTwilio(t, "postgres", apitest.Env("ONSITE_OFFER_STRATEGY", "sequential"), apitest.Env("ONSITE_OFFER_TIMEOUT", "5m"))
	onboard(t, s, 1000)
	const techPhone = "+41795550000"
	s.Must(http.StatusCreated, "POST", "/v1/requests", s.Token(auth.Customer, "carla"),
		map[string]any{"skill": "router_replace", "lat": 47.3769, "lng": 8.5417}, nil)
	waitSMS(t, tw, techPhone, "Reply YES")
	form := url.Values{"From": {techPhone}, "To": {twiliotest.From}, "Body": {"YES"}, "MessageSid": {"SMcaptured"}}
	post := func() apitest.Response {
		sig := twiliotest.Sign(twiliotest.AuthToken, publicURL+"/v1/webhooks/twilio/sms", form)
		return s.Call("POST", "/v1/webhooks/twilio/sms", "", []byte(form.Encode()),
			"Content-Type", "application/x-www-form-urlencoded", "X-Twilio-Signature", sig)
	}
	if r := post(); r.Status != http.StatusOK || !strings.Contains(string(r.Body), "The job is yours") {
		t.Fatalf("first YES: %d %s", r.Status, r.Body)
	}
	events := s.Rows("events")
	if r := post(); r.Status != http.StatusOK || strings.Contains(string(r.Body), "<Message>") {
		t.Fatalf("replayed YES: %d %s", r.Status, r.Body)
	}
	if n := s.Rows("events"); n != events {
		t.Fatalf("the replay wrote %d events", n-events)
	}
	form.Del("MessageSid")
	if r := post(); r.Status != http.StatusUnprocessableEntity && r.Status != http.StatusBadRequest {
		t.Fatalf("no MessageSid: %d %s", r.Status, r.Body)
	}
}
