package dispatch_test

import (
	"reflect"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/onsite/onsite/dispatch"
	"github.com/onsite/onsite/dispatch/match"
	"github.com/onsite/onsite/geo"
	"github.com/onsite/onsite/internal/db"
	"github.com/onsite/onsite/internal/dbtest"
	"github.com/onsite/onsite/internal/errs"
	"github.com/onsite/onsite/technicians"
)

// doorCase makes the technician Tess (1 km from the request, travel radius
// 2 km, capacity 1) ineligible: setup runs while she still qualifies (before
// any offer), breaks takes her out of the rules.
type doorCase struct {
	name        string
	setup       func(w *world, id string)
	breaks      func(w *world, id string)
	why         string // the core's reason ("" for the control case)
	overridable bool   // ops' override assigns her anyway
}

var doorCases = []doorCase{
	{name: "eligible (control)", overridable: true},
	{
		name: "certification expired",
		setup: func(w *world, id string) {
			if _, err := w.techs.Certify(w.ctx, id, "wifi_setup", nil, w.clock.Now().Add(5*time.Second)); err != nil {
				w.t.Fatal(err)
			}
		},
		breaks:      func(w *world, id string) { w.clock.Advance(7 * time.Second) },
		why:         match.ReasonNoCert,
		overridable: true,
	},
	{
		name: "certification missing",
		breaks: func(w *world, id string) {
			if err := w.techs.Revoke(w.ctx, id, "wifi_setup"); err != nil {
				w.t.Fatal(err)
			}
		},
		why:         match.ReasonNoCert,
		overridable: true,
	},
	{
		name: "off shift",
		setup: func(w *world, id string) {
			now := w.clock.Now()
			if _, err := w.techs.SetShifts(w.ctx, id, []technicians.ShiftInput{{Start: now.Add(-time.Hour), End: now.Add(10 * time.Second)}}); err != nil {
				w.t.Fatal(err)
			}
		},
		breaks:      func(w *world, id string) { w.clock.Advance(15 * time.Second) },
		why:         match.ReasonOutsideShift,
		overridable: true,
	},
	{
		name: "on a break",
		breaks: func(w *world, id string) {
			now := w.clock.Now()
			if _, err := w.techs.SetShifts(w.ctx, id, []technicians.ShiftInput{{Kind: technicians.KindBreak, Start: now.Add(-time.Minute), End: now.Add(30 * time.Minute)}}); err != nil {
				w.t.Fatal(err)
			}
		},
		why:         match.ReasonOnBreak,
		overridable: true,
	},
	{
		name: "over capacity",
		breaks: func(w *world, id string) {
			other := w.request()
			if _, err := w.svc.AssignByHand(w.ctx, opsAlice, other.ID, dispatch.AssignInput{TechnicianID: id}); err != nil {
				w.t.Fatal(err)
			}
		},
		// a technician at capacity is busy: the core's first refusal
		why: match.ReasonUnavailable,
		// capacity is an invariant (DESIGN.md 2), no override lifts it
		overridable: false,
	},
	{
		// A windowed job three hours ahead is a booking: she stays
		// available for ASAP work that leaves time for it.
		name:        "booked window three hours ahead (control)",
		breaks:      func(w *world, id string) { w.book(id, 3*time.Hour) },
		overridable: true,
	},
	{
		// An hour's job 1 km away cannot be done before a window 50
		// minutes ahead: as much a matter of capacity as a second job.
		name:        "late for a booked window",
		breaks:      func(w *world, id string) { w.book(id, 50*time.Minute) },
		why:         match.ReasonLateForWindow,
		overridable: false,
	},
	{
		name: "outside travel radius",
		breaks: func(w *world, id string) {
			w.clock.Advance(time.Second)
			w.move(id, geo.Offset(zurich, 3000, 0))
		},
		why:         match.ReasonOutsideRadius,
		overridable: true,
	},
}

var opsAlice = dispatch.Caller{Role: "ops", Subject: "alice"}

// book gives the technician, by ops' hand, a windowed job at Zürich whose
// hour-long window starts in: a booking, which takes none of her capacity.
func (w *world) book(id string, in time.Duration) dispatch.Request {
	w.t.Helper()
	start := w.clock.Now().Add(in)
	lat, lng := zurich.Lat, zurich.Lng
	out, err := w.svc.Create(w.ctx, dispatch.Caller{Role: "customer", Subject: "wanda"}, "", dispatch.NewRequest{Skill: "wifi_setup", Lat: &lat, Lng: &lng,
		Window: &dispatch.TimeWindow{Start: start, End: start.Add(time.Hour)}})
	if err != nil {
		w.t.Fatal(err)
	}
	if _, err := w.svc.AssignByHand(w.ctx, opsAlice, out.Request.ID, dispatch.AssignInput{TechnicianID: id}); err != nil {
		w.t.Fatal(err)
	}
	tech, err := w.techs.Get(w.ctx, id)
	if err != nil {
		w.t.Fatal(err)
	}
	if tech.ActiveJobs != 0 || tech.DutyStatus != technicians.Available {
		w.t.Fatalf("booked %s ahead: %d active jobs, %s; want a booking that takes no capacity", in, tech.ActiveJobs, tech.DutyStatus)
	}
	return out.Request
}

