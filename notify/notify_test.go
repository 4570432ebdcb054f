package notify_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"

	"github.com/onsite/onsite/internal/dbtest"
	"github.com/onsite/onsite/internal/phones"
	"github.com/onsite/onsite/internal/twiliotest"
	"github.com/onsite/onsite/notify"
)

func TestTwilioSender(t *testing.T) {
	t.Parallel()
	f := twiliotest.Start(t)
	s, err := notify.NewTwilioSender(notify.TwilioConfig{AccountSID: twiliotest.AccountSID, AuthToken: twiliotest.AuthToken, From: twiliotest.From, APIURL: f.URL()})
	if err != nil {
		t.Fatal(err)
	}
	sid, err := s.Send(context.Background(), notify.SMS{To: "+41791234567", Body: "hello", StatusCallback: "https://onsite.test/v1/webhooks/twilio/status"})
	if err != nil || !strings.HasPrefix(sid, "SM") {
		t.Fatalf("send: %q %v", sid, err)
	}
	got := f.Messages()[0]
	want := map[string]string{"To": "+41791234567", "From": "+41445550000", "Body": "hello", "StatusCallback": "https://onsite.test/v1/webhooks/twilio/status"}
	for k, v := range want {
		if got.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, got.Get(k), v)
		}
	}
	f.FailWith(http.StatusBadRequest)
	if _, err := s.Send(context.Background(), notify.SMS{To: "+4100", Body: "x"}); !errors.Is(err, notify.ErrPermanent) {
		t.Fatalf("400 is not permanent: %v", err)
	}
	f.FailWith(http.StatusServiceUnavailable)
	if _, err := s.Send(context.Background(), notify.SMS{To: "+41791234567", Body: "x"}); err == nil || errors.Is(err, notify.ErrPermanent) ||
		errors.Is(err, notify.ErrNotAccepted) {
		t.Fatalf("503 should be retried after asking Twilio: %v", err)
	}
	f.FailWith(http.StatusTooManyRequests)
	if _, err := s.Send(context.Background(), notify.SMS{To: "+41791234567", Body: "x"}); !errors.Is(err, notify.ErrNotAccepted) {
		t.Fatalf("429 is not 'not accepted': %v", err)
	}
	f.FailWith(0)
	// What Twilio has for a number, through ListMessage: newest first,
	// created since the time asked.
	since := time.Now().Add(-time.Minute)
	for _, body := range []string{"one", "two"} {
		if _, err := s.Send(context.Background(), notify.SMS{To: "+41790000001", Body: body}); err != nil {
			t.Fatal(err)
		}
	}
	got2, err := s.Accepted(context.Background(), "+41790000001", since)
	if err != nil || len(got2) != 2 || got2[0].Body != "two" || got2[1].Body != "one" || !strings.HasPrefix(got2[0].SID, "SM") {
		t.Fatalf("accepted: %+v %v", got2, err)
	}
	if got3, err := s.Accepted(context.Background(), "+41790000001", time.Now().Add(time.Minute)); err != nil || len(got3) != 0 {
		t.Fatalf("accepted since later: %+v %v", got3, err)
	}
}

