package dispatch_test

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/onsite/onsite/dispatch"
	"github.com/onsite/onsite/dispatch/match"
	"github.com/onsite/onsite/internal/db"
	"github.com/onsite/onsite/internal/dbtest"
	"github.com/onsite/onsite/internal/errs"
	"github.com/onsite/onsite/technicians"
)

// holds checks, in PostgreSQL and in the live index alike, the technician's
// jobs counted against capacity, bookings and duty status.
func (w *world) holds(id string, active, bookings int, duty string) {
	w.t.Helper()
	tech, err := w.techs.Get(w.ctx, id)
	if err != nil {
		w.t.Fatal(err)
	}
	var booked int64
	if err := w.d.Table("assignments").Where("technician_id = ? AND ended_at IS NULL AND counted = ?", id, false).Count(&booked).Error; err != nil {
		w.t.Fatal(err)
	}
	if tech.ActiveJobs != active || int(booked) != bookings || tech.DutyStatus != duty {
		w.t.Fatalf("database: %d active, %d booked, %s; want %d, %d, %s", tech.ActiveJobs, booked, tech.DutyStatus, active, bookings, duty)
	}
	if _, err := w.svc.Candidates(w.ctx, w.request().ID, 1); err != nil { // brings the index up to date
		w.t.Fatal(err)
	}
	c, ok := w.svc.Fleet().Pool().Get(id)
	if !ok {
		w.t.Fatal("not in the live index")
	}
	if c.ActiveJobs != active || len(c.Bookings) != bookings || c.Available != (duty == technicians.Available) {
		w.t.Fatalf("live index: %d active, %d booked, available %v; want %d, %d, %s", c.ActiveJobs, len(c.Bookings), c.Available, active, bookings, duty)
	}
}

func (w *world) step(what string, err error) {
	w.t.Helper()
	if err != nil {
		w.t.Fatalf("%s: %v", what, err)
	}
}

// TestBookingHoldsAroundItsWindow follows one technician through a day: a
// windowed job booked three hours ahead leaves her free for ASAP work; the
// sweep counts it when its hold begins (window start less the drive);
// setting off early counts it at once, unless another job still fills her
// capacity; a cancelled booking gives back nothing it never took.
func TestBookingHoldsAroundItsWindow(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		w := newWorld(t, d, match.Batch, 1)
		tess := w.tech("Tess", 1000)
		win := w.book(tess, 3*time.Hour)
		w.holds(tess, 0, 1, technicians.Available)
		var a dispatch.Assignment
		w.step("load the booking", w.d.Where("request_id = ?", win.ID).Take(&a).Error)
		if a.Counted || a.HoldsFrom == nil || !a.HoldsFrom.After(w.clock.Now().Add(2*time.Hour+50*time.Minute)) || !a.HoldsFrom.Before(*win.WindowStart) {
			t.Fatalf("booking %+v: want uncounted, holding from a few minutes before %s", a, win.WindowStart)
		}

		// ASAP work now: offered by matching, taken, done.
		asap := w.request()
		if ids := candidateIDs(t, w, asap.ID); !slices.Contains(ids, tess) {
			t.Fatalf("booked technician not a candidate for ASAP work: %v", ids)
		}
		_, err := w.svc.AssignByHand(w.ctx, opsAlice, asap.ID, dispatch.AssignInput{TechnicianID: tess})
		w.step("assign ASAP work", err)
		w.holds(tess, 1, 1, technicians.Busy)
		_, err = w.svc.Arrive(w.ctx, tess, asap.ID)
		w.step("arrive", err)
		_, err = w.svc.Complete(w.ctx, tess, asap.ID, dispatch.JobStep{Outcome: "fixed"})
		w.step("complete", err)
		w.holds(tess, 0, 1, technicians.Available)

		// Before the hold the sweep leaves the booking be; from it, counts it.
		w.clock.Advance(a.HoldsFrom.Sub(w.clock.Now()) - time.Minute)
		res, err := w.svc.Sweep(w.ctx)
		w.step("sweep", err)
		if res.Held != 0 {
			t.Fatalf("sweep before the hold counted %d", res.Held)
		}
		w.clock.Advance(time.Minute)
		res, err = w.svc.Sweep(w.ctx)
		w.step("sweep", err)
		if res.Held != 1 {
			t.Fatalf("sweep at the hold counted %d, want 1", res.Held)
		}
		w.holds(tess, 1, 0, technicians.Busy)
		if res, _ := w.svc.Sweep(w.ctx); res.Held != 0 {
			t.Fatalf("a second sweep counted %d again", res.Held)
		}
		_, err = w.svc.Depart(w.ctx, tess, win.ID)
		w.step("depart", err)
		_, err = w.svc.Arrive(w.ctx, tess, win.ID)
		w.step("arrive", err)
		_, err = w.svc.Complete(w.ctx, tess, win.ID, dispatch.JobStep{Outcome: "fixed"})
		w.step("complete", err)
		w.holds(tess, 0, 0, technicians.Available)

		// Setting off early counts a booking at once...
		early := w.book(tess, 4*time.Hour)
		_, err = w.svc.Depart(w.ctx, tess, early.ID)
		w.step("depart early", err)
		w.holds(tess, 1, 0, technicians.Busy)
		_, err = w.svc.Cancel(w.ctx, opsAlice, early.ID, dispatch.CancelInput{Reason: "customer away"})
		w.step("cancel", err)
		w.holds(tess, 0, 0, technicians.Available)

		// ...but not while another job fills her capacity.
		later := w.book(tess, 5*time.Hour)
		now := w.request()
		_, err = w.svc.AssignByHand(w.ctx, opsAlice, now.ID, dispatch.AssignInput{TechnicianID: tess})
		w.step("assign ASAP work", err)
		_, err = w.svc.Depart(w.ctx, tess, later.ID)
		if e, ok := errs.As(err); !ok || e.Code != errs.Conflict || e.Reason != "finish_current_job" {
			t.Fatalf("setting off to a booking while at capacity: %v, want conflict finish_current_job", err)
		}
		w.holds(tess, 1, 1, technicians.Busy)

		// A cancelled booking releases nothing: the ASAP job still counts.
		_, err = w.svc.Cancel(w.ctx, opsAlice, later.ID, dispatch.CancelInput{Reason: "customer away"})
		w.step("cancel the booking", err)
		w.holds(tess, 1, 0, technicians.Busy)
	})
}