// door tries to give Tess a job through one door; it checks the refusal
// (or, for the control case, the success) itself.
type door func(t *testing.T, w *world, tess string, c doorCase)

// TestEveryDoorAppliesTheRules is issue 16's door test: every way a
// technician gets a job refuses one the hard rules do not allow, in the
// shared error shape and writing nothing; the batch round by never offering;
// ops' override alone gets through, and is audited.
func TestEveryDoorAppliesTheRules(t *testing.T) {
	t.Parallel()
	doors := []struct {
		name string
		try  door
	}{
		{"app accept", acceptDoor(func(w *world, tess, offerID string) error {
			_, err := w.svc.Accept(w.ctx, tess, offerID)
			return err
		})},
		{"sms yes", acceptDoor(func(w *world, tess, _ string) error {
			_, err := w.svc.AnswerNewestOffer(w.ctx, tess, true)
			return err
		})},
		{"ops assign", opsAssignDoor},
		{"ops reassign", opsReassignDoor},
		{"redispatch", redispatchDoor},
		{"batch round", batchDoor},
	}
	for _, c := range doorCases {
		for _, dr := range doors {
			t.Run(c.name+"/"+dr.name, func(t *testing.T) {
				t.Parallel()
				dbtest.Each(t, func(t *testing.T, d *db.DB) {
					w := newWorld(t, d, match.Batch, 1)
					tess := w.tech("Tess", 1000, withRadiusKm(2))
					if c.setup != nil {
						c.setup(w, tess)
					}
					dr.try(t, w, tess, c)
				})
			})
		}
	}
}

func withRadiusKm(km float64) techOpt {
	return func(w *world, id string) {
		if err := w.d.Tx(w.ctx, func(tx *gorm.DB) error {
			if err := tx.Model(&technicians.Technician{}).Where("id = ?", id).Update("radius_km", km).Error; err != nil {
				return err
			}
			return technicians.Changed(tx, id)
		}); err != nil {
			w.t.Fatal(err)
		}
	}
}

func (c doorCase) breakTess(w *world, id string) {
	if c.breaks != nil {
		c.breaks(w, id)
	}
}

// acceptDoor: Tess is offered the job while she qualifies, then stops
// qualifying, then answers yes.
func acceptDoor(yes func(w *world, tess, offerID string) error) door {
	return func(t *testing.T, w *world, tess string, c doorCase) {
		r := w.request()
		o := w.batchOfferTo(tess, r.ID)
		c.breakTess(w, tess)
		before := w.snapshot(r.ID, tess)
		err := yes(w, tess, o.ID)
		if c.why == "" {
			if err != nil {
				t.Fatalf("eligible technician refused: %v", err)
			}
			w.assignedTo(r.ID, tess)
			return
		}
		w.refused(err, c.why)
		w.unchanged(before, r.ID, tess)
	}
}

