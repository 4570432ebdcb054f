package jobs

import (
	"strings"
	"testing"
	"time"

	"github.com/onsite/onsite/dispatch"
	"github.com/onsite/onsite/notify"
)

func zurich(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Zurich")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// render renders every message in out.
func render(t *testing.T, out []notify.Outgoing) []string {
	t.Helper()
	var texts []string
	for _, o := range out {
		text, err := notify.Render(o.Kind, o.Locale, o.Data)
		if err != nil {
			t.Fatalf("render %s/%s: %v", o.Kind, o.Locale, err)
		}
		texts = append(texts, text)
	}
	return texts
}

// asapFacts is an ASAP request's event of type typ for a customer in locale.
func asapFacts(typ, locale string, eta *time.Time) dispatch.EventFacts {
	tech := "t1"
	data := map[string]any{}
	if eta != nil {
		data["eta_at"] = eta.Format(time.RFC3339Nano) // as the event recorded it
	}
	return dispatch.EventFacts{
		Data:       data,
		Event:      dispatch.Event{ID: "e1", Type: typ, ActorRole: "customer", At: time.Date(2026, 1, 15, 8, 0, 0, 0, time.UTC)},
		Request:    dispatch.Request{ID: "r1", SkillCode: "router_replace", Mode: dispatch.ASAP, TechnicianID: &tech, EtaAt: eta},
		Customer:   dispatch.Contact{ID: "c1", Phone: "+41790000000", Locale: locale},
		Technician: &dispatch.Contact{ID: "t1", Name: "Anna Muster", Phone: "+41790000001", Locale: locale},
		Skill:      dispatch.SkillNames{Name: "Router replacement"},
	}
}

func TestClockTimesInTheDeploymentTimeZone(t *testing.T) {
	t.Parallel()
	m := NewMessages(nil, nil, zurich(t), []byte("k"), "https://onsite.test")
	for _, c := range []struct {
		name string
		eta  time.Time
		want string
	}{
		{"winter", time.Date(2026, 1, 15, 9, 15, 0, 0, time.UTC), "10:15"},
		{"summer", time.Date(2026, 7, 15, 9, 15, 0, 0, time.UTC), "11:15"},
	} {
		for _, loc := range notify.Locales {
			for _, typ := range []string{"assigned", "en_route"} {
				eta := c.eta
				texts := render(t, m.eventMessages(asapFacts(typ, loc, &eta)))
				if len(texts) != 1 || !strings.Contains(texts[0], c.want) || strings.Contains(texts[0], "09:15") {
					t.Errorf("%s %s/%s: %q, want %s", c.name, typ, loc, texts, c.want)
				}
			}
		}
	}
}

// everyText renders every message jobs.Messages writes (each event type, the
// offer, the confirmation, the reminders; ASAP and windowed, ETA known and
// not) for recipients in locale.
func everyText(t *testing.T, m *Messages, locale string) map[string]string {
	t.Helper()
	out := map[string]string{}
	add := func(name string, msgs []notify.Outgoing) {
		for _, o := range msgs {
			text, err := notify.Render(o.Kind, o.Locale, o.Data)
			if err != nil {
				t.Fatalf("%s %s/%s: %v", name, o.Kind, o.Locale, err)
			}
			out[name+" "+string(o.Kind)] = text
		}
	}
	eta := time.Date(2026, 1, 15, 9, 15, 0, 0, time.UTC)
	start, end := time.Date(2026, 1, 15, 13, 0, 0, 0, time.UTC), time.Date(2026, 1, 15, 15, 0, 0, 0, time.UTC)
	for _, typ := range []string{"assigned", "en_route", "on_site", "completed", "cancelled", "unfulfilled"} {
		add("asap "+typ, m.eventMessages(asapFacts(typ, locale, &eta)))
		add("asap no eta "+typ, m.eventMessages(asapFacts(typ, locale, nil)))
		w := asapFacts(typ, locale, &eta)
		w.Request.Mode, w.Request.WindowStart, w.Request.WindowEnd = dispatch.Window, &start, &end
		add("window "+typ, m.eventMessages(w))
	}
	o := asapFacts("offered", locale, nil)
	o.Offer = &dispatch.Offer{ID: "o1", TechnicianID: "t1", DistanceM: 2400, EtaSeconds: 420, ExpiresAt: eta}
	add("offer", m.eventMessages(o))
	c := asapFacts("created", locale, nil)
	c.Request.State, c.Technician, c.Request.TechnicianID = dispatch.PendingConfirmation, nil, nil
	add("confirm", m.eventMessages(c))
	r := asapFacts("", locale, &eta)
	r.Request.Mode, r.Request.WindowStart, r.Request.WindowEnd = dispatch.Window, &start, &end
	add("reminder", m.reminderMessages(r, r.Event.At))
	return out
}

func TestNoTextShowsASkillCode(t *testing.T) {
	t.Parallel()
	m := NewMessages(nil, nil, zurich(t), []byte("k"), "https://onsite.test")
	for _, loc := range notify.Locales {
		texts := everyText(t, m, loc)
		if len(texts) < 20 {
			t.Fatalf("%s: only %d texts: %v", loc, len(texts), texts)
		}
		for name, text := range texts {
			if strings.Contains(text, "router_replace") {
				t.Errorf("%s %s shows the skill code: %q", loc, name, text)
			}
			if strings.Contains(name, "offer") || strings.Contains(name, "confirm") || strings.Contains(name, "reminder") ||
				strings.Contains(name, "completed") || strings.Contains(name, "cancelled") || strings.Contains(name, "unfulfilled") {
				if !strings.Contains(text, "Router replacement") {
					t.Errorf("%s %s lacks the skill's name: %q", loc, name, text)
				}
			}
		}
	}
}

// TestWindowsAndUnknownETAs: a windowed appointment's assigned text and
// reminders give its window in local time, never an ETA of now plus the
// drive; an ASAP request keeps its ETA; an unknown ETA leaves the time out
// instead of an empty slot ("should arrive around .").
func TestWindowsAndUnknownETAs(t *testing.T) {
	t.Parallel()
	m := NewMessages(nil, nil, zurich(t), []byte("k"), "https://onsite.test")
	between := map[string]string{"en": "between 14:00 and 16:00", "de": "zwischen 14:00 und 16:00", "fr": "entre 14:00 et 16:00", "it": "tra le 14:00 e le 16:00"}
	around := map[string]string{"en": "around", "de": "gegen", "fr": "vers", "it": "verso"}
	for _, loc := range notify.Locales {
		texts := everyText(t, m, loc)
		for _, name := range []string{"window assigned assigned", "reminder reminder", "reminder reminder_tech"} {
			text := texts[name]
			if !strings.Contains(text, between[loc]) || strings.Contains(text, "10:15") || strings.Contains(text, around[loc]+" ") {
				t.Errorf("%s %s: %q, want %q and no ETA", loc, name, text, between[loc])
			}
		}
		if text := texts["asap assigned assigned"]; !strings.Contains(text, around[loc]) || !strings.Contains(text, "10:15") || strings.Contains(text, "14:00") {
			t.Errorf("%s ASAP assigned: %q, want its ETA 10:15", loc, text)
		}
		if text := texts["asap en_route en_route"]; !strings.Contains(text, "10:15") {
			t.Errorf("%s en route: %q, want its ETA 10:15", loc, text)
		}
		for _, name := range []string{"asap no eta assigned assigned", "asap no eta en_route en_route"} {
			text := texts[name]
			if text == "" || strings.Contains(text, around[loc]) || !strings.Contains(text, "Anna") {
				t.Errorf("%s %s: %q, want a text without a time", loc, name, text)
			}
		}
		for name, text := range texts {
			if strings.Contains(text, " .") || strings.Contains(text, " ,") || strings.Contains(text, "  ") || strings.Contains(text, "–") {
				t.Errorf("%s %s has an empty slot: %q", loc, name, text)
			}
		}
	}
}

// TestRequestZoneAndDates: a request's own time zone wins over the
// deployment's, and a window on another day than the text carries its date
// in the recipient's language.
func TestRequestZoneAndDates(t *testing.T) {
	t.Parallel()
	m := NewMessages(nil, nil, zurich(t), []byte("k"), "https://onsite.test")
	eta := time.Date(2026, 1, 15, 9, 15, 0, 0, time.UTC)
	f := asapFacts("assigned", "en", &eta)
	f.Zone = "America/New_York"
	if texts := render(t, m.eventMessages(f)); len(texts) != 1 || !strings.Contains(texts[0], "arriving around 04:15.") {
		t.Errorf("New York request: %q, want 04:15", texts)
	}
	// The text goes on Thursday 15 January; the window is on Saturday.
	start, end := time.Date(2026, 1, 17, 13, 0, 0, 0, time.UTC), time.Date(2026, 1, 17, 15, 0, 0, 0, time.UTC)
	want := map[string]string{
		"en": "on Sat 17 Jan between 14:00 and 16:00", "de": "am Sa. 17. Jan. zwischen 14:00 und 16:00",
		"fr": "le sam. 17 janv. entre 14:00 et 16:00", "it": "sab 17 gen tra le 14:00 e le 16:00",
	}
	for _, loc := range notify.Locales {
		f := asapFacts("assigned", loc, &eta)
		f.Request.Mode, f.Request.WindowStart, f.Request.WindowEnd = dispatch.Window, &start, &end
		if texts := render(t, m.eventMessages(f)); len(texts) != 1 || !strings.Contains(texts[0], want[loc]) {
			t.Errorf("%s window on another day: %q, want %q", loc, texts, want[loc])
		}
	}
}

// TestStillSearchingText: the last escalation step texts the customer the
// estimate the event recorded; the other steps text nobody.
func TestStillSearchingText(t *testing.T) {
	t.Parallel()
	m := NewMessages(nil, nil, zurich(t), []byte("k"), "https://onsite.test")
	eta := time.Date(2026, 1, 15, 9, 40, 0, 0, time.UTC)
	for _, tt := range []struct {
		step string
		want string
	}{
		{"customer_told", "We are still looking for a technician for your Router replacement request. Our honest estimate now: someone could be there around 10:40. We will text you who comes."},
		{"paged", ""},
		{"bigger_wave", ""},
	} {
		f := asapFacts("escalated", "en", &eta)
		f.Technician, f.Request.TechnicianID = nil, nil
		f.Data["step"] = tt.step
		texts := render(t, m.eventMessages(f))
		if (tt.want == "" && len(texts) != 0) || (tt.want != "" && (len(texts) != 1 || texts[0] != tt.want)) {
			t.Errorf("%s: %q, want %q", tt.step, texts, tt.want)
		}
	}
}

// TestFieldEventTexts: the field's exceptions and intake text whom they
// concern, and no one else.
func TestFieldEventTexts(t *testing.T) {
	t.Parallel()
	m := NewMessages(nil, nil, zurich(t), []byte("k"), "https://onsite.test")
	wait := time.Date(2026, 1, 15, 9, 25, 0, 0, time.UTC)
	start, end := time.Date(2026, 1, 16, 13, 0, 0, 0, time.UTC), time.Date(2026, 1, 16, 15, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		typ  string
		data map[string]any
		want map[notify.Kind]string // kind → the start of its text
	}{
		{"customer_not_home", map[string]any{"wait_until": wait.Format(time.RFC3339Nano)},
			map[notify.Kind]string{notify.KindNotHome: "Anna is at your door for your Router replacement visit and cannot reach you. Anna waits until 10:25;"}},
		{"customer_home", map[string]any{"by": "customer"}, map[notify.Kind]string{notify.KindCustomerHome: "The customer of your Router replacement job is coming"}},
		{"customer_home", map[string]any{"by": "technician"}, map[notify.Kind]string{}},
		{"no_show", nil, map[notify.Kind]string{notify.KindNoShow: "Nobody came to the door for your Router replacement visit"}},
		{"rescheduled", nil, map[notify.Kind]string{notify.KindRescheduled: "Your Router replacement visit is booked on Fri 16 Jan between 14:00 and 16:00.",
			notify.KindJobCancelled: "The Router replacement job was cancelled (the customer booked another time): you do not need to go."}},
		{"confirmation_expired", nil, map[notify.Kind]string{notify.KindConfirmGone: "Your device's Router replacement request was not confirmed in time"}},
		{"created", map[string]any{"intake": true}, map[notify.Kind]string{notify.KindTaken: "Onsite has your Router replacement request, booked on Fri 16 Jan between 14:00 and 16:00. We will text you who comes. Follow it here: https://onsite.test/track/"}},
	} {
		f := asapFacts(tt.typ, "en", nil)
		for k, v := range tt.data {
			f.Data[k] = v
		}
		if tt.typ == "rescheduled" || tt.typ == "created" {
			f.Request.Mode, f.Request.WindowStart, f.Request.WindowEnd = dispatch.Window, &start, &end
		}
		out := m.eventMessages(f)
		if len(out) != len(tt.want) {
			t.Errorf("%s %v: %d texts, want %d", tt.typ, tt.data, len(out), len(tt.want))
			continue
		}
		for i, o := range out {
			text := render(t, out[i:i+1])[0]
			if want, ok := tt.want[o.Kind]; !ok || !strings.HasPrefix(text, want) {
				t.Errorf("%s: %s %q, want it to start %q", tt.typ, o.Kind, text, want)
			}
		}
	}
}
