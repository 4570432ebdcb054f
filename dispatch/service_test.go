package dispatch_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/onsite/onsite/dispatch"
	"github.com/onsite/onsite/dispatch/match"
	"github.com/onsite/onsite/geo"
	"github.com/onsite/onsite/internal/db"
	"github.com/onsite/onsite/internal/dbtest"
	"github.com/onsite/onsite/internal/errs"
	"github.com/onsite/onsite/technicians"
)

var zurich = geo.Point{Lat: 47.3769, Lng: 8.5417}

// clock is a time source the test moves by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type world struct {
	t     *testing.T
	d     *db.DB
	clock *clock
	techs *technicians.Service
	svc   *dispatch.Service
	ctx   context.Context
	phone int
}

func newWorld(t *testing.T, d *db.DB, strategy string, waveSize int) *world {
	t.Helper()
	c := &clock{t: time.Now().UTC().Truncate(time.Second)}
	w := &world{t: t, d: d, clock: c, techs: technicians.NewService(d, c.Now), ctx: context.Background(), phone: 41790000000}
	w.svc = dispatch.NewService(d, dispatch.Config{
		SLA: time.Hour, GiveUp: time.Hour, WindowLead: 30 * time.Minute, OfferStrategy: strategy,
		OfferTimeout: 30 * time.Second, WaveSize: waveSize, MaxSearchKm: 40, BatchUrgency: 1,
	}, c.Now)
	if _, err := w.techs.CreateSkill(w.ctx, "wifi_setup", "Wi-Fi setup"); err != nil {
		t.Fatal(err)
	}
	return w
}

type techOpt func(w *world, id string)

// tech onboards a certified, available technician dx metres east of Zürich.
func (w *world) tech(name string, dxM float64, opts ...techOpt) string {
	w.t.Helper()
	w.phone++
	tech, err := w.techs.Create(w.ctx, technicians.NewTechnician{Name: name, Phone: "+" + itoa(w.phone)})
	if err != nil {
		w.t.Fatal(err)
	}
	if _, err := w.techs.Certify(w.ctx, tech.ID, "wifi_setup", nil, w.clock.Now().Add(24*time.Hour)); err != nil {
		w.t.Fatal(err)
	}
	if _, err := w.techs.SetDuty(w.ctx, tech.ID, technicians.Available); err != nil {
		w.t.Fatal(err)
	}
	w.move(tech.ID, geo.Offset(zurich, dxM, 0))
	for _, o := range opts {
		o(w, tech.ID)
	}
	return tech.ID
}

func (w *world) move(id string, p geo.Point) {
	w.t.Helper()
	at := w.clock.Now()
	if _, err := w.techs.UpdateLocation(w.ctx, id, technicians.Ping{Lat: &p.Lat, Lng: &p.Lng, At: &at}); err != nil {
		w.t.Fatal(err)
	}
}