func opsAssignDoor(t *testing.T, w *world, tess string, c doorCase) {
	r := w.request()
	c.breakTess(w, tess)
	before := w.snapshot(r.ID, tess)
	_, err := w.svc.AssignByHand(w.ctx, opsAlice, r.ID, dispatch.AssignInput{TechnicianID: tess})
	if c.why == "" {
		if err != nil {
			t.Fatalf("eligible technician refused: %v", err)
		}
		w.assignedTo(r.ID, tess)
		return
	}
	w.refused(err, c.why)
	w.unchanged(before, r.ID, tess)

	// an override without a reason is bad input, and writes nothing
	_, err = w.svc.AssignByHand(w.ctx, opsAlice, r.ID, dispatch.AssignInput{TechnicianID: tess, Override: true, Reason: "  "})
	if e, ok := errs.As(err); !ok || e.Code != errs.Invalid || e.Field != "reason" {
		t.Fatalf("override without a reason: %v, want invalid reason", err)
	}
	w.unchanged(before, r.ID, tess)

	const why = "customer asked for Tess by name"
	_, err = w.svc.AssignByHand(w.ctx, opsAlice, r.ID, dispatch.AssignInput{TechnicianID: tess, Override: true, Reason: why})
	if !c.overridable {
		if e, ok := errs.As(err); !ok || e.Code != errs.Conflict || e.Reason != "technician_unavailable" {
			t.Fatalf("override past capacity: %v, want conflict technician_unavailable", err)
		}
		w.unchanged(before, r.ID, tess)
		return
	}
	if err != nil {
		t.Fatalf("override: %v", err)
	}
	w.assignedTo(r.ID, tess)
	evs, err := w.svc.Events(w.ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	last := evs[len(evs)-1]
	if last.Type != "assigned" || last.ActorID != "alice" || last.Data["override"] != true ||
		last.Data["reason"] != why || last.Data["overridden"] != c.why {
		t.Fatalf("assigned event does not audit the override: %s by %s %v", last.Type, last.ActorID, last.Data)
	}
}

func opsReassignDoor(t *testing.T, w *world, tess string, c doorCase) {
	eve := w.tech("Eve", 500)
	r := w.request()
	if _, err := w.svc.AssignByHand(w.ctx, opsAlice, r.ID, dispatch.AssignInput{TechnicianID: eve}); err != nil {
		t.Fatal(err)
	}
	c.breakTess(w, tess)
	before := w.snapshot(r.ID, tess)
	_, err := w.svc.AssignByHand(w.ctx, opsAlice, r.ID, dispatch.AssignInput{TechnicianID: tess})
	if c.why == "" {
		if err != nil {
			t.Fatalf("eligible technician refused: %v", err)
		}
		w.assignedTo(r.ID, tess)
		return
	}
	w.refused(err, c.why)
	w.unchanged(before, r.ID, tess)
	w.assignedTo(r.ID, eve)
}

// redispatchDoor: ops send an assigned job back to searching (its
// technician then suspended), and the next round must not offer it to Tess.
func redispatchDoor(t *testing.T, w *world, tess string, c doorCase) {
	eve := w.tech("Eve", 500)
	r := w.request()
	if _, err := w.svc.AssignByHand(w.ctx, opsAlice, r.ID, dispatch.AssignInput{TechnicianID: eve}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.techs.Suspend(w.ctx, eve, true); err != nil {
		t.Fatal(err)
	}
	c.breakTess(w, tess)
	if _, err := w.svc.Redispatch(w.ctx, opsAlice, r.ID); err != nil {
		t.Fatal(err)
	}
	w.roundOffers(r.ID, tess, c.why == "")
}

func batchDoor(t *testing.T, w *world, tess string, c doorCase) {
	c.breakTess(w, tess)
	r := w.request()
	w.roundOffers(r.ID, tess, c.why == "")
}

// roundOffers runs a batch round and checks whether it offered r to tess.
func (w *world) roundOffers(requestID, tess string, want bool) {
	w.t.Helper()
	res, err := w.svc.BatchRound(w.ctx, "", 0, nil)
	if err != nil {
		w.t.Fatal(err)
	}
	got := false
	for _, o := range res.Offered {
		got = got || (o.RequestID == requestID && o.TechnicianID == tess)
	}
	if got != want {
		w.t.Fatalf("round offered the job to Tess: %v, want %v (offers %+v)", got, want, res.Offered)
	}
	if !want && dbtest.Count(w.t, w.d, "offers") != 0 {
		w.t.Fatal("an offer was written")
	}
}

func (w *world) batchOfferTo(tess, requestID string) dispatch.Offer {
	w.t.Helper()
	res, err := w.svc.BatchRound(w.ctx, "", 0, nil)
	if err != nil {
		w.t.Fatal(err)
	}
	for _, o := range res.Offered {
		if o.RequestID == requestID && o.TechnicianID == tess {
			return o
		}
	}
	w.t.Fatalf("no offer to Tess while she qualifies: %+v", res.Offered)
	return dispatch.Offer{}
}

// refused checks a door's refusal: a conflict not_eligible naming the
// core's reason.
func (w *world) refused(err error, why string) {
	w.t.Helper()
	e, ok := errs.As(err)
	if !ok || e.Code != errs.Conflict || e.Reason != dispatch.ReasonNotEligible {
		w.t.Fatalf("got %v, want conflict %s", err, dispatch.ReasonNotEligible)
	}
	if want := ": " + why; len(e.Message) < len(want) || e.Message[len(e.Message)-len(want):] != want {
		w.t.Fatalf("message %q does not end with the reason %q", e.Message, why)
	}
}

func (w *world) assignedTo(requestID, tech string) {
	w.t.Helper()
	r, err := w.svc.Get(w.ctx, opsAlice, requestID)
	if err != nil {
		w.t.Fatal(err)
	}
	if r.State != dispatch.Assigned || r.TechnicianID == nil || *r.TechnicianID != tech {
		w.t.Fatalf("request is %s with %v, want assigned to %s", r.State, r.TechnicianID, tech)
	}
}

// doorSnapshot is what a refused door must leave as it was.
type doorSnapshot struct {
	Rows    map[string]int64
	Request dispatch.Request
	Tech    technicians.Technician
}

func (w *world) snapshot(requestID, tech string) doorSnapshot {
	w.t.Helper()
	s := doorSnapshot{Rows: map[string]int64{}}
	for _, table := range []string{"events", "offers", "assignments", "outbox", "messages"} {
		s.Rows[table] = dbtest.Count(w.t, w.d, table)
	}
	var pending int64
	w.d.Table("offers").Where("state = ?", dispatch.OfferPending).Count(&pending)
	s.Rows["pending offers"] = pending
	var err error
	if s.Request, err = w.svc.Get(w.ctx, opsAlice, requestID); err != nil {
		w.t.Fatal(err)
	}
	if s.Tech, err = w.techs.Get(w.ctx, tech); err != nil {
		w.t.Fatal(err)
	}
	return s
}

func (w *world) unchanged(before doorSnapshot, requestID, tech string) {
	w.t.Helper()
	if after := w.snapshot(requestID, tech); !reflect.DeepEqual(before, after) {
		w.t.Fatalf("a refused door wrote:\nbefore %+v\nafter  %+v", before, after)
	}
}
