package app_test

import (
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onsite/onsite/internal/apitest"
	"github.com/onsite/onsite/internal/app"
	"github.com/onsite/onsite/internal/auth"
	"github.com/onsite/onsite/internal/config"
	"github.com/onsite/onsite/internal/dbtest"
	"github.com/onsite/onsite/internal/twiliotest"
)

const publicURL = "https://onsite.example.test"

func startWithTwilio(t *testing.T, engine string, extra ...apitest.Option) (*apitest.Server, *twiliotest.Server) {
	t.Helper()
	tw := twiliotest.Start(t)
	opts := append([]apitest.Option{
		apitest.Env("TWILIO_ACCOUNT_SID", twiliotest.AccountSID), apitest.Env("TWILIO_AUTH_TOKEN", twiliotest.AuthToken),
		apitest.Env("TWILIO_FROM", twiliotest.From), apitest.Env("ONSITE_PUBLIC_URL", publicURL),
		apitest.Env("TWILIO_API_URL", tw.URL()),
	}, extra...)
	return apitest.Start(t, engine, dbtest.RedisDBApp, opts...), tw
}

// sms posts an inbound SMS webhook as Twilio would, signed for the public URL
// (or with a wrong signature).
func sms(s *apitest.Server, from, body string, goodSignature bool) apitest.Response {
	form := url.Values{"From": {from}, "To": {twiliotest.From}, "Body": {body}, "MessageSid": {fmt.Sprintf("SM%016x", rand.Uint64())}} // each its own, as Twilio gives
	token := twiliotest.AuthToken
	if !goodSignature {
		token = "not-the-token"
	}
	sig := twiliotest.Sign(token, publicURL+"/v1/webhooks/twilio/sms", form)
	return s.Call("POST", "/v1/webhooks/twilio/sms", "", []byte(form.Encode()),
		"Content-Type", "application/x-www-form-urlencoded", "X-Twilio-Signature", sig)
}

func statusCallback(s *apitest.Server, sid, status string) apitest.Response {
	form := url.Values{"MessageSid": {sid}, "MessageStatus": {status}, "ErrorCode": {"30003"}}
	sig := twiliotest.Sign(twiliotest.AuthToken, publicURL+"/v1/webhooks/twilio/status", form)
	return s.Call("POST", "/v1/webhooks/twilio/status", "", []byte(form.Encode()),
		"Content-Type", "application/x-www-form-urlencoded", "X-Twilio-Signature", sig)
}

// confirmContact makes phone a contact phone of the customer through the
// API: a code texted there, typed back.
func confirmContact(t *testing.T, s *apitest.Server, tw *twiliotest.Server, token, phone string) {
	t.Helper()
	s.Must(http.StatusAccepted, "POST", "/v1/me/contacts", token, map[string]string{"phone": phone}, nil)
	code := codeRE.FindStringSubmatch(waitSMS(t, tw, phone, "Onsite: someone asked").Get("Body"))
	if code == nil {
		t.Fatalf("no code in the text to %s", phone)
	}
	s.Must(http.StatusOK, "POST", "/v1/me/contacts/confirm", token, map[string]string{"phone": phone, "code": code[1]}, nil)
}

func waitSMS(t *testing.T, tw *twiliotest.Server, to, contains string) url.Values {
	t.Helper()
	var got url.Values
	apitest.Eventually(t, 15*time.Second, "an SMS to "+to+" containing "+contains, func() bool {
		for _, m := range tw.Messages() {
			if m.Get("To") == to && strings.Contains(m.Get("Body"), contains) {
				got = m
				return true
			}
		}
		return false
	})
	return got
}