func itoa(n int) string {
	b := []byte{}
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

func (w *world) request() dispatch.Request {
	w.t.Helper()
	lat, lng := zurich.Lat, zurich.Lng
	out, err := w.svc.Create(w.ctx, dispatch.Caller{Role: "customer", Subject: "carla"}, "", dispatch.NewRequest{Skill: "wifi_setup", Lat: &lat, Lng: &lng, Address: "Bahnhofplatz"})
	if err != nil {
		w.t.Fatal(err)
	}
	return out.Request
}

func (w *world) match(id string) dispatch.MatchResult {
	w.t.Helper()
	res, err := w.svc.Match(w.ctx, id)
	if err != nil {
		w.t.Fatal(err)
	}
	return res
}

func offeredTo(res dispatch.MatchResult) []string {
	var out []string
	for _, o := range res.Offered {
		out = append(out, o.TechnicianID)
	}
	return out
}

func (w *world) eventTypes(id string) []string {
	w.t.Helper()
	evs, err := w.svc.Events(w.ctx, id)
	if err != nil {
		w.t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		out = append(out, e.Type)
	}
	return out
}

func (w *world) outboxCount(kind string) int64 {
	var n int64
	w.d.Table("outbox").Where("kind = ?", kind).Count(&n)
	return n
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestWholePath(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		w := newWorld(t, d, match.Sequential, 1)
		near := w.tech("Nina", 1500)
		w.tech("Fred", 6000)
		r := w.request()
		res := w.match(r.ID)
		if got := offeredTo(res); len(got) != 1 || got[0] != near {
			t.Fatalf("offered to %v, want the nearest %s", got, near)
		}
		if w.outboxCount(dispatch.TaskOfferExpire) != 1 {
			t.Fatal("no expiry task written with the offer")
		}
		// matching again while the offer is pending sends nothing
		if again := w.match(r.ID); len(again.Offered) != 0 || again.Skipped != "offers pending" {
			t.Fatalf("second match: %+v", again)
		}
		offers, err := w.svc.MyOffers(w.ctx, near)
		if err != nil || len(offers) != 1 || offers[0].Skill != "wifi_setup" {
			t.Fatalf("my offers: %+v %v", offers, err)
		}
		w.clock.Advance(10 * time.Second)
		got, err := w.svc.Accept(w.ctx, near, res.Offered[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != dispatch.Assigned || *got.TechnicianID != near || got.EtaAt == nil {
			t.Fatalf("after accept: %+v", got)
		}
		tech, _ := w.techs.Get(w.ctx, near)
		if tech.ActiveJobs != 1 || tech.DutyStatus != technicians.Busy || tech.OffersAccepted != 1 {
			t.Fatalf("technician after accept: jobs %d duty %s", tech.ActiveJobs, tech.DutyStatus)
		}
		w.clock.Advance(time.Minute)
		if _, err := w.svc.Depart(w.ctx, near, r.ID); err != nil {
			t.Fatal(err)
		}
		// a position on the way updates the ETA
		w.move(near, geo.Offset(zurich, 200, 0))
		if err := w.svc.TechnicianMoved(w.ctx, near, geo.Offset(zurich, 200, 0)); err != nil {
			t.Fatal(err)
		}
		moved, _ := w.svc.Get(w.ctx, dispatch.Caller{Role: "ops"}, r.ID)
		if !moved.EtaAt.Before(*got.EtaAt) {
			t.Fatalf("eta did not improve: %v then %v", got.EtaAt, moved.EtaAt)
		}
		w.clock.Advance(5 * time.Minute)
		if _, err := w.svc.Arrive(w.ctx, near, r.ID); err != nil {
			t.Fatal(err)
		}
		w.clock.Advance(40 * time.Minute)
		if _, err := w.svc.Complete(w.ctx, near, r.ID, dispatch.JobStep{Outcome: "nope"}); errs.CodeOf(err) != errs.Invalid {
			t.Fatalf("bad outcome: %v", err)
		}
		done, err := w.svc.Complete(w.ctx, near, r.ID, dispatch.JobStep{Outcome: "fixed"})
		if err != nil {
			t.Fatal(err)
		}
		if done.State != dispatch.Completed || *done.Outcome != "fixed" || done.Visits != 1 {
			t.Fatalf("completed: %+v", done)
		}
		tech, _ = w.techs.Get(w.ctx, near)
		if tech.ActiveJobs != 0 || tech.DutyStatus != technicians.Available {
			t.Fatalf("technician after completion: jobs %d duty %s", tech.ActiveJobs, tech.DutyStatus)
		}
		want := []string{"created", "offered", "assigned", "en_route", "on_site", "completed"}
		if got := w.eventTypes(r.ID); !equal(got, want) {
			t.Fatalf("events %v, want %v", got, want)
		}
		k, err := w.svc.KPIs(w.ctx, dispatch.KPIFilter{From: w.clock.Now().Add(-2 * time.Hour), To: w.clock.Now().Add(time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		// On site 6 min 10 s after creation, 200 m from the site; the
		// deadline has not passed, so the promise is not judged yet.
		if k.ASAPPending != 1 || k.ASAPJudged != 0 || k.OnSiteWithinSLA != nil || *k.TimeToSiteP50Seconds != 6*60+10 ||
			*k.OffersPerRequest != 1 || *k.AcceptanceRate != 1 || *k.FirstTimeFixRate != 1 || k.FirstTimeFixProvisional != 1 || k.Completed != 1 {
			t.Fatalf("kpis: %+v", k)
		}
		w.clock.Advance(time.Hour)
		k, _ = w.svc.KPIs(w.ctx, dispatch.KPIFilter{From: w.clock.Now().Add(-3 * time.Hour), To: w.clock.Now()})
		if k.ASAPJudged != 1 || *k.OnSiteWithinSLA != 1 {
			t.Fatalf("kpis after the deadline: %+v", k)
		}
		// the finished job can no longer move
		if _, err := w.svc.Drop(w.ctx, near, r.ID, dispatch.JobStep{Reason: "late"}); errs.CodeOf(err) != errs.NotFound {
			t.Fatalf("drop after completion: %v", err)
		}
	})
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestDeclineAndExpiryCascade(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		w := newWorld(t, d, match.Sequential, 1)
		first := w.tech("First", 1000)
		second := w.tech("Second", 3000)
		third := w.tech("Third", 6000)
		r := w.request()
		o1 := w.match(r.ID).Offered[0]
		if o1.TechnicianID != first {
			t.Fatalf("first offer to %s", o1.TechnicianID)
		}
		matchesBefore := w.outboxCount(dispatch.TaskMatch)
		if _, err := w.svc.Decline(w.ctx, first, o1.ID); err != nil {
			t.Fatal(err)
		}
		if w.outboxCount(dispatch.TaskMatch) != matchesBefore+1 {
			t.Fatal("a decline did not queue the next round")
		}
		o2 := w.match(r.ID).Offered[0]
		if o2.TechnicianID != second {
			t.Fatalf("after decline offered to %s, want %s", o2.TechnicianID, second)
		}
		// not yet due: expiring does nothing and says when it is due
		var early *dispatch.NotDueError
		if err := w.svc.ExpireOffer(w.ctx, o2.ID); !errors.As(err, &early) || !early.Due.Equal(o2.ExpiresAt) {
			t.Fatalf("early expiry: %v", err)
		}
		if res := w.match(r.ID); len(res.Offered) != 0 {
			t.Fatal("offered again while an offer is pending")
		}
		w.clock.Advance(31 * time.Second)
		// accepting a lapsed offer is refused with a clear reason
		_, err := w.svc.Accept(w.ctx, second, o2.ID)
		if e, ok := errs.As(err); !ok || e.Code != errs.Conflict || e.Reason != "offer_expired" {
			t.Fatalf("accept after expiry: %v", err)
		}
		if err := w.svc.ExpireOffer(w.ctx, o2.ID); err != nil {
			t.Fatal(err)
		}
		if err := w.svc.ExpireOffer(w.ctx, o2.ID); err != nil { // a task may run twice
			t.Fatal(err)
		}
		o3 := w.match(r.ID).Offered[0]
		if o3.TechnicianID != third {
			t.Fatalf("after expiry offered to %s, want %s", o3.TechnicianID, third)
		}
		types := w.eventTypes(r.ID)
		if !contains(types, "offer_declined") || !contains(types, "offer_expired") {
			t.Fatalf("events %v", types)
		}
		// the declined technician is not offered again even when alone
		if _, err := w.svc.Decline(w.ctx, third, o3.ID); err != nil {
			t.Fatal(err)
		}
		w.clock.Advance(11 * time.Minute) // the expired one may be asked again after 10 minutes
		res := w.match(r.ID)
		if got := offeredTo(res); len(got) != 1 || got[0] != second {
			t.Fatalf("final round offered to %v, want only %s", got, second)
		}
	})
}

func TestIneligibleNeverOffered(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		w := newWorld(t, d, match.Wave, 10)
		atCapacity := w.tech("Full", 500, func(w *world, id string) {
			r := w.request()
			if _, err := w.svc.AssignByHand(w.ctx, dispatch.Caller{Role: "ops", Subject: "alice"}, r.ID, dispatch.AssignInput{TechnicianID: id}); err != nil {
				w.t.Fatal(err)
			}
		})
		offDuty := w.tech("Off", 600, func(w *world, id string) {
			if _, err := w.techs.SetDuty(w.ctx, id, technicians.Offline); err != nil {
				w.t.Fatal(err)
			}
		})
		outsideShift := w.tech("Later", 700, func(w *world, id string) {
			start := w.clock.Now().Add(2 * time.Hour)
			if _, err := w.techs.SetShifts(w.ctx, id, []technicians.ShiftInput{{Start: start, End: start.Add(8 * time.Hour)}}); err != nil {
				w.t.Fatal(err)
			}
		})
		expired := w.tech("Lapsed", 800, func(w *world, id string) {
			if err := w.d.Exec("UPDATE certifications SET certified_at = ?, expires_at = ? WHERE technician_id = ?",
				w.clock.Now().Add(-48*time.Hour), w.clock.Now().Add(-time.Hour), id).Error; err != nil {
				w.t.Fatal(err)
			}
		})
		outOfRadius := w.tech("Homebody", 9000, func(w *world, id string) {
			if err := w.d.Exec("UPDATE technicians SET radius_km = 5 WHERE id = ?", id).Error; err != nil {
				w.t.Fatal(err)
			}
		})
		inShift := w.tech("Now", 2500, func(w *world, id string) {
			start := w.clock.Now().Add(-time.Hour)
			if _, err := w.techs.SetShifts(w.ctx, id, []technicians.ShiftInput{{Start: start, End: start.Add(8 * time.Hour)}}); err != nil {
				w.t.Fatal(err)
			}
		})
		eligible := w.tech("Fine", 4000)
		r := w.request()
		got := offeredTo(w.match(r.ID))
		for _, bad := range []string{atCapacity, offDuty, outsideShift, expired, outOfRadius} {
			if contains(got, bad) {
				t.Errorf("ineligible technician %s was offered", bad)
			}
		}
		if len(got) != 2 || got[0] != inShift || got[1] != eligible {
			t.Fatalf("offered to %v, want [%s %s]", got, inShift, eligible)
		}
	})
}

func TestDropRedispatchesWithoutDropper(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		w := newWorld(t, d, match.Sequential, 1)
		dropper := w.tech("Dropper", 1000)
		other := w.tech("Other", 5000)
		r := w.request()
		o := w.match(r.ID).Offered[0]
		if _, err := w.svc.Accept(w.ctx, dropper, o.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := w.svc.Drop(w.ctx, dropper, r.ID, dispatch.JobStep{}); errs.CodeOf(err) != errs.Invalid {
			t.Fatalf("drop without reason: %v", err)
		}
		if _, err := w.svc.Drop(w.ctx, other, r.ID, dispatch.JobStep{Reason: "not mine"}); errs.CodeOf(err) != errs.NotFound {
			t.Fatalf("drop by someone else: %v", err)
		}
		back, err := w.svc.Drop(w.ctx, dropper, r.ID, dispatch.JobStep{Reason: "van broke down"})
		if err != nil {
			t.Fatal(err)
		}
		if back.State != dispatch.Searching || back.TechnicianID != nil {
			t.Fatalf("after drop: %+v", back)
		}
		tech, _ := w.techs.Get(w.ctx, dropper)
		if tech.ActiveJobs != 0 {
			t.Fatalf("dropper still holds %d jobs", tech.ActiveJobs)
		}
		got := offeredTo(w.match(r.ID))
		if len(got) != 1 || got[0] != other {
			t.Fatalf("re-dispatch offered to %v, want %s", got, other)
		}
		if types := w.eventTypes(r.ID); !contains(types, "searching") {
			t.Fatalf("no event for the drop: %v", types)
		}
	})
}

func TestPositionUpdateMovesIntoCandidates(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		w := newWorld(t, d, match.Wave, 5)
		far := w.tech("Far", 60000) // 60 km away: beyond the search
		r := w.request()
		if res := w.match(r.ID); len(res.Offered) != 0 || !res.AtRisk {
			t.Fatalf("far technician offered or not at risk: %+v", res)
		}
		if types := w.eventTypes(r.ID); !contains(types, "at_risk") {
			t.Fatalf("no at_risk event: %v", types)
		}
		w.clock.Advance(time.Minute)
		w.move(far, geo.Offset(zurich, 800, 800))
		res := w.match(r.ID)
		if got := offeredTo(res); len(got) != 1 || got[0] != far || res.AtRisk {
			t.Fatalf("after moving close: %+v", res)
		}
		if types := w.eventTypes(r.ID); !contains(types, "back_on_track") {
			t.Fatalf("no back_on_track event: %v", types)
		}
	})
}