// TestTwilioAccountCheck: the real twilio-go client fetches the account
// from the stand-in through TWILIO_API_URL's setting (also behind a base
// path); wrong credentials are ErrRejected, an unreachable Twilio is an
// error that is not.
func TestTwilioAccountCheck(t *testing.T) {
	t.Parallel()
	f := twiliotest.Start(t)
	target, err := url.Parse(f.URL())
	if err != nil {
		t.Fatal(err)
	}
	proxy := httptest.NewServer(http.StripPrefix("/twilio", httputil.NewSingleHostReverseProxy(target)))
	t.Cleanup(proxy.Close)
	sender := func(token, apiURL string) *notify.TwilioSender {
		s, err := notify.NewTwilioSender(notify.TwilioConfig{AccountSID: twiliotest.AccountSID, AuthToken: token, From: twiliotest.From, APIURL: apiURL})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	ctx := t.Context()
	if err := sender(twiliotest.AuthToken, f.URL()).CheckAccount(ctx); err != nil {
		t.Fatalf("good credentials: %v", err)
	}
	behind := sender(twiliotest.AuthToken, proxy.URL+"/twilio/")
	if err := behind.CheckAccount(ctx); err != nil {
		t.Fatalf("behind a base path: %v", err)
	}
	if _, err := behind.Send(ctx, notify.SMS{To: "+41791234567", Body: "via the proxy"}); err != nil || len(f.To("+41791234567")) != 1 {
		t.Fatalf("send behind a base path: %v, received %v", err, f.To("+41791234567"))
	}
	if f.AccountFetches() != 2 {
		t.Fatalf("the stand-in answered %d account fetches, want 2", f.AccountFetches())
	}
	err = sender("wrongtoken", f.URL()).CheckAccount(ctx)
	if !errors.Is(err, notify.ErrRejected) || !strings.Contains(err.Error(), "401") {
		t.Fatalf("wrong token: %v", err)
	}
	f.SetDown(true)
	err = sender(twiliotest.AuthToken, f.URL()).CheckAccount(ctx)
	if err == nil || errors.Is(err, notify.ErrRejected) {
		t.Fatalf("unreachable: %v", err)
	}
	f.SetDown(false)
	if _, err := notify.NewTwilioSender(notify.TwilioConfig{AccountSID: twiliotest.AccountSID, AuthToken: "t", APIURL: "ftp://x"}); err == nil {
		t.Fatal("an ftp API URL was taken")
	}
}

func TestRenderEveryKindInEveryLocale(t *testing.T) {
	t.Parallel()
	kinds := []notify.Kind{notify.KindOffer, notify.KindAssigned, notify.KindEnRoute, notify.KindArrived, notify.KindCompleted,
		notify.KindCancelled, notify.KindUnfulfilled, notify.KindReminder, notify.KindReminderTech, notify.KindReplyAccepted,
		notify.KindReplyDeclined, notify.KindReplyTooLate, notify.KindReplyHelp, notify.KindReplyNoOffer, notify.KindOTP, notify.KindConfirm,
		notify.KindContactCode}
	d := notify.Data{Skill: "wifi_setup", DistanceKm: "2.4", EtaMinutes: 9, ETA: "15:40", ExpiresAt: "15:33", Technician: "Tina",
		Link: "https://onsite.test/t/abc", WindowFrom: "14:00", WindowTo: "16:00", Code: "123456", Reason: notify.ReasonOfferTaken}
	seen := map[string]bool{}
	for _, k := range kinds {
		for _, loc := range notify.Locales {
			text, err := notify.Render(k, loc, d)
			if err != nil || text == "" {
				t.Fatalf("%s/%s: %q %v", k, loc, text, err)
			}
			if seen[text] {
				t.Errorf("%s/%s repeats another text: %q", k, loc, text)
			}
			seen[text] = true
		}
	}
	offer, _ := notify.Render(notify.KindOffer, "de", d)
	if !strings.Contains(offer, "JA") || !strings.Contains(offer, "2.4 km") || !strings.Contains(offer, "15:33") {
		t.Errorf("German offer: %q", offer)
	}
	if en, _ := notify.Render(notify.KindOffer, "xx", d); !strings.Contains(en, "Reply YES") {
		t.Errorf("unknown locale does not fall back to English: %q", en)
	}
}

// TestReasonsInEveryLocale: a text gives a reason only from the fixed list,
// in the recipient's words; anything else does not render.
func TestReasonsInEveryLocale(t *testing.T) {
	t.Parallel()
	want := map[notify.Reason]map[string]string{
		notify.ReasonCancelledByCustomer: {"en": "Your wifi_setup request was cancelled (as you asked).", "de": "Ihr Auftrag wifi_setup wurde storniert (auf Ihren Wunsch).",
			"fr": "Votre demande wifi_setup a été annulée (à votre demande).", "it": "La tua richiesta wifi_setup è stata annullata (su tua richiesta)."},
		notify.ReasonCancelledByOps:    {"en": "Your wifi_setup request was cancelled (by our dispatch team).", "de": "Ihr Auftrag wifi_setup wurde storniert (durch unsere Disposition)."},
		notify.ReasonCancelledByDevice: {"fr": "Votre demande wifi_setup a été annulée (par votre appareil).", "it": "La tua richiesta wifi_setup è stata annullata (dal tuo dispositivo)."},
		notify.ReasonNone:              {"en": "Your wifi_setup request was cancelled.", "de": "Ihr Auftrag wifi_setup wurde storniert."},
	}
	for reason, byLocale := range want {
		for loc, text := range byLocale {
			got, err := notify.Render(notify.KindCancelled, loc, notify.Data{Skill: "wifi_setup", Reason: reason})
			if err != nil || got != text {
				t.Errorf("%s/%s: %q %v, want %q", reason, loc, got, err, text)
			}
		}
	}
	for _, code := range []string{"offer_taken", "offer_withdrawn", "offer_expired", "offer_declined", "offer_already_accepted"} {
		for _, loc := range notify.Locales {
			got, err := notify.Render(notify.KindReplyTooLate, loc, notify.Data{Reason: notify.ReasonOf(code)})
			if err != nil || !strings.Contains(got, "(") {
				t.Errorf("%s/%s: %q %v", code, loc, got, err)
			}
		}
	}
	if notify.ReasonOf("I changed my mind, call +44 20 7946 0000") != notify.ReasonNone {
		t.Error("free text became a reason")
	}
	if _, err := notify.Render(notify.KindCancelled, "en", notify.Data{Reason: "call +44 20 7946 0000 now"}); err == nil {
		t.Error("a reason outside the list rendered")
	}
}

func TestParseReply(t *testing.T) {
	t.Parallel()
	tests := map[string]notify.Reply{
		"YES": notify.ReplyYes, " yes ": notify.ReplyYes, "Ja": notify.ReplyYes, "OUI!": notify.ReplyYes, "si": notify.ReplyYes, "Sì": notify.ReplyYes, "y": notify.ReplyYes,
		"NO": notify.ReplyNo, "nein.": notify.ReplyNo, "Non": notify.ReplyNo, "n": notify.ReplyNo,
		"maybe": notify.ReplyUnknown, "": notify.ReplyUnknown, "yes please": notify.ReplyUnknown,
	}
	for in, want := range tests {
		if got := notify.ParseReply(in); got != want {
			t.Errorf("ParseReply(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestReadSignedForm(t *testing.T) {
	t.Parallel()
	form := url.Values{"From": {"+41791234567"}, "Body": {"YES"}, "MessageSid": {"SM1"}}
	public := "https://onsite.example.test"
	tests := []struct {
		name string
		sig  string
		ok   bool
	}{
		{"valid", twiliotest.Sign("token", public+"/v1/webhooks/twilio/sms", form), true},
		{"wrong token", twiliotest.Sign("other", public+"/v1/webhooks/twilio/sms", form), false},
		{"signed for another url", twiliotest.Sign("token", "http://127.0.0.1/v1/webhooks/twilio/sms", form), false},
		{"missing", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/v1/webhooks/twilio/sms", strings.NewReader(form.Encode()))
			r.Header.Set("X-Twilio-Signature", tt.sig)
			got, ok, err := notify.ReadSignedForm(r, "token", public)
			if err != nil || ok != tt.ok || got.Get("Body") != "YES" {
				t.Fatalf("ok %v err %v form %v", ok, err, got)
			}
		})
	}
}

type countingSender struct {
	mu    sync.Mutex
	sent  []notify.SMS
	fails []error // returned by the first sends, in order
}

func (c *countingSender) Send(_ context.Context, m notify.SMS) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.fails) > 0 {
		err := c.fails[0]
		c.fails = c.fails[1:]
		return "", err
	}
	c.sent = append(c.sent, m)
	return fmt.Sprintf("SM%d", len(c.sent)), nil
}

func TestSecretMessagesAreNotKept(t *testing.T) {
	t.Parallel()
	d := dbtest.SQLite(t)
	s := &countingSender{}
	n := notify.NewNotifier(d, s, "", guards(), quiet())
	out := []notify.Outgoing{{DedupeKey: "otp:1", Kind: notify.KindOTP, Recipient: "customer:+41791234567", To: "+41791234567",
		Locale: "en", Data: notify.Data{Code: "123456"}, Secret: true}}
	if err := n.Deliver(context.Background(), out); err != nil {
		t.Fatal(err)
	}
	if len(s.sent) != 1 || !strings.Contains(s.sent[0].Body, "123456") {
		t.Fatalf("sent %+v", s.sent)
	}
	var m notify.Message
	d.Where("dedupe_key = ?", "otp:1").First(&m)
	if strings.Contains(m.Body, "123456") || m.State != notify.StateSent {
		t.Fatalf("stored %+v", m)
	}
}

// guards are the default guards of a deployment.
func guards() notify.Guards {
	return notify.Guards{Countries: phones.MustParseCountries(phones.DefaultCountries), PerPhoneDay: 20, PerAccountDay: 50}
}

func TestParseKeyword(t *testing.T) {
	for _, tt := range []struct {
		body string
		want notify.Keyword
	}{
		{"STOP", notify.KeywordStop}, {" stop! ", notify.KeywordStop}, {"Unsubscribe", notify.KeywordStop}, {"STOPP", notify.KeywordStop},
		{"arrêt", notify.KeywordStop}, {"START", notify.KeywordStart}, {"unstop", notify.KeywordStart},
		{"HELP", notify.KeywordHelp}, {"Hilfe?", notify.KeywordHelp}, {"aide", notify.KeywordHelp}, {"aiuto", notify.KeywordHelp},
		{"YES", notify.KeywordNone}, {"stop sending me offers", notify.KeywordNone}, {"", notify.KeywordNone},
	} {
		if got := notify.ParseKeyword(tt.body); got != tt.want {
			t.Errorf("ParseKeyword(%q) = %v, want %v", tt.body, got, tt.want)
		}
	}
}

// TestNoGenderFollowsTheName: a text about a technician reads right whoever
// they are: no template chooses words by the name, and in the clause that
// names the technician no word agrees with a gender (an Italian or French
// past participle, a pronoun, a gendered job title). Wording is neutral
// ("Anna è sul posto", "Anna est sur place").
func TestNoGenderFollowsTheName(t *testing.T) {
	t.Parallel()
	// Whole words (Go's \b knows no accents), in the clause that names the technician.
	gendered := map[string]*regexp.Regexp{
		"en": regexp.MustCompile(`(?i)^(he|she|him|her|his|hers|himself|herself)$`),
		"de": regexp.MustCompile(`^(er|sie|ihn|ihm|ihr|ihre|ihren|sein|seine|seinen|seinem|Techniker|Technikerin)$`),
		"fr": regexp.MustCompile(`(?i)^(il|elle|lui|technicien|technicienne|\p{L}+(é|ée|és|ées)|parti|partie|venu|venue|revenu|revenue)$`),
		"it": regexp.MustCompile(`(?i)^(lui|lei|gli|dagli|tecnico|tecnica|\p{L}+(ato|ata|ito|ita|uto|uta|ati|ate))$`),
	}
	// Job titles and pronouns that lean on a gender anywhere in a text.
	titles := map[string]*regexp.Regexp{
		"en": regexp.MustCompile(`(?i)^(he|she|him|his|repairman|handyman)$`),
		"de": regexp.MustCompile(`^(Techniker|Technikerin|ihm)$`),
		"fr": regexp.MustCompile(`(?i)^(technicien|technicienne)$`),
		"it": regexp.MustCompile(`(?i)^(tecnico|tecnica|dagli)$`),
	}
	find := func(re *regexp.Regexp, text string) string {
		for _, w := range strings.FieldsFunc(text, func(r rune) bool { return !unicode.IsLetter(r) }) {
			if re.MatchString(w) {
				return w
			}
		}
		return ""
	}
	clause := regexp.MustCompile(`\{\{\.Technician\}\}[^.,;:?!]*`)
	kinds := 0
	for kind, byLocale := range notify.Texts() {
		for _, loc := range notify.Locales {
			text := byLocale[loc]
			if text == "" {
				t.Fatalf("%s has no %s text", kind, loc)
			}
			if w := find(titles[loc], text); w != "" {
				t.Errorf("%s/%s: %q leans on a gender: %q", kind, loc, w, text)
			}
			for _, c := range clause.FindAllString(text, -1) {
				kinds++
				if w := find(gendered[loc], strings.TrimPrefix(c, "{{.Technician}}")); w != "" {
					t.Errorf("%s/%s: %q agrees with the technician's gender: %q", kind, loc, w, c)
				}
			}
			// The name is the only thing that differs between Anna's and Marco's text.
			d := notify.Data{Skill: "Wi-Fi", ETA: "10:15", WindowFrom: "14:00", WindowTo: "16:00", Technician: "Anna", DistanceKm: "1.0", EtaMinutes: 5, ExpiresAt: "10:00", Code: "123456", Link: "https://onsite.test/x"}
			anna, err := notify.Render(kind, loc, d)
			if err != nil {
				t.Fatal(err)
			}
			d.Technician = "Marco"
			marco, _ := notify.Render(kind, loc, d)
			if strings.ReplaceAll(anna, "Anna", "Marco") != marco {
				t.Errorf("%s/%s: the name changes more than the name: %q / %q", kind, loc, anna, marco)
			}
		}
	}
	if kinds < 4*5 { // assigned, en route, arrived, completed, reminder
		t.Fatalf("only %d clauses name a technician", kinds)
	}
}