// TestSMSBothWays: the offer goes out by SMS through the real twilio-go
// client, the technician answers "ja" by SMS, the customer is told in German;
// a failed offer SMS hands the job to the next technician; bad signatures are
// refused.
func TestSMSBothWays(t *testing.T) {
	t.Parallel()
	s, tw := startWithTwilio(t, "postgres", apitest.Env("ONSITE_OFFER_STRATEGY", "sequential"), apitest.Env("ONSITE_OFFER_TIMEOUT", "5m"))
	techs := onboard(t, s, 1000, 3000, 6000)
	phones := []string{"+41795550000", "+41795550001", "+41795550002"}
	cust := s.Token(auth.Customer, "carla")
	confirmContact(t, s, tw, cust, "+41791110000")
	var req fullRequest
	s.Must(http.StatusCreated, "POST", "/v1/requests", cust, map[string]any{
		"skill": "router_replace", "lat": 47.3769, "lng": 8.5417, "address": "Bahnhofstrasse 1", "phone": "+41791110000", "locale": "de"}, &req)

	offer := waitSMS(t, tw, phones[0], "Reply YES")
	if offer.Get("From") != twiliotest.From || !strings.HasPrefix(offer.Get("StatusCallback"), publicURL+"/v1/webhooks/twilio/status?message=") ||
		!strings.Contains(offer.Get("Body"), "Replace a router") || strings.Contains(offer.Get("Body"), "router_replace") ||
		!strings.Contains(offer.Get("Body"), "the address is in the app") ||
		strings.Contains(offer.Get("Body"), "Bahnhofstrasse") {
		t.Fatalf("offer SMS %v", offer)
	}
	if r := sms(s, phones[0], "ja", false); r.Status != http.StatusForbidden || r.Err(t).Error.Code != "forbidden" {
		t.Fatalf("bad signature: %d %s", r.Status, r.Body)
	}
	if r := s.Call("POST", "/v1/webhooks/twilio/sms", "", "From=%2B41795550000&Body=YES", "Content-Type", "application/x-www-form-urlencoded"); r.Status != http.StatusForbidden {
		t.Fatalf("no signature: %d", r.Status)
	}
	if r := sms(s, phones[0], "what?", true); r.Status != http.StatusOK || !strings.Contains(string(r.Body), "Reply YES to accept") {
		t.Fatalf("help: %d %s", r.Status, r.Body)
	}
	r := sms(s, phones[0], "  Ja ", true)
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), "<Response><Message>The job is yours: Replace a router.") {
		t.Fatalf("yes by SMS: %d %s", r.Status, r.Body)
	}
	s.Must(http.StatusOK, "GET", "/v1/requests/"+req.ID, cust, nil, &req)
	if req.State != "assigned" || *req.TechnicianID != techs[0] {
		t.Fatalf("after SMS yes: %+v", req)
	}
	waitSMS(t, tw, "+41791110000", "Tech kommt für Ihren Auftrag Replace a router")
	if r := sms(s, phones[0], "yes", true); !strings.Contains(string(r.Body), "no open Onsite offer") {
		t.Fatalf("second yes: %s", r.Body)
	}

	// The second request's offer SMS to technician 1 fails: technician 2 gets it.
	var second fullRequest
	s.Must(http.StatusCreated, "POST", "/v1/requests", cust, map[string]any{"skill": "router_replace", "lat": 47.3769, "lng": 8.5417}, &second)
	waitSMS(t, tw, phones[1], "Reply YES")
	var sid string
	apitest.Eventually(t, 10*time.Second, "the offer message to be recorded as sent", func() bool {
		return s.App.DB.Table("messages").Where("to_phone = ? AND kind = 'offer' AND state = 'sent'", phones[1]).Select("provider_sid").Scan(&sid).Error == nil && sid != ""
	})
	if r := statusCallback(s, sid, "undelivered"); r.Status != http.StatusNoContent {
		t.Fatalf("status callback: %d %s", r.Status, r.Body)
	}
	waitSMS(t, tw, phones[2], "Reply YES")
	var state string
	s.App.DB.Table("messages").Where("provider_sid = ?", sid).Select("state").Scan(&state)
	if state != "undelivered" {
		t.Fatalf("message state %s", state)
	}
	var events struct {
		Items []struct{ Type string } `json:"items"`
	}
	s.Must(http.StatusOK, "GET", "/v1/requests/"+second.ID+"/events", s.Token(auth.Ops, "alice"), nil, &events)
	found := false
	for _, e := range events.Items {
		found = found || e.Type == "offer_sms_failed"
	}
	if !found {
		t.Fatalf("no offer_sms_failed event: %+v", events.Items)
	}
	// every message went out once
	seen := map[string]bool{}
	for _, m := range tw.Messages() {
		key := m.Get("To") + "|" + m.Get("Body")
		if seen[key] {
			t.Errorf("sent twice: %s", key)
		}
		seen[key] = true
	}
}

