package app_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/onsite/onsite/internal/apitest"
	"github.com/onsite/onsite/internal/auth"
)

// crafted is what an attacker writes into everything a request carries.
var crafted = []string{"prize", "evil.example", "bank", "URGENT", "7946", "verify"}

const craftedText = "URGENT: your bank account is locked, verify at https://evil.example/x or call +44 20 7946 0000 to claim your prize"

func carriesCallerWords(body string) bool {
	for _, w := range crafted {
		if strings.Contains(body, w) {
			return true
		}
	}
	return false
}

// TestAbuseSendsNoCallerWords runs the SMS-pumping and phishing-relay attack
// of issue 15: a free customer account (signed in with its own phone) opens
// and cancels requests again and again, with crafted notes, addresses and
// cancellation reasons, giving foreign numbers and Swiss numbers nobody
// proved as the request phone, and asks for contact codes for them. The
// Twilio stand-in must receive no text to a foreign number, no text to an
// unproved phone but the fixed contact code, no caller words in any text,
// and no more texts to the attacker's own phone than its daily cap; the
// requests themselves still work.
func TestAbuseSendsNoCallerWords(t *testing.T) {
	t.Parallel()
	for _, engine := range []string{"postgres", "sqlite"} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			s, tw := startWithTwilio(t, engine, apitest.Env("ONSITE_OFFER_STRATEGY", "sequential"))
			techs := onboard(t, s, 1000)
			techPhone := "+41795550000"

			// a free account, signed in with its own phone
			const own = "+41791239001"
			s.Must(http.StatusAccepted, "POST", "/v1/auth/otp", "", map[string]string{"phone": own}, nil)
			var tok tokens
			s.Must(http.StatusOK, "POST", "/v1/auth/token", "", map[string]string{"phone": own, "code": lastCode(t, tw, own)}, &tok)
			attacker := tok.AccessToken

			foreign := []string{"+447700900123", "+12025550123", "+8823456789012", "+2348031234567"}
			unproved := []string{"+41799990001", "+41799990002", "+4915112345678", "+33612345678"}
			opened, refused := 0, 0
			body := func(phone string) map[string]any {
				b := map[string]any{"skill": "router_replace", "lat": 47.3769, "lng": 8.5417, "notes": craftedText, "address": craftedText}
				if phone != "" {
					b["phone"] = phone
				}
				return b
			}
			type target struct {
				phone   string
				allowed bool // in the default countries
			}
			var targets []target
			for _, p := range foreign {
				targets = append(targets, target{p, false})
			}
			for _, p := range append(append([]string{}, unproved...), "", own) {
				targets = append(targets, target{p, true})
			}
			const rounds = 12
			for round := range rounds {
				for _, tg := range targets {
					r := s.Call("POST", "/v1/requests", attacker, body(tg.phone))
					if !tg.allowed {
						if r.Status != http.StatusUnprocessableEntity || r.Err(t).Error.Field != "phone" {
							t.Fatalf("round %d, foreign phone %q: %d %s", round, tg.phone, r.Status, r.Body)
						}
						refused++
						continue
					}
					if r.Status != http.StatusCreated {
						t.Fatalf("round %d, phone %q: %d %s", round, tg.phone, r.Status, r.Body)
					}
					var req fullRequest
					r.Decode(t, &req)
					s.Must(http.StatusOK, "POST", "/v1/requests/"+req.ID+"/cancel", attacker, map[string]string{"reason": craftedText}, nil)
					opened++
				}
				// and asks for contact codes for the numbers it does not own
				for _, phone := range append(append([]string{}, foreign...), unproved...) {
					r := s.Call("POST", "/v1/me/contacts", attacker, map[string]string{"phone": phone})
					switch r.Status {
					case http.StatusAccepted, http.StatusTooManyRequests:
					case http.StatusUnprocessableEntity:
						if r.Err(t).Error.Field != "phone" {
							t.Fatalf("contact %s: %s", phone, r.Body)
						}
					default:
						t.Fatalf("contact %s: %d %s", phone, r.Status, r.Body)
					}
				}
			}
			// one more left open until its offer reaches the technician: the
			// crafted address stays in the app, out of the offer text
			var last fullRequest
			s.Must(http.StatusCreated, "POST", "/v1/requests", attacker, body(""), &last)
			waitSMS(t, tw, techPhone, "Reply YES")
			s.Must(http.StatusOK, "POST", "/v1/requests/"+last.ID+"/cancel", attacker, map[string]string{"reason": craftedText}, nil)
			opened++
			if refused != rounds*len(foreign) || opened != rounds*(len(unproved)+2)+1 {
				t.Fatalf("%d refused, %d opened", refused, opened)
			}
			// Every cancellation is either a message or a withheld text.
			apitest.Eventually(t, 60*time.Second, "every cancellation to be sent or withheld", func() bool {
				var sent, held int64
				s.App.DB.Table("messages").Where("kind = 'cancelled'").Count(&sent)
				s.App.DB.Table("sms_withheld").Where("kind = 'cancelled'").Count(&held)
				return sent+held == int64(opened)
			})
			apitest.Eventually(t, 10*time.Second, "the texts stored for sending to reach the stand-in", func() bool {
				var stored int64
				s.App.DB.Table("messages").Where("state <> 'queued' AND state <> 'sending'").Count(&stored)
				return stored == int64(len(tw.Messages()))
			})

			toOwn, toTech, codes := 0, 0, 0
			for _, m := range tw.Messages() {
				to, text := m.Get("To"), m.Get("Body")
				if carriesCallerWords(text) {
					t.Errorf("a text to %s carries the caller's words: %q", to, text)
				}
				switch {
				case to == own:
					toOwn++
				case to == techPhone:
					toTech++
				case strings.HasPrefix(text, "Onsite: someone asked to be texted"):
					codes++ // the fixed contact code, to a Swiss or neighbouring number
					if !strings.HasPrefix(to, "+41") && !strings.HasPrefix(to, "+49") && !strings.HasPrefix(to, "+33") {
						t.Errorf("a contact code went to %s", to)
					}
				default:
					t.Errorf("a text to an unproved phone %s: %q", to, text)
				}
			}
			if toOwn > 20 {
				t.Errorf("%d texts to the attacker's own phone, over the cap of 20 a day", toOwn)
			}
			if codes > 3*len(unproved) {
				t.Errorf("%d contact codes to %d unproved phones: over 3 per phone", codes, len(unproved))
			}
			var unconfirmed, capped int64
			s.App.DB.Table("sms_withheld").Where("reason = 'contact_unconfirmed'").Count(&unconfirmed)
			s.App.DB.Table("sms_withheld").Where("reason IN ('cap_phone', 'cap_account')").Count(&capped)
			if unconfirmed != int64(rounds*len(unproved)) || capped == 0 {
				t.Errorf("withheld: %d unconfirmed (want %d), %d over a cap", unconfirmed, rounds*len(unproved), capped)
			}
			t.Logf("%s: %d requests refused, %d opened and cancelled; texts: %d to the attacker's phone, %d to the technician %s, %d contact codes; withheld: %d unconfirmed, %d over a cap",
				engine, refused, opened, toOwn, toTech, techs[0], codes, unconfirmed, capped)
		})
	}
}

