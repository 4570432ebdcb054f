package dispatch_test

import (
	"strings"
	"testing"
	"time"

	"github.com/onsite/onsite/dispatch"
	"github.com/onsite/onsite/dispatch/match"
	"github.com/onsite/onsite/geo"
	"github.com/onsite/onsite/internal/db"
	"github.com/onsite/onsite/internal/dbtest"
	"github.com/onsite/onsite/internal/errs"
)

// TestFollowUp: a visit closed needs_parts opens a linked follow-up that
// waits for the customer's choice; confirmed as soon as possible, it is
// offered first to the technician who came, though another is nearer; a
// fixed visit opens none.
func TestFollowUp(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		w := newWorld(t, d, match.Sequential, 1)
		first := w.tech("Fiona", 3000)
		r := w.request()
		ops := dispatch.Caller{Role: "ops", Subject: "alice"}
		if _, err := w.svc.AssignByHand(w.ctx, ops, r.ID, dispatch.AssignInput{TechnicianID: first}); err != nil {
			t.Fatal(err)
		}
		w.clock.Advance(time.Second)
		w.move(first, zurich)
		if _, err := w.svc.Arrive(w.ctx, first, r.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := w.svc.Complete(w.ctx, first, r.ID, dispatch.JobStep{Outcome: "needs_parts", Reason: string(make([]byte, 501))}); errs.CodeOf(err) != errs.Invalid {
			t.Fatalf("a 501-character reason: %v", err)
		}
		w.clock.Advance(time.Minute)
		if _, err := w.svc.Complete(w.ctx, first, r.ID, dispatch.JobStep{Outcome: "needs_parts", Reason: "new modem"}); err != nil {
			t.Fatal(err)
		}
		var fu dispatch.Request
		if err := d.Where("follow_up_of = ?", r.ID).First(&fu).Error; err != nil {
			t.Fatalf("no follow-up: %v", err)
		}
		if fu.State != dispatch.PendingConfirmation || fu.CustomerID != r.CustomerID || fu.SkillCode != r.SkillCode ||
			fu.PreferredTechnicianID == nil || *fu.PreferredTechnicianID != first || fu.SLADeadline != nil {
			t.Fatalf("follow-up %+v", fu)
		}
		if got := w.eventTypes(r.ID); got[len(got)-1] != "follow_up_opened" {
			t.Fatalf("events of the first request %v", got)
		}
		// The customer chooses as soon as possible: the promise runs from now.
		w.clock.Advance(2 * time.Hour)
		w.move(first, geo.Offset(zurich, 3000, 0))
		near := w.tech("Nick", 500)
		confirmed, err := w.svc.Confirm(w.ctx, dispatch.Caller{Role: "customer", Subject: "carla"}, fu.ID, dispatch.ConfirmInput{})
		if err != nil {
			t.Fatal(err)
		}
		if confirmed.State != dispatch.Searching || !confirmed.SLADeadline.Equal(w.clock.Now().Add(time.Hour)) {
			t.Fatalf("confirmed %+v", confirmed)
		}
		if got := offeredTo(w.match(fu.ID)); len(got) != 1 || got[0] != first {
			t.Fatalf("follow-up offered to %v, want the first technician %s before the nearer %s", got, first, near)
		}

		// A fixed visit opens nothing.
		r2 := w.request()
		if _, err := w.svc.AssignByHand(w.ctx, ops, r2.ID, dispatch.AssignInput{TechnicianID: near}); err != nil {
			t.Fatal(err)
		}
		w.clock.Advance(time.Second)
		w.move(near, zurich)
		if _, err := w.svc.Arrive(w.ctx, near, r2.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := w.svc.Complete(w.ctx, near, r2.ID, dispatch.JobStep{Outcome: "fixed"}); err != nil {
			t.Fatal(err)
		}
		var n int64
		d.Model(&dispatch.Request{}).Where("follow_up_of = ?", r2.ID).Count(&n)
		if n != 0 {
			t.Fatalf("%d follow-ups of a fixed visit", n)
		}
	})
}

// TestArrivalRadius: an arrival is checked against the technician's latest
// position; a far one is recorded, flagged in the request and its event.
func TestArrivalRadius(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		w := newWorld(t, d, match.Sequential, 1)
		ops := dispatch.Caller{Role: "ops", Subject: "alice"}
		tests := []struct {
			name     string
			at       float64 // metres east of the site at arrival
			flagged  bool
			distance int
		}{
			{"at the door", 0, false, 0},
			{"across the street", 240, false, 240},
			{"two kilometres away", 2000, true, 2000},
		}
		for _, tt := range tests {
			tech := w.tech(tt.name, 1000)
			r := w.request()
			if _, err := w.svc.AssignByHand(w.ctx, ops, r.ID, dispatch.AssignInput{TechnicianID: tech}); err != nil {
				t.Fatal(err)
			}
			w.clock.Advance(time.Second) // a position report older than the last is ignored
			w.move(tech, geo.Offset(zurich, tt.at, 0))
			got, err := w.svc.Arrive(w.ctx, tech, r.ID)
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			if got.State != dispatch.OnSite || got.ArrivalFlagged != tt.flagged || got.ArrivalDistanceM == nil ||
				abs(*got.ArrivalDistanceM-tt.distance) > 1 {
				t.Fatalf("%s: state %s flagged %v distance %v", tt.name, got.State, got.ArrivalFlagged, deref(got.ArrivalDistanceM))
			}
			evs, _ := w.svc.Events(w.ctx, r.ID)
			last := evs[len(evs)-1]
			if last.Type != "on_site" || (last.Data["arrival_flagged"] == true) != tt.flagged {
				t.Fatalf("%s: event %s %v", tt.name, last.Type, last.Data)
			}
		}
	})
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

// TestFollowUpPreferredInBatch: under the batch strategy (the default) the
// first technician wins the follow-up's pair, though another is nearer.
func TestFollowUpPreferredInBatch(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		w := newWorld(t, d, match.Batch, 1)
		first := w.tech("Fiona", 2500)
		r := w.request()
		ops := dispatch.Caller{Role: "ops", Subject: "alice"}
		if _, err := w.svc.AssignByHand(w.ctx, ops, r.ID, dispatch.AssignInput{TechnicianID: first}); err != nil {
			t.Fatal(err)
		}
		w.clock.Advance(time.Second)
		w.move(first, zurich)
		if _, err := w.svc.Arrive(w.ctx, first, r.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := w.svc.Complete(w.ctx, first, r.ID, dispatch.JobStep{Outcome: "not_fixed"}); err != nil {
			t.Fatal(err)
		}
		var fu dispatch.Request
		if err := d.Where("follow_up_of = ?", r.ID).First(&fu).Error; err != nil {
			t.Fatal(err)
		}
		w.clock.Advance(time.Hour)
		w.move(first, geo.Offset(zurich, 2500, 0))
		near := w.tech("Nick", 400)
		if _, err := w.svc.Confirm(w.ctx, ops, fu.ID, dispatch.ConfirmInput{}); err != nil {
			t.Fatal(err)
		}
		res, err := w.svc.BatchRound(w.ctx, "", 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Offered) != 1 || res.Offered[0].TechnicianID != first {
			t.Fatalf("batch offered %+v, want the first technician %s before the nearer %s", res.Offered, first, near)
		}
		if !strings.Contains(res.Offered[0].Reason, `"preferred":true`) {
			t.Fatalf("the offer's reason %s does not say the technician was preferred", res.Offered[0].Reason)
		}
	})
}
