package dispatch_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/onsite/onsite/dispatch"
	"github.com/onsite/onsite/geo"
	"github.com/onsite/onsite/internal/db"
	"github.com/onsite/onsite/internal/dbtest"
	"github.com/onsite/onsite/internal/errs"
	"github.com/onsite/onsite/technicians"
)

// day is the scripted day: 1 December 2026, in UTC (Zürich is UTC+1).
var day = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

// at is a time on the scripted day ("08:10", "13:01:40"), or on another day
// of December ("4 10:40").
func at(s string) time.Time {
	d := 1
	if n, _ := fmt.Sscanf(s, "%d %s", &d, &s); n < 2 {
		d = 1
	}
	for _, layout := range []string{"15:04:05", "15:04"} {
		if t, err := time.Parse(layout, s); err == nil {
			return day.AddDate(0, 0, d-1).Add(time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute + time.Duration(t.Second())*time.Second)
		}
	}
	panic("bad time " + s)
}

func tp(s string) *time.Time { t := at(s); return &t }

var (
	winterthur = geo.Point{Lat: 47.4988, Lng: 8.7237}
	basel      = geo.Point{Lat: 47.5596, Lng: 7.5886} // in no service area
)

// scripted writes a request row as the day's script has it.
type scripted struct {
	id, customer, skill string
	place               geo.Point
	mode                dispatch.Mode
	state               dispatch.State
	created             string
	confirmed           string // an owner's confirmation (device requests)
	window              [2]string
	onSite, done        string
	cancelled           string
	outcome             string
	flagged             bool
	tech                string // t1, t2, t3
	device, followUpOf  string
}

func (s scripted) row(techs map[string]string) dispatch.Request {
	r := dispatch.Request{ID: s.id, CustomerID: s.customer, CreatedBy: "customer", SkillCode: s.skill,
		Lat: s.place.Lat, Lng: s.place.Lng, Cell: geo.CellOf(s.place, geo.CityResolution),
		Mode: s.mode, State: s.state, CreatedAt: at(s.created), UpdatedAt: at(s.created), ArrivalFlagged: s.flagged}
	opt := func(v string) *time.Time {
		if v == "" {
			return nil
		}
		return tp(v)
	}
	r.ConfirmedAt, r.OnSiteAt, r.CompletedAt, r.CancelledAt = opt(s.confirmed), opt(s.onSite), opt(s.done), opt(s.cancelled)
	if s.mode == dispatch.ASAP {
		start := r.CreatedAt
		if r.ConfirmedAt != nil {
			start = *r.ConfirmedAt
		}
		deadline := start.Add(time.Hour)
		r.SLADeadline = &deadline
	} else {
		r.WindowStart, r.WindowEnd = opt(s.window[0]), opt(s.window[1])
		r.SLADeadline = r.WindowEnd
	}
	if s.outcome != "" {
		r.Outcome = &s.outcome
	}
	if s.tech != "" {
		id := techs[s.tech]
		r.TechnicianID = &id
	}
	if s.device != "" {
		r.DeviceID, r.CreatedBy = &s.device, "machine"
	}
	if s.followUpOf != "" {
		r.FollowUpOf = &s.followUpOf
	}
	return r
}