func TestGiveUpWindowsAndOps(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		w := newWorld(t, d, match.Wave, 3)
		ops := dispatch.Caller{Role: "ops", Subject: "alice"}
		r := w.request()
		w.match(r.ID) // nobody: at risk, retry queued
		if err := w.svc.CheckDeadline(w.ctx, r.ID); err != nil {
			t.Fatal(err)
		}
		if got, _ := w.svc.Get(w.ctx, ops, r.ID); got.State != dispatch.Searching {
			t.Fatalf("gave up early: %s", got.State)
		}
		w.clock.Advance(61 * time.Minute)
		if err := w.svc.CheckDeadline(w.ctx, r.ID); err != nil {
			t.Fatal(err)
		}
		got, _ := w.svc.Get(w.ctx, ops, r.ID)
		if got.State != dispatch.Unfulfilled || got.UnfulfilledAt == nil {
			t.Fatalf("after give-up: %s", got.State)
		}
		// ops re-opens it and assigns by hand
		tech := w.tech("Late", 2000)
		again, err := w.svc.Redispatch(w.ctx, ops, r.ID)
		if err != nil || again.State != dispatch.Searching || !again.GiveUpAt.After(w.clock.Now()) {
			t.Fatalf("redispatch: %+v %v", again, err)
		}
		cands, err := w.svc.Candidates(w.ctx, r.ID, 10)
		if err != nil || len(cands) != 1 || cands[0].TechnicianID != tech {
			t.Fatalf("candidates: %+v %v", cands, err)
		}
		assigned, err := w.svc.AssignByHand(w.ctx, ops, r.ID, dispatch.AssignInput{TechnicianID: tech})
		if err != nil || assigned.State != dispatch.Assigned {
			t.Fatalf("assign: %+v %v", assigned, err)
		}
		if _, err := w.svc.AssignByHand(w.ctx, ops, r.ID, dispatch.AssignInput{TechnicianID: tech}); errs.CodeOf(err) != errs.Conflict {
			t.Fatalf("assign twice: %v", err)
		}
		// a reassignment frees the first technician
		second := w.tech("Second", 2500)
		if _, err := w.svc.AssignByHand(w.ctx, ops, r.ID, dispatch.AssignInput{TechnicianID: second}); err != nil {
			t.Fatal(err)
		}
		if first, _ := w.techs.Get(w.ctx, tech); first.ActiveJobs != 0 {
			t.Fatalf("first technician still holds %d jobs", first.ActiveJobs)
		}
		var live int64
		w.d.Table("assignments").Where("request_id = ? AND ended_at IS NULL", r.ID).Count(&live)
		if live != 1 {
			t.Fatalf("%d live assignments", live)
		}
		// taken back by ops long after its give-up time: a quarter of the SLA
		// of new searching
		w.clock.Advance(2 * time.Hour)
		back, err := w.svc.Redispatch(w.ctx, ops, r.ID)
		if err != nil || back.State != dispatch.Searching || back.GiveUpAt == nil || !back.GiveUpAt.Equal(w.clock.Now().Add(15*time.Minute)) {
			t.Fatalf("redispatch of an assigned request: %+v %v", back, err)
		}

		// a windowed request waits, then starts searching at window start − lead
		lat, lng := zurich.Lat, zurich.Lng
		start := w.clock.Now().Add(3 * time.Hour)
		created, err := w.svc.Create(w.ctx, dispatch.Caller{Role: "customer", Subject: "carla"}, "",
			dispatch.NewRequest{Skill: "wifi_setup", Lat: &lat, Lng: &lng, Window: &dispatch.TimeWindow{Start: start, End: start.Add(2 * time.Hour)}})
		if err != nil {
			t.Fatal(err)
		}
		win := created.Request
		if win.State != dispatch.Scheduled || !win.SLADeadline.Equal(db.UTC(start.Add(2*time.Hour))) {
			t.Fatalf("windowed: %+v", win)
		}
		if err := w.svc.StartSearch(w.ctx, win.ID); err != nil {
			t.Fatal(err)
		}
		if got, _ := w.svc.Get(w.ctx, ops, win.ID); got.State != dispatch.Scheduled {
			t.Fatal("started searching hours early")
		}
		w.clock.Advance(2*time.Hour + 31*time.Minute)
		if err := w.svc.StartSearch(w.ctx, win.ID); err != nil {
			t.Fatal(err)
		}
		if got, _ := w.svc.Get(w.ctx, ops, win.ID); got.State != dispatch.Searching {
			t.Fatalf("window start: %s", got.State)
		}
	})
}

