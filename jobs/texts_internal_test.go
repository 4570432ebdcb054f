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
	return dispatch.EventFacts{
		Event:      dispatch.Event{ID: "e1", Type: typ, ActorRole: "customer"},
		Request:    dispatch.Request{ID: "r1", SkillCode: "router_replace", Mode: dispatch.ASAP, TechnicianID: &tech, EtaAt: eta},
		Customer:   dispatch.Contact{ID: "c1", Phone: "+41790000000", Locale: locale},
		Technician: &dispatch.Contact{ID: "t1", Name: "Anna Muster", Phone: "+41790000001", Locale: locale},
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