// TestContactPhoneConfirmation: texts about a request go to a phone other
// than the customer's sign-in phone only once the customer confirmed it
// with the code texted there; until then they are withheld and the request
// works as ever. Cancellation texts give who cancelled, never the reason
// typed.
func TestContactPhoneConfirmation(t *testing.T) {
	t.Parallel()
	s, tw := startWithTwilio(t, "sqlite")
	ops := s.Token(auth.Ops, "alice")
	s.Must(http.StatusCreated, "POST", "/v1/skills", ops, map[string]string{"code": "router_replace", "name": "Router"}, nil)
	cust := s.Token(auth.Customer, "carla")
	const grandma = "+41791230042"
	open := func() string {
		var req fullRequest
		s.Must(http.StatusCreated, "POST", "/v1/requests", cust, map[string]any{"skill": "router_replace", "lat": 47.37, "lng": 8.54, "phone": grandma, "locale": "de"}, &req)
		return req.ID
	}
	cancelled := func(id string, by string) {
		token := cust
		if by == "ops" {
			token = ops
		}
		s.Must(http.StatusOK, "POST", "/v1/requests/"+id+"/cancel", token, map[string]string{"reason": "call +44 20 7946 0000"}, nil)
	}
	waitFor := func(kind string, n int64) {
		apitest.Eventually(t, 15*time.Second, fmt.Sprintf("%d %s texts handled", n, kind), func() bool {
			var sent, held int64
			s.App.DB.Table("messages").Where("kind = ?", kind).Count(&sent)
			s.App.DB.Table("sms_withheld").Where("kind = ?", kind).Count(&held)
			return sent+held == n
		})
	}

	// not confirmed: the request works, its text is withheld
	first := open()
	cancelled(first, "customer")
	waitFor("cancelled", 1)
	if got := tw.To(grandma); len(got) != 0 {
		t.Fatalf("texts to an unconfirmed phone: %q", got)
	}
	var reason string
	s.App.DB.Table("sms_withheld").Where("request_id = ?", first).Select("reason").Scan(&reason)
	if reason != "contact_unconfirmed" {
		t.Fatalf("withheld as %q", reason)
	}
	var list struct {
		Items []struct {
			Phone     string `json:"phone"`
			Confirmed bool   `json:"confirmed"`
		} `json:"items"`
	}
	s.Must(http.StatusOK, "GET", "/v1/me/contacts", cust, nil, &list)
	if len(list.Items) != 0 {
		t.Fatalf("contacts before any: %+v", list.Items)
	}

	// bad input changes nothing
	rows := s.Rows("contact_phones")
	for _, tc := range []struct {
		name, path string
		body       any
		status     int
		field      string
	}{
		{"no phone", "/v1/me/contacts", map[string]string{}, 422, "phone"},
		{"not E.164", "/v1/me/contacts", map[string]string{"phone": "079 123 00 42"}, 422, "phone"},
		{"abroad", "/v1/me/contacts", map[string]string{"phone": "+447700900123"}, 422, "phone"},
		{"unknown field", "/v1/me/contacts", `{"phone":"+41791230042","name":"x"}`, 400, "name"},
		{"no code pending", "/v1/me/contacts/confirm", map[string]string{"phone": grandma, "code": "123456"}, 422, "code"},
		{"code too short", "/v1/me/contacts/confirm", map[string]string{"phone": grandma, "code": "12"}, 422, "code"},
	} {
		r := s.Call("POST", tc.path, cust, tc.body)
		if r.Status != tc.status || r.Err(t).Error.Field != tc.field {
			t.Fatalf("%s: %d %s", tc.name, r.Status, r.Body)
		}
	}
	if s.Rows("contact_phones") != rows || len(tw.To(grandma)) != 0 {
		t.Fatal("bad input wrote or texted something")
	}

	// the code, a wrong guess, then the right one
	s.Must(http.StatusAccepted, "POST", "/v1/me/contacts", cust, map[string]string{"phone": grandma}, nil)
	text := waitSMS(t, tw, grandma, "Onsite: someone asked").Get("Body")
	code := codeRE.FindStringSubmatch(text)[1]
	s.Must(http.StatusOK, "GET", "/v1/me/contacts", cust, nil, &list)
	if len(list.Items) != 1 || list.Items[0].Phone != grandma || list.Items[0].Confirmed {
		t.Fatalf("pending contact: %+v", list.Items)
	}
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	if r := s.Call("POST", "/v1/me/contacts/confirm", cust, map[string]string{"phone": grandma, "code": wrong}); r.Status != 422 || r.Err(t).Error.Field != "code" {
		t.Fatalf("wrong code: %d %s", r.Status, r.Body)
	}
	if r := s.Call("POST", "/v1/me/contacts/confirm", s.Token(auth.Customer, "mallory"), map[string]string{"phone": grandma, "code": code}); r.Status != 422 {
		t.Fatalf("another customer's confirmation: %d %s", r.Status, r.Body)
	}
	s.Must(http.StatusOK, "POST", "/v1/me/contacts/confirm", cust, map[string]string{"phone": grandma, "code": code}, nil)
	s.Must(http.StatusOK, "GET", "/v1/me/contacts", cust, nil, &list)
	if len(list.Items) != 1 || !list.Items[0].Confirmed {
		t.Fatalf("confirmed contact: %+v", list.Items)
	}
	// asking again texts nothing: it is proved
	s.Must(http.StatusOK, "POST", "/v1/me/contacts", cust, map[string]string{"phone": grandma}, nil)
	if n := len(tw.To(grandma)); n != 1 {
		t.Fatalf("%d texts to the contact, want the one code", n)
	}

	// confirmed: the texts go, with who cancelled in German, not the reason typed
	cancelled(open(), "customer")
	cancelled(open(), "ops")
	waitFor("cancelled", 3)
	waitSMS(t, tw, grandma, "wurde storniert (auf Ihren Wunsch).")
	waitSMS(t, tw, grandma, "wurde storniert (durch unsere Disposition).")
	for _, m := range tw.To(grandma) {
		if strings.Contains(m, "7946") {
			t.Fatalf("the typed reason reached a text: %q", m)
		}
	}
	// the typed reason is kept for the record, where ops read it
	var stored string
	s.App.DB.Table("requests").Where("id = ?", first).Select("cancel_reason").Scan(&stored)
	if stored != "call +44 20 7946 0000" {
		t.Fatalf("cancel reason %q", stored)
	}
}