// TestSweepRepairsLostTasks deletes every queued task and checks the sweep
// still expires offers and gives up on requests.
func TestSweepRepairsLostTasks(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		w := newWorld(t, d, match.Sequential, 1)
		a := w.tech("A", 1000)
		w.tech("B", 2000)
		r := w.request()
		o := w.match(r.ID).Offered[0]
		w.d.Exec("DELETE FROM outbox")
		w.clock.Advance(time.Minute)
		res, err := w.svc.Sweep(w.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if res.Expired != 1 || res.Matched != 1 {
			t.Fatalf("sweep: %+v", res)
		}
		offers, _ := w.svc.OffersOf(w.ctx, r.ID)
		if len(offers) != 2 || offers[0].TechnicianID != a || offers[0].State != dispatch.OfferExpired || offers[1].State != dispatch.OfferPending {
			t.Fatalf("offers after sweep: %+v", offers)
		}
		if offers[0].ID != o.ID || offers[0].Why.Rank != 1 || offers[0].Why.EtaSeconds <= 0 {
			t.Fatalf("offer reason: %+v", offers[0].Why)
		}
	})
}

// TestAcceptRace runs 200 rounds of two technicians accepting a wave's offers
// for one request at once on PostgreSQL: exactly one wins every time.
func TestAcceptRace(t *testing.T) {
	t.Parallel()
	d := dbtest.Postgres(t)
	w := newWorld(t, d, match.Wave, 2)
	a := w.tech("A", 1000)
	b := w.tech("B", 1100)
	ops := dispatch.Caller{Role: "ops", Subject: "alice"}
	for round := range 200 {
		r := w.request()
		res := w.match(r.ID)
		if len(res.Offered) != 2 {
			t.Fatalf("round %d: %d offers", round, len(res.Offered))
		}
		byTech := map[string]string{}
		for _, o := range res.Offered {
			byTech[o.TechnicianID] = o.ID
		}
		var wg sync.WaitGroup
		errsOut := make([]error, 2)
		for i, tech := range []string{a, b} {
			wg.Add(1)
			go func(i int, tech string) {
				defer wg.Done()
				_, errsOut[i] = w.svc.Accept(w.ctx, tech, byTech[tech])
			}(i, tech)
		}
		wg.Wait()
		wins := 0
		for _, err := range errsOut {
			if err == nil {
				wins++
				continue
			}
			if e, ok := errs.As(err); !ok || e.Code != errs.Conflict {
				t.Fatalf("round %d: loser got %v", round, err)
			}
		}
		if wins != 1 {
			t.Fatalf("round %d: %d winners", round, wins)
		}
		var live int64
		d.Table("assignments").Where("request_id = ? AND ended_at IS NULL", r.ID).Count(&live)
		if live != 1 {
			t.Fatalf("round %d: %d live assignments", round, live)
		}
		if _, err := w.svc.Cancel(w.ctx, ops, r.ID, dispatch.CancelInput{Reason: "next round"}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestBatchRound: two requests and two technicians where taking the nearest
// for the first request would leave the second without anyone in time; the
// batch gives each a technician who makes it.
func TestBatchRound(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		w := newWorld(t, d, match.Batch, 1)
		x := w.tech("Between", 14000) // 14 km east: nearest for A, the only one for B
		y := w.tech("West", -3000)    // 3 km west: near A only
		w.d.Exec("UPDATE technicians SET radius_km = 10 WHERE id = ?", y)
		a := w.request()
		lat, lng := geo.Offset(zurich, 20000, 0).Lat, geo.Offset(zurich, 20000, 0).Lng
		created, err := w.svc.Create(w.ctx, dispatch.Caller{Role: "customer", Subject: "carla"}, "", dispatch.NewRequest{Skill: "wifi_setup", Lat: &lat, Lng: &lng})
		if err != nil {
			t.Fatal(err)
		}
		b := created.Request
		if res := w.match(a.ID); len(res.Offered) != 0 || res.Skipped != "waiting for the next batch" {
			t.Fatalf("match under batch: %+v", res)
		}
		liveBefore, expireBefore := w.outboxCount(dispatch.TaskLive), w.outboxCount(dispatch.TaskOfferExpire)
		res, err := w.svc.BatchRound(w.ctx, "", 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.Waiting != 2 || len(res.Offered) != 2 {
			t.Fatalf("batch: %+v", res)
		}
		got := map[string]string{}
		for _, o := range res.Offered {
			got[o.RequestID] = o.TechnicianID
		}
		if got[a.ID] != y || got[b.ID] != x {
			t.Fatalf("batch gave A→%s B→%s, want A→%s B→%s", got[a.ID], got[b.ID], y, x)
		}
		// The round's two live updates share one outbox row, and so do the
		// expiries of its offers due at the same time.
		if n := w.outboxCount(dispatch.TaskLive) - liveBefore; n != 1 {
			t.Fatalf("the round wrote %d live rows, want 1", n)
		}
		var rows []dispatch.OutboxTask
		w.d.Where("kind = ?", dispatch.TaskOfferExpire).Order("created_at").Find(&rows)
		expiring := map[string]bool{}
		for _, row := range rows[expireBefore:] {
			var p dispatch.TaskPayload
			if err := json.Unmarshal([]byte(row.Payload), &p); err != nil {
				t.Fatal(err)
			}
			for _, item := range p.Items() {
				expiring[item.OfferID] = true
			}
		}
		if len(expiring) != 2 || !expiring[res.Offered[0].ID] || !expiring[res.Offered[1].ID] {
			t.Fatalf("expiry rows %v, want both offers %s and %s", expiring, res.Offered[0].ID, res.Offered[1].ID)
		}
		if res.Offered[0].ExpiresAt.Equal(res.Offered[1].ExpiresAt) && len(rows)-int(expireBefore) != 1 {
			t.Fatalf("%d expiry rows for two offers due at the same time", len(rows)-int(expireBefore))
		}
		// a second round while the offers are pending sends nothing
		if res, err := w.svc.BatchRound(w.ctx, "", 0, nil); err != nil || res.Waiting != 0 || len(res.Offered) != 0 {
			t.Fatalf("second round: %+v %v", res, err)
		}
		offers, _ := w.svc.OffersOf(w.ctx, a.ID)
		if offers[0].Why.Strategy != "batch" {
			t.Fatalf("offer reason %+v", offers[0].Why)
		}
	})
}

// TestBatchRoundPolicy: three waiting requests. "old" (4 km east) has 12
// minutes left, "new" (2.5 km east) 60; both can only have the technician 3
// km east. "far" (30 km west) can only have the one 58 km west, who would
// arrive after its give-up time. With urgency the old request gets the
// near technician, without it the nearer new one; the far request is never
// offered.
func TestBatchRoundPolicy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		urgency float64
		want    string
	}{
		{urgency: 1, want: "old"},
		{urgency: 0, want: "new"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("urgency %v", tt.urgency), func(t *testing.T) { testBatchRoundPolicy(t, tt.urgency, tt.want) })
	}
}

