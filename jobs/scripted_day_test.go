package jobs_test

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onsite/onsite/dispatch"
	"github.com/onsite/onsite/dispatch/match"
	"github.com/onsite/onsite/geo"
	"github.com/onsite/onsite/internal/db"
	"github.com/onsite/onsite/internal/dbtest"
	"github.com/onsite/onsite/internal/twiliotest"
	"github.com/onsite/onsite/jobs"
	"github.com/onsite/onsite/notify"
	"github.com/onsite/onsite/technicians"
)

// stepClock is a clock the test moves on by hand.
type stepClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *stepClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// links stand for the signed links a text carries, which change with each
// signing.
var links = regexp.MustCompile(`https://onsite\.test/(track|rate)/\S+[^.\s]`)

// TestScriptedDayTextByText runs a day with a drop, a reassignment by hand,
// a cancellation after assignment, a window three hours ahead, a late
// technician and a suspension, through the real services, notifier, Twilio
// client and stand-in, and checks every text each phone received, word for
// word and in order: in the recipient's language, in Zurich time, with the
// skill's name in that language.
func TestScriptedDayTextByText(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		zurich := mustZone(t, "Europe/Zurich")
		// 09:00 in Zurich on a Tuesday in March (CET, UTC+1).
		clk := &stepClock{t: time.Date(2026, 3, 10, 8, 0, 0, 0, time.UTC)}
		techs := technicians.NewService(d, clk.Now)
		svc := dispatch.NewService(d, dispatch.Config{SLA: time.Hour, GiveUp: time.Hour, WindowLead: time.Hour,
			OfferStrategy: match.Sequential, OfferTimeout: 2 * time.Minute, WaveSize: 1, MaxSearchKm: 40}, clk.Now)
		tw := twiliotest.Start(t)
		notifier := notify.NewNotifier(d, twilioSender(t, tw), "", guards(), quiet())
		notifier.WithClock(clk.Now)
		notifier.WithCheck(jobs.Check(svc))
		msgs := jobs.NewMessages(svc, notifier, zurich, []byte("key"), "https://onsite.test")

		if _, err := techs.AddSkill(ctx, technicians.Skill{Code: "wifi_setup", Name: "Wi-Fi setup",
			Names: technicians.Names{"de": "WLAN-Einrichtung", "fr": "installation Wi-Fi", "it": "configurazione Wi-Fi"}}); err != nil {
			t.Fatal(err)
		}
		site := geo.Point{Lat: 47.3769, Lng: 8.5417}
		tech := map[string]technicians.Technician{}
		for i, p := range []struct{ name, phone, locale string }{
			{"Anna Keller", "+41790000001", "en"}, {"Bruno Meier", "+41790000002", "de"},
			{"Chloé Roux", "+41790000003", "fr"}, {"Dario Rossi", "+41790000004", "it"},
		} {
			tt, err := techs.Create(ctx, technicians.NewTechnician{Name: p.name, Phone: p.phone, Locale: p.locale})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := techs.Certify(ctx, tt.ID, "wifi_setup", nil, clk.Now().AddDate(1, 0, 0)); err != nil {
				t.Fatal(err)
			}
			if _, err := techs.SetDuty(ctx, tt.ID, technicians.Available); err != nil {
				t.Fatal(err)
			}
			at := geo.Offset(site, 1000+float64(i)*500, 0) // Anna nearest, then Bruno, Chloé, Dario
			if _, err := techs.UpdateLocation(ctx, tt.ID, technicians.Ping{Lat: &at.Lat, Lng: &at.Lng}); err != nil {
				t.Fatal(err)
			}
			tech[strings.Fields(p.name)[0]] = tt
		}
		anna, bruno, chloe, dario := tech["Anna"], tech["Bruno"], tech["Chloé"], tech["Dario"]

		// tell does what the relay does after each commit: every event that
		// owes messages has them stored and sent.
		tell := func() {
			t.Helper()
			owed, err := svc.OwedEvents(ctx, clk.Now().Add(time.Second), 100)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range owed {
				if err := msgs.ForEvent(ctx, p.EventID); err != nil {
					t.Fatal(err)
				}
			}
		}
		step := func(what string, err error) {
			t.Helper()
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			tell()
			clk.advance(time.Minute)
		}
		open := func(customer, phone, locale string, w *dispatch.TimeWindow) string {
			t.Helper()
			proveContact(t, d, customer, phone)
			out, err := svc.Create(ctx, dispatch.Caller{Role: "customer", Subject: customer}, "",
				dispatch.NewRequest{Skill: "wifi_setup", Lat: &site.Lat, Lng: &site.Lng, Address: "Bahnhofplatz 1", Phone: phone, Locale: locale, Window: w})
			step("open a request for "+customer, err)
			return out.Request.ID
		}
		offer := func(id string, want technicians.Technician) dispatch.Offer {
			t.Helper()
			res, err := svc.Match(ctx, id)
			if err != nil || len(res.Offered) != 1 || res.Offered[0].TechnicianID != want.ID {
				t.Fatalf("match %s: %+v %v, want one offer to %s", id, res, err, want.Name)
			}
			tell()
			return res.Offered[0]
		}
		clock := func(at *time.Time) string { return at.In(zurich).Format("15:04") }
		eta := func(id string) string {
			t.Helper()
			var r dispatch.Request
			if err := d.Where("id = ?", id).First(&r).Error; err != nil || r.EtaAt == nil {
				t.Fatalf("eta of %s: %v", id, err)
			}
			return clock(r.EtaAt)
		}
		offerText := func(o dispatch.Offer, km string) string {
			return fmt.Sprintf("Onsite job: Wi-Fi setup, %s km away, about %d min; the address is in the app. Reply YES to accept or NO to decline (until %s).",
				km, (o.EtaSeconds+59)/60, clock(&o.ExpiresAt))
		}
		customer := dispatch.Caller{Role: "customer"}
		ops := dispatch.Caller{Role: "ops", Subject: "olga"}
		want := map[string][]string{}

		// Emma (English, ASAP): Anna accepts, sets off and drops the job;
		// Bruno takes it, runs late, arrives and fixes it.
		r1 := open("emma", "+41791000001", "en", nil)
		o := offer(r1, anna)
		want[anna.Phone] = append(want[anna.Phone], offerText(o, fmt.Sprintf("%.1f", float64(o.DistanceM)/1000)))
		_, err := svc.Accept(ctx, anna.ID, o.ID)
		at := eta(r1)
		step("Anna accepts", err)
		want["+41791000001"] = append(want["+41791000001"], "Anna will take care of your Wi-Fi setup request, arriving around "+at+". Follow live: <track>")
		_, err = svc.Depart(ctx, anna.ID, r1)
		step("Anna sets off", err)
		want["+41791000001"] = append(want["+41791000001"], "Anna has set off and should arrive around "+at+".")
		_, err = svc.Drop(ctx, anna.ID, r1, dispatch.JobStep{Reason: "my van broke down, call me at +41 79 999 99 99"})
		step("Anna drops the job", err)
		want["+41791000001"] = append(want["+41791000001"], "Anna can no longer come for your Wi-Fi setup request. We are looking for another technician and will text you who comes.")
		o = offer(r1, bruno)
		want[bruno.Phone] = append(want[bruno.Phone], "Onsite-Auftrag: WLAN-Einrichtung, "+strings.Replace(fmt.Sprintf("%.1f", float64(o.DistanceM)/1000), ".", ",", 1)+
			fmt.Sprintf(" km entfernt, ca. %d Min.; die Adresse steht in der App. Antworte JA zum Annehmen oder NEIN zum Ablehnen (bis %s).", (o.EtaSeconds+59)/60, clock(&o.ExpiresAt)))
		_, err = svc.Accept(ctx, bruno.ID, o.ID)
		at = eta(r1)
		step("Bruno accepts", err)
		want["+41791000001"] = append(want["+41791000001"], "Change of technician: Bruno comes instead of Anna for your Wi-Fi setup request, arriving around "+at+". Follow live: <track>")
		_, err = svc.Depart(ctx, bruno.ID, r1)
		step("Bruno sets off", err)
		want["+41791000001"] = append(want["+41791000001"], "Bruno has set off and should arrive around "+at+".")
		far := geo.Offset(site, 25000, 90) // stuck on the wrong side of the lake
		if _, err := techs.UpdateLocation(ctx, bruno.ID, technicians.Ping{Lat: &far.Lat, Lng: &far.Lng}); err != nil {
			t.Fatal(err)
		}
		err = svc.TechnicianMoved(ctx, bruno.ID, far)
		late := eta(r1)
		step("Bruno's position puts him well behind", err)
		want["+41791000001"] = append(want["+41791000001"], "Sorry, Bruno is running late and should now arrive around "+late+".")
		// A second report a little further on is no news: the new time
		// was told and the slip since is small.
		if err := svc.TechnicianMoved(ctx, bruno.ID, geo.Offset(site, 24000, 90)); err != nil {
			t.Fatal(err)
		}
		tell()
		_, err = svc.Arrive(ctx, bruno.ID, r1)
		step("Bruno arrives", err)
		want["+41791000001"] = append(want["+41791000001"], "Bruno has arrived.")
		_, err = svc.Complete(ctx, bruno.ID, r1, dispatch.JobStep{Outcome: "fixed"})
		step("Bruno fixes it", err)
		want["+41791000001"] = append(want["+41791000001"], "Your Wi-Fi setup job is done. How did it go? Rate the visit: <rate>")

		// Felix (German, ASAP): ops give it to Chloé by hand, then move it
		// to Dario; Felix cancels after the assignment.
		r2 := open("felix", "+41791000002", "de", nil)
		_, err = svc.AssignByHand(ctx, ops, r2, dispatch.AssignInput{TechnicianID: chloe.ID})
		at = eta(r2)
		step("ops assign Chloé", err)
		want["+41791000002"] = append(want["+41791000002"], "Chloé kommt für Ihren Auftrag WLAN-Einrichtung, Ankunft gegen "+at+". Live verfolgen: <track>")
		want[chloe.Phone] = append(want[chloe.Phone], "La répartition vous a confié une mission : installation Wi-Fi, dès que possible. L'adresse est dans l'app.")
		_, err = svc.AssignByHand(ctx, ops, r2, dispatch.AssignInput{TechnicianID: dario.ID})
		at = eta(r2)
		step("ops move it to Dario", err)
		want["+41791000002"] = append(want["+41791000002"], "Wechsel der Fachperson: Dario kommt statt Chloé für Ihren Auftrag WLAN-Einrichtung, Ankunft gegen "+at+". Live verfolgen: <track>")
		want[chloe.Phone] = append(want[chloe.Phone], "La répartition vous a retiré la mission installation Wi-Fi (elle est confiée à quelqu'un d'autre) : inutile de vous déplacer.")
		want[dario.Phone] = append(want[dario.Phone], "La centrale ti ha assegnato un lavoro: configurazione Wi-Fi, il prima possibile. L'indirizzo è nell'app.")
		customer.Subject = "felix"
		_, err = svc.Cancel(ctx, customer, r2, dispatch.CancelInput{Reason: "Fixed it myself! Visit evil.example to win"})
		step("Felix cancels", err)
		want["+41791000002"] = append(want["+41791000002"], "Ihr Auftrag WLAN-Einrichtung wurde storniert (auf Ihren Wunsch).")
		want[dario.Phone] = append(want[dario.Phone], "Il lavoro configurazione Wi-Fi è stato annullato (il cliente ha annullato): non devi andare.")

		// Giulia (Italian): an appointment three hours ahead, 13:00–15:00 in
		// Zurich, given to Anna; said as the window, never as an ETA.
		start := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
		r3 := open("giulia", "+41791000003", "it", &dispatch.TimeWindow{Start: start, End: start.Add(2 * time.Hour)})
		_, err = svc.AssignByHand(ctx, ops, r3, dispatch.AssignInput{TechnicianID: anna.ID})
		step("ops give the appointment to Anna", err)
		want["+41791000003"] = append(want["+41791000003"], "Anna verrà per il tuo appuntamento configurazione Wi-Fi tra le 13:00 e le 15:00. Segui dal vivo: <track>")
		want[anna.Phone] = append(want[anna.Phone], "Dispatch gave you a job: Wi-Fi setup between 13:00 and 15:00. The address is in the app.")

		// Dario is suspended: told why, in Italian.
		_, err = techs.Suspend(ctx, dario.ID, true)
		if err == nil {
			_, err = msgs.DutyNotices(ctx, techs)
		}
		step("ops suspend Dario", err)
		want[dario.Phone] = append(want[dario.Phone], "Onsite: la centrale ha sospeso il tuo account. Sei fuori servizio e non ricevi offerte; contatta la centrale.")
		if n, err := msgs.DutyNotices(ctx, techs); err != nil || n != 0 {
			t.Fatalf("a second run texted %d (%v)", n, err)
		}

		// The links work: Giulia's tracking link opens her appointment, and
		// Emma's rating link rates Bruno's visit, once.
		token := func(phone, kind string) string {
			for _, body := range tw.To(phone) {
				if l := links.FindString(body); strings.Contains(l, "/"+kind+"/") {
					return l[strings.LastIndex(l, "/")+1:]
				}
			}
			t.Fatalf("no %s link texted to %s", kind, phone)
			return ""
		}
		if v, err := svc.Tracked(ctx, []byte("key"), token("+41791000003", "track")); err != nil || v.ID != r3 {
			t.Errorf("Giulia's tracking link: %+v %v", v.ID, err)
		}
		rate := token("+41791000001", "rate")
		if r, err := svc.RateByLink(ctx, []byte("key"), rate, dispatch.RatingInput{Stars: 4}); err != nil || r.RatingStars == nil || *r.RatingStars != 4 {
			t.Errorf("Emma's rating link: %v", err)
		}
		if _, err := svc.RateByLink(ctx, []byte("key"), rate, dispatch.RatingInput{Stars: 1}); err == nil {
			t.Error("a rating link rated twice")
		}
		if _, err := svc.RateByLink(ctx, []byte("key"), rate+"x", dispatch.RatingInput{Stars: 1}); err == nil {
			t.Error("a forged rating link was taken")
		}

		total := 0
		for phone, texts := range want {
			got := tw.To(phone)
			for i := range got {
				got[i] = links.ReplaceAllStringFunc(got[i], func(l string) string {
					if strings.Contains(l, "/rate/") {
						return "<rate>"
					}
					return "<track>"
				})
			}
			total += len(got)
			t.Logf("%s: %q", phone, got)
			for i := range max(len(got), len(texts)) {
				g, w := "", ""
				if i < len(got) {
					g = got[i]
				}
				if i < len(texts) {
					w = texts[i]
				}
				if g != w {
					t.Errorf("%s text %d:\n got: %s\nwant: %s", phone, i+1, g, w)
				}
			}
		}
		if all := len(tw.Messages()); all != total {
			t.Errorf("%d texts in all, %d to the phones of the day", all, total)
		}
		for _, m := range tw.Messages() {
			if body := m.Get("Body"); strings.Contains(body, "evil") || strings.Contains(body, "van") || strings.Contains(body, "wifi_setup") {
				t.Errorf("a text carries words it must not: %q", body)
			}
		}
	})
}

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}