// TestKPIsScriptedDay computes the KPIs of a scripted day and compares every
// figure with the count by hand in the comments, as a whole, per service
// area and per skill, and under each filter.
func TestKPIsScriptedDay(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		now := at("10 12:00") // nine days on: every 7-day look-ahead has closed
		clock := func() time.Time { return now }
		zone, _ := time.LoadLocation("Europe/Zurich")
		zurichArea := geo.CellOf(zurich, geo.CityResolution).Parent(geo.RuralResolution)
		winterthurArea := geo.CellOf(winterthur, geo.CityResolution).Parent(geo.RuralResolution)
		svc := dispatch.NewService(d, dispatch.Config{SLA: time.Hour, GiveUp: time.Hour, MaxSearchKm: 40, TimeZone: zone,
			Areas: []geo.Area{{Name: "winterthur", Cells: []geo.Cell{winterthurArea}}, {Name: "zurich", Cells: []geo.Cell{zurichArea}}}}, clock)
		techs := technicians.NewService(d, clock)
		ctx := t.Context()
		for _, sk := range []string{"wifi_setup", "router_replace"} {
			if _, err := techs.CreateSkill(ctx, sk, sk); err != nil {
				t.Fatal(err)
			}
		}
		tech := map[string]string{}
		for i, name := range []string{"t1", "t2", "t3"} {
			x, err := techs.Create(ctx, technicians.NewTechnician{Name: name, Phone: fmt.Sprintf("+4179000000%d", i)})
			if err != nil {
				t.Fatal(err)
			}
			tech[name] = x.ID
		}
		for _, c := range []string{"c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8"} {
			if err := d.Exec("INSERT INTO customers (id, name, locale, created_at) VALUES (?, '', 'en', ?)", c, day).Error; err != nil {
				t.Fatal(err)
			}
		}
		const asap, window = dispatch.ASAP, dispatch.Window
		const done, cancelled = dispatch.Completed, dispatch.Cancelled
		wifi, router := "wifi_setup", "router_replace"
		script := []scripted{
			// Zürich.
			{id: "r01", customer: "c1", skill: wifi, place: zurich, mode: asap, state: done, created: "08:00", onSite: "08:30", done: "09:00", outcome: "fixed", tech: "t1"},
			{id: "r02", customer: "c2", skill: wifi, place: zurich, mode: asap, state: done, created: "08:10", onSite: "09:20", done: "09:40", outcome: "not_fixed", tech: "t2"},
			{id: "r02f", customer: "c2", skill: wifi, place: zurich, mode: asap, state: done, created: "09:40", confirmed: "10:00", onSite: "10:30", done: "11:10", outcome: "fixed", tech: "t2", followUpOf: "r02"},
			{id: "r03", customer: "c5", skill: router, place: zurich, mode: asap, state: cancelled, created: "09:00", cancelled: "10:15"},
			{id: "r04", customer: "c5", skill: router, place: zurich, mode: asap, state: cancelled, created: "11:00", cancelled: "11:20"},
			// A late job closed needs_parts after midnight: its follow-up is
			// created the next day, outside the period, and fixes it on the 3rd.
			{id: "r15", customer: "c8", skill: wifi, place: zurich, mode: asap, state: done, created: "21:00", onSite: "21:30", done: "2 00:10", outcome: "needs_parts", tech: "t1"},
			{id: "r15f", customer: "c8", skill: wifi, place: zurich, mode: asap, state: done, created: "2 00:10", confirmed: "3 09:00", onSite: "3 09:30", done: "3 10:00", outcome: "fixed", tech: "t1", followUpOf: "r15"},
			{id: "r11", customer: "c7", skill: wifi, place: zurich, mode: window, state: cancelled, created: "13:00", window: [2]string{"20:00", "22:00"}, cancelled: "19:00"},
			// Winterthur.
			{id: "r05", customer: "c3", skill: wifi, place: winterthur, mode: asap, state: done, created: "12:00", confirmed: "12:01:40", onSite: "13:01", done: "13:30", outcome: "fixed", tech: "t3", device: "dev-1"},
			{id: "r06", customer: "c4", skill: wifi, place: winterthur, mode: asap, state: done, created: "14:00", onSite: "14:30", done: "15:00", outcome: "fixed", tech: "t1", flagged: true},
			// Basel, in no service area.
			{id: "r08", customer: "c5", skill: wifi, place: basel, mode: asap, state: dispatch.Unfulfilled, created: "16:00"},
			{id: "r09", customer: "c6", skill: router, place: basel, mode: window, state: done, created: "10:00", window: [2]string{"18:00", "20:00"}, onSite: "18:30", done: "18:45", tech: "t3"},
			{id: "r10", customer: "c6", skill: router, place: basel, mode: window, state: done, created: "12:00", window: [2]string{"19:00", "21:00"}, onSite: "18:40", done: "19:30", outcome: "fixed", tech: "t2"},
			// Other days: later visits that may undo a fix.
			{id: "r07", customer: "c3", skill: router, place: winterthur, mode: asap, state: done, created: "4 10:00", onSite: "4 10:40", done: "4 11:00", outcome: "fixed", tech: "t3", device: "dev-1"},
			{id: "r12", customer: "c1", skill: wifi, place: zurich, mode: asap, state: done, created: "9 09:30", onSite: "9 10:00", done: "9 10:30", outcome: "fixed", tech: "t1"},
			{id: "r13", customer: "c3", skill: wifi, place: winterthur, mode: asap, state: done, created: "2 09:00", onSite: "2 09:30", done: "2 10:00", outcome: "fixed", tech: "t3", device: "dev-2"},
			{id: "r14", customer: "c4", skill: wifi, place: winterthur, mode: asap, state: done, created: "5 09:00", onSite: "5 09:30", done: "5 10:00", outcome: "fixed", tech: "t1"},
		}
		for _, s := range script {
			r := s.row(tech)
			if err := d.Create(&r).Error; err != nil {
				t.Fatalf("request %s: %v", s.id, err)
			}
		}
		n := 0
		offer := func(req, techName string, state dispatch.OfferState) {
			n++
			o := dispatch.Offer{ID: fmt.Sprintf("o%02d", n), RequestID: req, TechnicianID: tech[techName], Rank: 1, Round: 1,
				Reason: "scripted", State: state, CreatedAt: day, ExpiresAt: day.Add(time.Minute)}
			if err := d.Create(&o).Error; err != nil {
				t.Fatal(err)
			}
		}
		const acc, dec, exp = dispatch.OfferAccepted, dispatch.OfferDeclined, dispatch.OfferExpired
		offer("r01", "t1", acc)
		offer("r02", "t1", dec)
		offer("r02", "t2", acc)
		offer("r02f", "t2", acc)
		offer("r03", "t3", exp)
		offer("r05", "t3", acc)
		offer("r08", "t1", exp)
		offer("r08", "t2", dec)
		offer("r08", "t3", dispatch.OfferWithdrawn)
		offer("r09", "t1", acc)
		offer("r09", "t3", acc)
		offer("r10", "t2", acc)
		offer("r07", "t3", acc) // another day's: not counted
		dropped, end := "dropped", tp("17:00")
		if err := d.Create(&dispatch.Assignment{ID: "a1", RequestID: "r09", TechnicianID: tech["t1"], StartedAt: at("16:00"), EndedAt: end, EndReason: &dropped}).Error; err != nil {
			t.Fatal(err)
		}
		event := func(req, typ, when string, data map[string]any) {
			n++
			b, _ := json.Marshal(data)
			e := dispatch.Event{ID: fmt.Sprintf("e%02d", n), RequestID: req, Type: typ, ActorRole: "system", ActorID: "onsite", Data: string(b), At: at(when)}
			if err := d.Create(&e).Error; err != nil {
				t.Fatal(err)
			}
		}
		event("r03", "at_risk", "09:30", nil)
		event("r03", "cancelled", "10:15", nil)
		event("r08", "at_risk", "16:20", nil)
		event("r08", "back_on_track", "16:30", nil)
		event("r08", "at_risk", "16:40", nil)
		event("r08", "unfulfilled", "17:00", nil)
		event("r06", "assigned", "14:05", map[string]any{"override": true, "by_hand": true, "technician_id": tech["t1"], "reason": "customer asked for her"})
		event("r01", "assigned", "08:05", map[string]any{"by_hand": true, "technician_id": tech["t1"]})
		event("r09", "no_show", "18:45", nil)

		f := func(v float64) *float64 { return &v }
		s := func(v int) *int { return &v }
		// The whole day: r01 r02 r02f r03 r04 r05 r06 r08 r09 r10 r11 r15
		// (r15f is created on the 2nd).
		whole := dispatch.KPIs{
			Requests: 12, Completed: 8, Cancelled: 3, Unfulfilled: 1, // completed r01 r02 r02f r05 r06 r09 r10 r15; cancelled r03 r04 r11; unfulfilled r08
			// ASAP with a promise: r01 r02 r02f r03 r04 r05 r06 r08 r15 = 9.
			// r04 was cancelled before its deadline (apart); judged the other 8.
			// On time: r01 (08:30 ≤ 09:00), r02f (10:30 ≤ 11:00, its clock from the
			// 10:00 confirmation), r05 (13:01 ≤ 13:01:40 from the owner's
			// confirmation; 61 min from creation), r15 (21:30 ≤ 22:00). Misses:
			// r02 (09:20 > 09:10), r03 (cancelled 10:15, after its 10:00
			// deadline), r06 (arrived flagged), r08 (unfulfilled). 4 of 8 = 0.5.
			ASAPRequests: 9, ASAPJudged: 8, ASAPOnTime: 4, OnSiteWithinSLA: f(0.5), CancelledInTime: 1,
			// Times to site, flagged r06 left out: r01 30m, r02 70m, r02f 30m,
			// r05 59m20s, r15 30m → 1800 1800 1800 3560 4200; p50 = 3rd = 1800,
			// p90 = 5th = 4200.
			TimeToSiteP50Seconds: s(1800), TimeToSiteP90Seconds: s(4200),
			// Windows r09 r10 r11: r11 cancelled before its window ended; r09
			// 18:30 in 18:00–20:00 kept, r10 18:40 before 19:00 missed: 1 of 2.
			WindowRequests: 3, WindowJudged: 2, WindowKept: 1, WindowKeptShare: f(0.5), WindowCancelledInTime: 1,
			FlaggedArrivals: 1, // r06
			// First visits (not follow-ups, closed with an outcome): r01 r02 r05
			// r06 r10 r15 (r09's no-show is no outcome) = 6. Fixed first time:
			// r01 (c1's next wifi visit is 8 days later), r05 (c3's visits of 2
			// and 4 December are another device, another skill), r10; not r02
			// (not_fixed), r06 (c4's wifi visit on 5 December), r15
			// (needs_parts) = 3 of 6. Follow-ups created that day: r02f.
			FirstVisits: 6, FirstTimeFixes: 3, FirstTimeFixRate: f(0.5), FollowUps: 1,
			// Resolved chains: r01 1h, r02→r02f 08:10 to 11:10 = 3h (2 visits),
			// r05 1h30, r06 1h, r10 7h30, r15→r15f 1 Dec 21:00 to 3 Dec 10:00 =
			// 37h (2 visits) → 3600 3600 5400 10800 27000 133200: p50 = 3rd =
			// 5400, p90 = 6th = 133200; visits 8 / 6 = 1.333.
			Resolved: 6, ResolutionP50Seconds: s(5400), ResolutionP90Seconds: s(133200), VisitsPerResolution: f(1.333),
			// 12 offers of the day's requests (r07's is another day's): 12 / 12
			// requests = 1 per request; accepted 7 (r01, r02 t2, r02f, r05,
			// r09 ×2, r10) of 11 answered or expired (the withdrawn one is
			// neither) = 0.636.
			Offers: 12, OffersPerRequest: f(1), AcceptanceRate: f(0.636),
			Drops: 1, NoShows: 1, // r09 both
			// At risk: r03 09:30–10:15 (45 min), r08 16:20–16:30 and 16:40–17:00
			// (30 min) = 75 min.
			AtRiskRequests: 2, TimeAtRiskSeconds: 75 * 60,
			Overrides: 1, // r06's assignment
		}
		zurichKPIs := dispatch.KPIs{
			// r01 r02 r02f r03 r04 r11 r15
			Requests: 7, Completed: 4, Cancelled: 3,
			// judged r01 r02 r02f r03 r15, on time r01 r02f r15; r04 cancelled in time
			ASAPRequests: 6, ASAPJudged: 5, ASAPOnTime: 3, OnSiteWithinSLA: f(0.6), CancelledInTime: 1,
			TimeToSiteP50Seconds: s(1800), TimeToSiteP90Seconds: s(4200), // 1800 1800 1800 4200
			WindowRequests: 1, WindowCancelledInTime: 1, // r11
			FirstVisits: 3, FirstTimeFixes: 1, FirstTimeFixRate: f(0.333), FollowUps: 1, // r01 yes, r02 r15 no
			// r01 1h/1 visit, r02 3h/2, r15 37h/2 → p50 2nd 10800, p90 3rd 133200; 5 visits / 3
			Resolved: 3, ResolutionP50Seconds: s(10800), ResolutionP90Seconds: s(133200), VisitsPerResolution: f(1.667),
			// r01 1, r02 2, r02f 1, r03 1 = 5 / 7; accepted r01 r02 r02f of 5 answered
			Offers: 5, OffersPerRequest: f(0.714), AcceptanceRate: f(0.6),
			AtRiskRequests: 1, TimeAtRiskSeconds: 45 * 60, // r03
		}
		winterthurKPIs := dispatch.KPIs{
			// r05 r06
			Requests: 2, Completed: 2,
			ASAPRequests: 2, ASAPJudged: 2, ASAPOnTime: 1, OnSiteWithinSLA: f(0.5), // r05 yes, r06 flagged
			TimeToSiteP50Seconds: s(3560), TimeToSiteP90Seconds: s(3560),
			FlaggedArrivals: 1,
			FirstVisits:     2, FirstTimeFixes: 1, FirstTimeFixRate: f(0.5), // r05 yes, r06 repeated on 5 December
			Resolved: 2, ResolutionP50Seconds: s(3600), ResolutionP90Seconds: s(5400), VisitsPerResolution: f(1), // r06 1h, r05 1h30
			Offers: 1, OffersPerRequest: f(0.5), AcceptanceRate: f(1), // r05's
			Overrides: 1,
		}
		outside := dispatch.KPIs{
			// r08 r09 r10
			Requests: 3, Completed: 2, Unfulfilled: 1,
			ASAPRequests: 1, ASAPJudged: 1, OnSiteWithinSLA: f(0), // r08
			WindowRequests: 2, WindowJudged: 2, WindowKept: 1, WindowKeptShare: f(0.5), // r09 kept, r10 early
			FirstVisits: 1, FirstTimeFixes: 1, FirstTimeFixRate: f(1), // r10 (r09 a no-show)
			Resolved: 1, ResolutionP50Seconds: s(27000), ResolutionP90Seconds: s(27000), VisitsPerResolution: f(1),
			// r08 3 (expired, declined, withdrawn), r09 2, r10 1; accepted 3 of 5
			Offers: 6, OffersPerRequest: f(2), AcceptanceRate: f(0.6),
			Drops: 1, NoShows: 1, AtRiskRequests: 1, TimeAtRiskSeconds: 30 * 60,
		}
		wifiKPIs := dispatch.KPIs{
			// r01 r02 r02f r05 r06 r08 r11 r15
			Requests: 8, Completed: 6, Cancelled: 1, Unfulfilled: 1,
			// judged r01 r02 r02f r05 r06 r08 r15; on time r01 r02f r05 r15
			ASAPRequests: 7, ASAPJudged: 7, ASAPOnTime: 4, OnSiteWithinSLA: f(0.571),
			TimeToSiteP50Seconds: s(1800), TimeToSiteP90Seconds: s(4200), // 1800 1800 1800 3560 4200
			WindowRequests: 1, WindowCancelledInTime: 1, FlaggedArrivals: 1,
			FirstVisits: 5, FirstTimeFixes: 2, FirstTimeFixRate: f(0.4), FollowUps: 1, // r01 r05 of r01 r02 r05 r06 r15
			// r01 3600, r02 10800 (2 visits), r05 5400, r06 3600, r15 133200 (2
			// visits) → 3600 3600 5400 10800 133200: p50 3rd 5400, p90 5th 133200; 7 visits / 5
			Resolved: 5, ResolutionP50Seconds: s(5400), ResolutionP90Seconds: s(133200), VisitsPerResolution: f(1.4),
			// r01 1, r02 2, r02f 1, r05 1, r08 3 = 8 / 8; accepted 4 of 7 answered
			Offers: 8, OffersPerRequest: f(1), AcceptanceRate: f(0.571),
			AtRiskRequests: 1, TimeAtRiskSeconds: 30 * 60, Overrides: 1,
		}
		routerKPIs := dispatch.KPIs{
			// r03 r04 r09 r10
			Requests: 4, Completed: 2, Cancelled: 2,
			ASAPRequests: 2, ASAPJudged: 1, OnSiteWithinSLA: f(0), CancelledInTime: 1, // r03 miss, r04 apart
			WindowRequests: 2, WindowJudged: 2, WindowKept: 1, WindowKeptShare: f(0.5),
			FirstVisits: 1, FirstTimeFixes: 1, FirstTimeFixRate: f(1),
			Resolved: 1, ResolutionP50Seconds: s(27000), ResolutionP90Seconds: s(27000), VisitsPerResolution: f(1),
			Offers: 4, OffersPerRequest: f(1), AcceptanceRate: f(0.75), // r03 1 expired, r09 2, r10 1 accepted
			Drops: 1, NoShows: 1, AtRiskRequests: 1, TimeAtRiskSeconds: 45 * 60,
		}
		t2KPIs := dispatch.KPIs{
			// served by t2: r02 r02f r10
			Requests: 3, Completed: 3,
			ASAPRequests: 2, ASAPJudged: 2, ASAPOnTime: 1, OnSiteWithinSLA: f(0.5), // r02 late, r02f on time
			TimeToSiteP50Seconds: s(1800), TimeToSiteP90Seconds: s(4200),
			WindowRequests: 1, WindowJudged: 1, WindowKeptShare: f(0), // r10 early
			FirstVisits: 2, FirstTimeFixes: 1, FirstTimeFixRate: f(0.5), FollowUps: 1, // r02 no, r10 yes
			Resolved: 2, ResolutionP50Seconds: s(10800), ResolutionP90Seconds: s(27000), VisitsPerResolution: f(1.5),
			// t2's offers: r02 accepted, r02f accepted, r08 declined, r10 accepted
			Offers: 4, OffersPerRequest: f(1.333), AcceptanceRate: f(0.75),
		}
		nineInZurich := dispatch.KPIs{
			// created 08:00 and 08:10 UTC, 09:xx in Zürich: r01 r02
			Requests: 2, Completed: 2,
			ASAPRequests: 2, ASAPJudged: 2, ASAPOnTime: 1, OnSiteWithinSLA: f(0.5),
			TimeToSiteP50Seconds: s(1800), TimeToSiteP90Seconds: s(4200),
			FirstVisits: 2, FirstTimeFixes: 1, FirstTimeFixRate: f(0.5),
			Resolved: 2, ResolutionP50Seconds: s(3600), ResolutionP90Seconds: s(10800), VisitsPerResolution: f(1.5),
			Offers: 3, OffersPerRequest: f(1.5), AcceptanceRate: f(0.667),
		}
		period := dispatch.KPIFilter{From: day, To: day.AddDate(0, 0, 1)}
		check := func(name string, got, want dispatch.KPIs) {
			t.Helper()
			g, _ := json.Marshal(got)
			w, _ := json.Marshal(want)
			if string(g) != string(w) {
				t.Errorf("%s:\n got %s\nwant %s", name, g, w)
			}
		}
		rep, err := svc.KPIs(ctx, period)
		if err != nil {
			t.Fatal(err)
		}
		check("whole day", rep.KPIs, whole)

		byArea := period
		byArea.GroupBy = "area"
		rep, err = svc.KPIs(ctx, byArea)
		if err != nil {
			t.Fatal(err)
		}
		check("whole day grouped by area", rep.KPIs, whole)
		if len(rep.Groups) != 3 || rep.Groups[0].Key != "" || rep.Groups[1].Key != "winterthur" || rep.Groups[2].Key != "zurich" {
			t.Fatalf("area groups %+v", rep.Groups)
		}
		check("outside every area", rep.Groups[0].KPIs, outside)
		check("winterthur", rep.Groups[1].KPIs, winterthurKPIs)
		check("zurich", rep.Groups[2].KPIs, zurichKPIs)

		bySkill := period
		bySkill.GroupBy = "skill"
		rep, err = svc.KPIs(ctx, bySkill)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Groups) != 2 || rep.Groups[0].Key != router || rep.Groups[1].Key != wifi {
			t.Fatalf("skill groups %+v", rep.Groups)
		}
		check("router_replace", rep.Groups[0].KPIs, routerKPIs)
		check("wifi_setup", rep.Groups[1].KPIs, wifiKPIs)

		byCell := period
		byCell.GroupBy = "cell"
		rep, _ = svc.KPIs(ctx, byCell)
		for _, g := range rep.Groups {
			if g.Key == zurichArea.String() {
				check("the resolution-7 cell of Zürich", g.KPIs, zurichKPIs)
			}
		}
		if len(rep.Groups) != 3 {
			t.Fatalf("%d cells, want Zürich's, Winterthur's and Basel's", len(rep.Groups))
		}

		filtered := []struct {
			name string
			f    func(*dispatch.KPIFilter)
			want dispatch.KPIs
		}{
			{"cell", func(f *dispatch.KPIFilter) { f.Cell = &zurichArea }, zurichKPIs},
			{"area", func(f *dispatch.KPIFilter) { f.Area = "winterthur" }, winterthurKPIs},
			{"skill", func(f *dispatch.KPIFilter) { f.Skill = router }, routerKPIs},
			{"technician", func(f *dispatch.KPIFilter) { f.Technician = tech["t2"] }, t2KPIs},
			{"hour", func(f *dispatch.KPIFilter) { h := 9; f.Hour = &h }, nineInZurich},
		}
		for _, tt := range filtered {
			f := period
			tt.f(&f)
			rep, err := svc.KPIs(ctx, f)
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			check("filter "+tt.name, rep.KPIs, tt.want)
		}
		byTech := period
		byTech.GroupBy = "technician"
		rep, _ = svc.KPIs(ctx, byTech)
		for _, g := range rep.Groups {
			switch g.Key {
			case tech["t2"]:
				check("technician group t2", g.KPIs, t2KPIs)
			case "":
				// Served by nobody: r03 r04 r08 r11, whose offers were all
				// someone's (so none here).
				if g.Requests != 4 || g.Offers != 0 || g.AtRiskRequests != 2 {
					t.Errorf("served by nobody: %+v", g.KPIs)
				}
			}
		}
		if len(rep.Groups) != 4 || rep.Groups[0].Key != "" {
			t.Fatalf("%d technician groups, want nobody, t1, t2 and t3", len(rep.Groups))
		}
		byHour := period
		byHour.GroupBy = "hour"
		rep, _ = svc.KPIs(ctx, byHour)
		if rep.Groups[0].Key != "9" {
			t.Fatalf("first hour %q, want 9 (08:00 UTC in Zürich)", rep.Groups[0].Key)
		}
		check("hour group 9", rep.Groups[0].KPIs, nineInZurich)

		refused := []struct {
			name, field string
			f           func(*dispatch.KPIFilter)
		}{
			{"to before from", "to", func(f *dispatch.KPIFilter) { f.To = f.From.Add(-time.Hour) }},
			{"over a year", "from", func(f *dispatch.KPIFilter) { f.From = f.To.AddDate(-2, 0, 0) }},
			{"fine cell", "cell", func(f *dispatch.KPIFilter) { c := geo.CellOf(zurich, 10); f.Cell = &c }},
			{"unknown area", "area", func(f *dispatch.KPIFilter) { f.Area = "geneva" }},
			{"unknown skill", "skill", func(f *dispatch.KPIFilter) { f.Skill = "wifi_setpu" }},
			{"unknown technician", "technician", func(f *dispatch.KPIFilter) { f.Technician = "nobody" }},
			{"hour 24", "hour", func(f *dispatch.KPIFilter) { h := 24; f.Hour = &h }},
			{"unknown grouping", "group_by", func(f *dispatch.KPIFilter) { f.GroupBy = "region" }},
		}
		for _, tt := range refused {
			f := period
			tt.f(&f)
			_, err := svc.KPIs(ctx, f)
			if e, ok := errs.As(err); !ok || e.Code != errs.Invalid || e.Field != tt.field {
				t.Errorf("%s: %v, want invalid %s", tt.name, err, tt.field)
			}
		}
	})
}