// TestBookingsRace: on PostgreSQL, 20 ops at once book one technician
// (capacity 1) for the same window, each a different request: exactly one
// booking is made, the others are refused as the rules say.
func TestBookingsRace(t *testing.T) {
	t.Parallel()
	w := newWorld(t, dbtest.Postgres(t), match.Batch, 1)
	tess := w.tech("Tess", 1000)
	start := w.clock.Now().Add(3 * time.Hour)
	lat, lng := zurich.Lat, zurich.Lng
	var reqs []string
	for range 20 {
		out, err := w.svc.Create(w.ctx, dispatch.Caller{Role: "customer", Subject: "wanda"}, "", dispatch.NewRequest{Skill: "wifi_setup", Lat: &lat, Lng: &lng,
			Window: &dispatch.TimeWindow{Start: start, End: start.Add(time.Hour)}})
		w.step("create", err)
		reqs = append(reqs, out.Request.ID)
	}
	var mu sync.Mutex
	won, refused := 0, 0
	var wg sync.WaitGroup
	for _, id := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := w.svc.AssignByHand(w.ctx, opsAlice, id, dispatch.AssignInput{TechnicianID: tess})
			mu.Lock()
			defer mu.Unlock()
			e, ok := errs.As(err)
			switch {
			case err == nil:
				won++
			case ok && e.Code == errs.Conflict && (e.Reason == dispatch.ReasonNotEligible || e.Reason == "technician_unavailable"):
				refused++
			default:
				t.Errorf("booking: %v", err)
			}
		}()
	}
	wg.Wait()
	if won != 1 || refused != 19 {
		t.Fatalf("won %d, refused %d; want 1 and 19", won, refused)
	}
	w.holds(tess, 0, 1, technicians.Available)
}

// TestWeeklyShiftsInTheIndex: weekly shifts and breaks take a technician in
// and out of matching, in the live index as at the doors.
func TestWeeklyShiftsInTheIndex(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		w := newWorld(t, d, match.Batch, 1)
		wendy := w.tech("Wendy", 800)
		today := []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}[w.clock.Now().Weekday()]
		tomorrow := []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}[(w.clock.Now().Weekday()+1)%7]
		r := w.request()
		tests := []struct {
			name   string
			weekly []technicians.WeeklyInput
			want   bool
		}{
			{"a shift all of today", []technicians.WeeklyInput{{Day: today, Start: "00:00", End: "24:00"}}, true},
			{"and a break all of today", []technicians.WeeklyInput{{Day: today, Start: "00:00", End: "24:00"}, {Kind: "break", Day: today, Start: "00:00", End: "24:00"}}, false},
			{"a shift tomorrow only", []technicians.WeeklyInput{{Day: tomorrow, Start: "00:00", End: "24:00"}}, false},
			{"none", []technicians.WeeklyInput{}, true},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if _, err := w.techs.SetWeekly(w.ctx, wendy, tt.weekly); err != nil {
					t.Fatal(err)
				}
				if got := slices.Contains(candidateIDs(t, w, r.ID), wendy); got != tt.want {
					t.Fatalf("a candidate: %v, want %v", got, tt.want)
				}
			})
		}
	})
}