func testBatchRoundPolicy(t *testing.T, urgency float64, want string) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		w := newWorld(t, d, match.Batch, 1)
		w.svc = dispatch.NewService(d, dispatch.Config{
			SLA: time.Hour, GiveUp: time.Hour, OfferStrategy: match.Batch, OfferTimeout: 30 * time.Second,
			WaveSize: 1, MaxSearchKm: 40, BatchUrgency: urgency,
		}, w.clock.Now)
		x := w.tech("Near", 3000)
		west := w.tech("West", -58000)
		at := func(dx float64) dispatch.Request {
			p := geo.Offset(zurich, dx, 0)
			out, err := w.svc.Create(w.ctx, dispatch.Caller{Role: "customer", Subject: "carla"}, "", dispatch.NewRequest{Skill: "wifi_setup", Lat: &p.Lat, Lng: &p.Lng})
			if err != nil {
				t.Fatal(err)
			}
			return out.Request
		}
		old := at(4000)
		w.clock.Advance(48 * time.Minute)
		w.move(x, geo.Offset(zurich, 3000, 0))
		w.move(west, geo.Offset(zurich, -58000, 0))
		names := map[string]string{old.ID: "old", at(2500).ID: "new", at(-30000).ID: "far"}
		res, err := w.svc.BatchRound(w.ctx, "", 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.Waiting != 3 || len(res.Offered) != 1 {
			t.Fatalf("urgency %v: waiting %d, offers %+v; want 3 waiting and one offer", urgency, res.Waiting, res.Offered)
		}
		if got := names[res.Offered[0].RequestID]; got != want || res.Offered[0].TechnicianID != x {
			t.Fatalf("urgency %v: the technician went to %s, want %s", urgency, got, want)
		}
	})
}