// TestSMSCountries: request phones, sign-in phones and contact phones
// outside ONSITE_SMS_COUNTRIES are refused with 422 naming phone, in the
// shared shape, writing nothing; the setting changes the list.
func TestSMSCountries(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		countries string // "" for the default
		phone     string
		ok        bool
	}{
		{"Switzerland", "", "+41791234567", true},
		{"Liechtenstein", "", "+4232345678", true},
		{"Germany", "", "+4915112345678", true},
		{"France", "", "+33612345678", true},
		{"Italy", "", "+393123456789", true},
		{"Austria", "", "+436641234567", true},
		{"United Kingdom", "", "+447700900123", false},
		{"United States", "", "+12025550123", false},
		{"international premium rate", "", "+882345678901", false},
		{"United Kingdom when listed", "GB,CH", "+447700900123", true},
		{"Germany when not listed", "GB,CH", "+4915112345678", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var opts []apitest.Option
			if tc.countries != "" {
				opts = append(opts, apitest.Env("ONSITE_SMS_COUNTRIES", tc.countries))
			}
			opts = append(opts, apitest.Env("ONSITE_WORKERS", "false"))
			s, tw := startWithTwilio(t, "sqlite", opts...)
			ops := s.Token(auth.Ops, "alice")
			s.Must(http.StatusCreated, "POST", "/v1/skills", ops, map[string]string{"code": "router_replace", "name": "Router"}, nil)
			cust := s.Token(auth.Customer, "carla")
			calls := []struct {
				path  string
				token string
				body  map[string]any
				good  int
			}{
				{"/v1/requests", cust, map[string]any{"skill": "router_replace", "lat": 47.37, "lng": 8.54, "phone": tc.phone}, http.StatusCreated},
				{"/v1/auth/otp", "", map[string]any{"phone": tc.phone}, http.StatusAccepted},
				{"/v1/me/contacts", cust, map[string]any{"phone": tc.phone}, http.StatusAccepted},
			}
			for _, c := range calls {
				before := s.Rows("requests") + s.Rows("otp_codes") + s.Rows("contact_phones")
				r := s.Call("POST", c.path, c.token, c.body)
				if tc.ok {
					if r.Status != c.good {
						t.Fatalf("%s: %d %s", c.path, r.Status, r.Body)
					}
					continue
				}
				if e := r.Err(t); r.Status != http.StatusUnprocessableEntity || e.Error.Code != "invalid" || e.Error.Field != "phone" {
					t.Fatalf("%s: %d %s", c.path, r.Status, r.Body)
				}
				if after := s.Rows("requests") + s.Rows("otp_codes") + s.Rows("contact_phones"); after != before {
					t.Fatalf("%s: a refused phone wrote %d rows", c.path, after-before)
				}
			}
			if !tc.ok && len(tw.To(tc.phone)) != 0 {
				t.Fatalf("texted %s", tc.phone)
			}
		})
	}
}