// TestSMSYesRacesAppAccept: 200 rounds of one technician answering YES by SMS
// while another accepts in the app at the same instant; one wins each time.
func TestSMSYesRacesAppAccept(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("200 rounds")
	}
	s, _ := startWithTwilio(t, "postgres", apitest.Env("ONSITE_WORKERS", "false"),
		apitest.Env("ONSITE_OFFER_STRATEGY", "wave"), apitest.Env("ONSITE_WAVE_SIZE", "2"))
	techs := onboard(t, s, 1000, 1100)
	ops := s.Token(auth.Ops, "alice")
	cust := s.Token(auth.Customer, "carla")
	appTok := s.Token(auth.Technician, techs[1])
	for round := range 200 {
		var req fullRequest
		s.Must(http.StatusCreated, "POST", "/v1/requests", cust, map[string]any{"skill": "router_replace", "lat": 47.3769, "lng": 8.5417}, &req)
		res, err := s.App.Dispatch.Match(t.Context(), req.ID)
		if err != nil || len(res.Offered) != 2 {
			t.Fatalf("round %d: %+v %v", round, res, err)
		}
		appOffer := res.Offered[0].ID
		if res.Offered[0].TechnicianID != techs[1] {
			appOffer = res.Offered[1].ID
		}
		var wg sync.WaitGroup
		var smsReply apitest.Response
		var appReply apitest.Response
		wg.Add(2)
		go func() { defer wg.Done(); smsReply = sms(s, "+41795550000", "YES", true) }()
		go func() { defer wg.Done(); appReply = s.Call("POST", "/v1/offers/"+appOffer+"/accept", appTok, nil) }()
		wg.Wait()
		smsWon := strings.Contains(string(smsReply.Body), "The job is yours")
		appWon := appReply.Status == http.StatusOK
		if smsWon == appWon {
			t.Fatalf("round %d: sms %s, app %d %s", round, smsReply.Body, appReply.Status, appReply.Body)
		}
		if !appWon && appReply.Status != http.StatusConflict {
			t.Fatalf("round %d: app loser got %d", round, appReply.Status)
		}
		var live int64
		s.App.DB.Table("assignments").Where("request_id = ? AND ended_at IS NULL", req.ID).Count(&live)
		if live != 1 {
			t.Fatalf("round %d: %d live assignments", round, live)
		}
		s.Must(http.StatusOK, "POST", "/v1/requests/"+req.ID+"/cancel", ops, map[string]string{"reason": "next round"}, nil)
	}
}

// TestTwilioCheckedAtStart: with Twilio unreachable at start Onsite starts,
// and /readyz answers 503 naming the SMS provider until a background check
// reaches the account; wrong credentials stop the start (TestServeRefuses…
// in cmd/onsite for `onsite serve`).
func TestTwilioCheckedAtStart(t *testing.T) {
	t.Parallel()
	tw := twiliotest.Start(t)
	tw.SetDown(true)
	s := apitest.Start(t, "sqlite", dbtest.RedisDBApp, apitest.Env("ONSITE_WORKERS", "false"),
		apitest.Env("TWILIO_ACCOUNT_SID", twiliotest.AccountSID), apitest.Env("TWILIO_AUTH_TOKEN", twiliotest.AuthToken),
		apitest.Env("TWILIO_FROM", twiliotest.From), apitest.Env("TWILIO_API_URL", tw.URL()))
	var ready struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks"`
	}
	r := s.Must(http.StatusServiceUnavailable, "GET", "/readyz", "", nil, &ready)
	if ready.Checks["sms"] == "ok" || !strings.Contains(ready.Checks["sms"], "twilio account") || ready.Checks["database"] != "ok" {
		t.Fatalf("readyz with Twilio down: %s", r.Body)
	}
	tw.SetDown(false)
	apitest.Eventually(t, 15*time.Second, "/readyz to be 200 once Twilio answers", func() bool {
		return s.Call("GET", "/readyz", "", nil).Status == http.StatusOK
	})
	s.Must(http.StatusOK, "GET", "/readyz", "", nil, &ready)
	if ready.Checks["sms"] != "ok" || tw.AccountFetches() != 1 {
		t.Fatalf("readyz once Twilio answers: %+v, %d account fetches", ready, tw.AccountFetches())
	}

	// wrong credentials: no app
	cfg, err := config.Load([]string{"ONSITE_DATA_DIR=" + t.TempDir(), "REDIS_URL=" + dbtest.RedisURL(dbtest.RedisDBApp),
		"TWILIO_ACCOUNT_SID=" + twiliotest.AccountSID, "TWILIO_AUTH_TOKEN=notthetoken", "TWILIO_FROM=" + twiliotest.From, "TWILIO_API_URL=" + tw.URL()})
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.New(t.Context(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), time.Now)
	if err == nil {
		a.Close()
		t.Fatal("started with credentials Twilio refuses")
	}
	if !strings.Contains(err.Error(), "Twilio refused TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN") || !strings.Contains(err.Error(), "401") {
		t.Fatalf("error %v", err)
	}
}