// TestBatchLearnsAnswerTime: the batch checks the give-up time against the
// drive plus the typical answer time, learned from the latest answers. A
// request created at T+2 (give-up T+62) has one free technician 3.1 km
// away (about 9.3 minutes) at T+52: on site at T+61.3 if the offer were
// answered at once, at T+63.3 when people take two minutes to answer.
func TestBatchLearnsAnswerTime(t *testing.T) {
	t.Parallel()
	tests := []struct {
		answeredAfter time.Duration
		offers        int
	}{
		{0, 1},
		{2 * time.Minute, 0},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("answered after %s", tt.answeredAfter), func(t *testing.T) {
			dbtest.Each(t, func(t *testing.T, d *db.DB) {
				w := newWorld(t, d, match.Batch, 1)
				w.svc = dispatch.NewService(d, dispatch.Config{
					SLA: time.Hour, GiveUp: time.Hour, OfferStrategy: match.Batch, OfferTimeout: 10 * time.Minute,
					WaveSize: 1, MaxSearchKm: 40, BatchUrgency: 1,
				}, w.clock.Now)
				busy := w.tech("Busy", 1000)
				free := w.tech("Free", 3100)
				first := w.request()
				res, err := w.svc.BatchRound(w.ctx, "", 0, nil)
				if err != nil || len(res.Offered) != 1 || res.Offered[0].TechnicianID != busy || res.Offered[0].RequestID != first.ID {
					t.Fatalf("first round: %+v %v", res, err)
				}
				w.clock.Advance(tt.answeredAfter)
				if _, err := w.svc.Accept(w.ctx, busy, res.Offered[0].ID); err != nil {
					t.Fatal(err)
				}
				w.clock.Advance(2*time.Minute - tt.answeredAfter)
				second := w.request()
				w.clock.Advance(50 * time.Minute)
				w.move(free, geo.Offset(zurich, 3100, 0))
				res, err = w.svc.BatchRound(w.ctx, "", 0, nil)
				if err != nil || len(res.Offered) != tt.offers {
					t.Fatalf("second round: %d offers, want %d (%+v %v)", len(res.Offered), tt.offers, res, err)
				}
				if tt.offers == 1 && (res.Offered[0].RequestID != second.ID || res.Offered[0].TechnicianID != free) {
					t.Fatalf("offer %+v", res.Offered[0])
				}
			})
		})
	}
}

