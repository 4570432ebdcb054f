package app_test

import (
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/onsite/onsite/internal/twiliotest"
)

var codeRE = regexp.MustCompile(`\b(\d{6})\b`)

func lastCode(t *testing.T, tw *twiliotest.Server, phone string) string {
	t.Helper()
	bodies := tw.To(phone)
	if len(bodies) == 0 {
		t.Fatalf("no SMS to %s", phone)
	}
	m := codeRE.FindStringSubmatch(bodies[len(bodies)-1])
	if m == nil {
		t.Fatalf("no code in %q", bodies[len(bodies)-1])
	}
	return m[1]
}

type tokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	Role         string `json:"role"`
	Subject      string `json:"subject"`
}

// TestPhoneSignIn: a customer and an onboarded technician sign in with a
// code sent by SMS; wrong codes stop at 5 attempts; sending is limited; the
// refresh token rotates; a phone that is not a technician cannot sign in as
// one.
func TestPhoneSignIn(t *testing.T) {
	t.Parallel()
	s, tw := startWithTwilio(t, "sqlite")
	const phone = "+41791230000"
	s.Must(http.StatusAccepted, "POST", "/v1/auth/otp", "", map[string]string{"phone": phone}, nil)
	code := lastCode(t, tw, phone)
	s.Must(http.StatusUnprocessableEntity, "POST", "/v1/auth/otp", "", map[string]string{"phone": "0791230000"}, nil)
	var tok tokens
	s.Must(http.StatusOK, "POST", "/v1/auth/token", "", map[string]string{"phone": phone, "code": code}, &tok)
	if tok.Role != "customer" || tok.Subject == "" || tok.RefreshToken == "" {
		t.Fatalf("tokens %+v", tok)
	}
	// the access token works as a customer
	s.Must(http.StatusUnprocessableEntity, "POST", "/v1/requests", tok.AccessToken, map[string]any{"skill": "nope", "lat": 1, "lng": 1}, nil)
	// a used code cannot be used again
	s.Must(http.StatusUnauthorized, "POST", "/v1/auth/token", "", map[string]string{"phone": phone, "code": code}, nil)
	// the same phone signs in as the same customer
	s.Must(http.StatusAccepted, "POST", "/v1/auth/otp", "", map[string]string{"phone": phone}, nil)
	var again tokens
	s.Must(http.StatusOK, "POST", "/v1/auth/token", "", map[string]string{"phone": phone, "code": lastCode(t, tw, phone)}, &again)
	if again.Subject != tok.Subject {
		t.Fatalf("a second sign-in made another customer: %s vs %s", again.Subject, tok.Subject)
	}
	// refresh rotates: the new pair works, the old refresh token does not
	var fresh tokens
	s.Must(http.StatusOK, "POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": tok.RefreshToken}, &fresh)
	if fresh.RefreshToken == tok.RefreshToken || fresh.Subject != tok.Subject {
		t.Fatalf("refresh %+v", fresh)
	}
	s.Must(http.StatusUnauthorized, "POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": tok.RefreshToken}, nil)
	// ... and using the old one again (a copy) ends the whole sign-in: the
	// newer token of the family stops working too
	s.Must(http.StatusUnauthorized, "POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": fresh.RefreshToken}, nil)
	// another sign-in is another family, untouched; signing out ends it
	s.Must(http.StatusOK, "POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": again.RefreshToken}, &fresh)
	s.Must(http.StatusNoContent, "POST", "/v1/auth/logout", "", map[string]string{"refresh_token": fresh.RefreshToken}, nil)
	s.Must(http.StatusNoContent, "POST", "/v1/auth/logout", "", map[string]string{"refresh_token": fresh.RefreshToken}, nil)
	s.Must(http.StatusUnauthorized, "POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": fresh.RefreshToken}, nil)
	s.Must(http.StatusUnprocessableEntity, "POST", "/v1/auth/logout", "", map[string]string{"refresh_token": ""}, nil)

	// brute force stops at 5 attempts, even with the right code after
	s.Must(http.StatusAccepted, "POST", "/v1/auth/otp", "", map[string]string{"phone": phone}, nil)
	right := lastCode(t, tw, phone)
	wrong := "000000"
	if right == wrong {
		wrong = "111111"
	}
	for i := range 5 {
		r := s.Call("POST", "/v1/auth/token", "", map[string]string{"phone": phone, "code": wrong})
		if r.Status != http.StatusUnauthorized {
			t.Fatalf("wrong code %d: %d %s", i, r.Status, r.Body)
		}
	}
	r := s.Call("POST", "/v1/auth/token", "", map[string]string{"phone": phone, "code": right})
	if r.Status != http.StatusTooManyRequests || r.Err(t).Error.Code != "rate_limited" {
		t.Fatalf("after 5 wrong codes: %d %s", r.Status, r.Body)
	}
	// sending is limited per phone (3 per 10 minutes: already 3 sent)
	// and says when a code may be asked again: past the 10-minute window
	// (not "1" second), within two windows
	if r := s.Call("POST", "/v1/auth/otp", "", map[string]string{"phone": phone}); r.Status != http.StatusTooManyRequests {
		t.Fatalf("4th code: %d", r.Status)
	} else if after, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || after < 60 || after > 1200 {
		t.Fatalf("4th code: Retry-After %q, want the time until the 10-minute window allows one", r.Header.Get("Retry-After"))
	}

	// technicians: only once onboarded, and a phone that is not one's gets
	// the same answer (no enumeration) but no text
	const techPhone = "+41795550000"
	unknown := s.Must(http.StatusAccepted, "POST", "/v1/auth/otp", "", map[string]string{"phone": techPhone, "role": "technician"}, nil)
	if len(tw.To(techPhone)) != 0 {
		t.Fatal("a phone that is no technician's was texted a code")
	}
	if r := s.Call("POST", "/v1/auth/token", "", map[string]string{"phone": techPhone, "role": "technician", "code": "000000"}); r.Status != http.StatusUnauthorized {
		t.Fatalf("a code for no technician: %d %s", r.Status, r.Body)
	}
	techs := onboard(t, s, 500)
	if known := s.Must(http.StatusAccepted, "POST", "/v1/auth/otp", "", map[string]string{"phone": techPhone, "role": "technician"}, nil); string(known.Body) != string(unknown.Body) {
		t.Fatalf("known and unknown technician phones answer apart: %s vs %s", known.Body, unknown.Body)
	}
	var tt tokens
	s.Must(http.StatusOK, "POST", "/v1/auth/token", "", map[string]string{"phone": techPhone, "role": "technician", "code": lastCode(t, tw, techPhone)}, &tt)
	if tt.Role != "technician" || tt.Subject != techs[0] {
		t.Fatalf("technician tokens %+v", tt)
	}
	s.Must(http.StatusOK, "GET", "/v1/me", tt.AccessToken, nil, nil)
	s.Must(http.StatusForbidden, "GET", "/v1/me", tok.AccessToken, nil, nil)

	// A phone given on a request is a contact for texts, not a sign-in: the
	// owner of that phone signs in as themselves, not as the requester.
	const victim = "+41791230077"
	s.Must(http.StatusCreated, "POST", "/v1/requests", tok.AccessToken, map[string]any{"skill": "router_replace", "lat": 47.37, "lng": 8.54, "phone": victim}, nil)
	s.Must(http.StatusAccepted, "POST", "/v1/auth/otp", "", map[string]string{"phone": victim}, nil)
	var v tokens
	s.Must(http.StatusOK, "POST", "/v1/auth/token", "", map[string]string{"phone": victim, "code": lastCode(t, tw, victim)}, &v)
	if v.Subject == tok.Subject {
		t.Fatal("signing in with a phone someone put on their request gave their account")
	}
}

// TestCodeLimitHoldsInParallel sends 20 code requests for one phone at once:
// no more than 3 codes go out.
func TestCodeLimitHoldsInParallel(t *testing.T) {
	t.Parallel()
	s, tw := startWithTwilio(t, "postgres")
	const phone = "+41791238888"
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() { defer wg.Done(); s.Call("POST", "/v1/auth/otp", "", map[string]string{"phone": phone}) }()
	}
	wg.Wait()
	time.Sleep(100 * time.Millisecond)
	if n := len(tw.To(phone)); n > 3 {
		t.Fatalf("%d codes sent, limit 3", n)
	}
}