// TestBatchOfferLastsWhileUseful: a batch offer stays open the configured
// five minutes, or, close to the give-up time (90 minutes here, past the
// 60-minute SLA), only as long as a yes still brings the technician (about 6
// minutes away) on site by then.
func TestBatchOfferLastsWhileUseful(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		waited  time.Duration // between the request and the batch round
		useful  bool          // the offer is cut to the useful time
		timeout time.Duration
	}{
		{name: "fresh request", waited: 0, timeout: 5 * time.Minute},
		{name: "close to give-up", waited: 81 * time.Minute, useful: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dbtest.Each(t, func(t *testing.T, d *db.DB) {
				w := newWorld(t, d, match.Batch, 1)
				w.svc = dispatch.NewService(d, dispatch.Config{
					SLA: time.Hour, GiveUp: 90 * time.Minute, OfferStrategy: match.Batch, OfferTimeout: 5 * time.Minute,
					WaveSize: 1, MaxSearchKm: 40, BatchUrgency: 1,
				}, w.clock.Now)
				tech := w.tech("Near", 2000)
				r := w.request()
				w.clock.Advance(tt.waited)
				w.move(tech, geo.Offset(zurich, 2000, 0))
				res, err := w.svc.BatchRound(w.ctx, "", 0, nil)
				if err != nil || len(res.Offered) != 1 {
					t.Fatalf("round: %+v %v", res, err)
				}
				o := res.Offered[0]
				want := o.CreatedAt.Add(tt.timeout)
				if tt.useful {
					want = r.GiveUpAt.Add(-time.Duration(o.EtaSeconds) * time.Second)
					if !want.Before(o.CreatedAt.Add(5 * time.Minute)) {
						t.Fatalf("the test's give-up time leaves %v, more than the timeout", want.Sub(o.CreatedAt))
					}
				}
				if d := o.ExpiresAt.Sub(want); d < -time.Second || d > time.Second {
					t.Fatalf("offer expires at %v, want %v (give-up %v, ETA %ds)", o.ExpiresAt, want, r.GiveUpAt, o.EtaSeconds)
				}
			})
		})
	}
}

// TestCrossReassignNoDeadlock swaps two technicians between two requests
// from two goroutines at once, many times, on PostgreSQL: a deadlock between
// the two is retried, never answered as an error.
func TestCrossReassignNoDeadlock(t *testing.T) {
	t.Parallel()
	d := dbtest.Postgres(t)
	w := newWorld(t, d, match.Sequential, 1)
	t1, t2 := w.tech("One", 1000), w.tech("Two", 1200)
	ops := dispatch.Caller{Role: "ops", Subject: "alice"}
	r1, r2 := w.request(), w.request()
	if _, err := w.svc.AssignByHand(w.ctx, ops, r1.ID, dispatch.AssignInput{TechnicianID: t1}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.svc.AssignByHand(w.ctx, ops, r2.ID, dispatch.AssignInput{TechnicianID: t2}); err != nil {
		t.Fatal(err)
	}
	for round := range 30 {
		var wg sync.WaitGroup
		errsOut := make([]error, 2)
		pairs := [][2]string{{r1.ID, t2}, {r2.ID, t1}}
		if round%2 == 1 {
			pairs = [][2]string{{r1.ID, t1}, {r2.ID, t2}}
		}
		for i, p := range pairs {
			wg.Add(1)
			go func(i int, req, tech string) {
				defer wg.Done()
				_, errsOut[i] = w.svc.AssignByHand(w.ctx, ops, req, dispatch.AssignInput{TechnicianID: tech})
			}(i, p[0], p[1])
		}
		wg.Wait()
		for _, err := range errsOut {
			// the one that finds its technician still busy gets a clear conflict
			if err != nil && errs.CodeOf(err) != errs.Conflict {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		for _, id := range []string{r1.ID, r2.ID} {
			got, _ := w.svc.Get(w.ctx, ops, id)
			if got.State != dispatch.Assigned && got.State != dispatch.Searching {
				t.Fatalf("round %d: %s is %s", round, id, got.State)
			}
		}
		// put the pair back the way the next round expects
		for _, p := range [][2]string{{r1.ID, pairs[0][1]}, {r2.ID, pairs[1][1]}} {
			got, _ := w.svc.Get(w.ctx, ops, p[0])
			if got.TechnicianID == nil || *got.TechnicianID != p[1] {
				_, _ = w.svc.AssignByHand(w.ctx, ops, p[0], dispatch.AssignInput{TechnicianID: p[1]})
			}
		}
	}
}
