package dispatch_test

import (
	"encoding/json"
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
)

// assignedJob creates a request and has the technician accept its offer.
func (w *world) assignedJob(techID string) dispatch.Request {
	w.t.Helper()
	r := w.request()
	res := w.match(r.ID)
	if len(res.Offered) != 1 || res.Offered[0].TechnicianID != techID {
		w.t.Fatalf("offered %v, want %s", offeredTo(res), techID)
	}
	got, err := w.svc.Accept(w.ctx, techID, res.Offered[0].ID)
	if err != nil {
		w.t.Fatal(err)
	}
	return got
}

func (w *world) ops(id string) dispatch.Request {
	w.t.Helper()
	r, err := w.svc.Get(w.ctx, dispatch.Caller{Role: "ops"}, id)
	if err != nil {
		w.t.Fatal(err)
	}
	return r
}

func (w *world) count(table string) int64 {
	w.t.Helper()
	var n int64
	if err := w.d.Table(table).Count(&n).Error; err != nil {
		w.t.Fatal(err)
	}
	return n
}

// rows counts what a refused call must not have written.
func (w *world) rows() map[string]int64 {
	out := map[string]int64{}
	for _, table := range []string{"requests", "events", "outbox", "assignments", "customers", "contact_phones"} {
		out[table] = w.count(table)
	}
	return out
}

func (w *world) sameRows(before map[string]int64) {
	w.t.Helper()
	for table, n := range w.rows() {
		if n != before[table] {
			w.t.Errorf("%s: %d rows, %d before a refused call", table, n, before[table])
		}
	}
}

func (w *world) activeJobs(techID string) int {
	w.t.Helper()
	tech, err := w.techs.Get(w.ctx, techID)
	if err != nil {
		w.t.Fatal(err)
	}
	return tech.ActiveJobs
}

func (w *world) lastEvent(id, typ string) map[string]any {
	w.t.Helper()
	evs, err := w.svc.Events(w.ctx, id)
	if err != nil {
		w.t.Fatal(err)
	}
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].Type == typ {
			return evs[i].Data
		}
	}
	w.t.Fatalf("no %s event in %v", typ, w.eventTypes(id))
	return nil
}

func reasonOf(err error) string {
	if e, ok := errs.As(err); ok {
		return e.Reason
	}
	return ""
}

func TestNotHomeClosesAsNoShow(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		w := newWorld(t, d, match.Sequential, 1)
		nina := w.tech("Nina", 1000)
		r := w.assignedJob(nina)

		// Refused at the door: too far, a position too old, not the job's
		// technician, a note too long. Nothing is written.
		refusals := []struct {
			name   string
			setup  func()
			tech   string
			in     dispatch.NotHomeInput
			code   errs.Code
			reason string
		}{
			{"1 km from the site", func() {}, nina, dispatch.NotHomeInput{}, errs.Conflict, "not_at_site"},
			{"position too old", func() { w.move(nina, geo.Offset(zurich, 40, 0)); w.clock.Advance(6 * time.Minute) }, nina, dispatch.NotHomeInput{}, errs.Conflict, "position_unknown"},
			{"someone else", func() {}, "tess", dispatch.NotHomeInput{}, errs.NotFound, ""},
			{"note too long", func() {}, nina, dispatch.NotHomeInput{Note: string(make([]byte, 501))}, errs.Invalid, ""},
		}
		for _, tt := range refusals {
			tt.setup()
			before := w.rows()
			_, err := w.svc.NotHome(w.ctx, tt.tech, r.ID, tt.in)
			if errs.CodeOf(err) != tt.code || reasonOf(err) != tt.reason {
				t.Fatalf("%s: %v (reason %q), want %s %q", tt.name, err, reasonOf(err), tt.code, tt.reason)
			}
			w.sameRows(before)
			if got := w.ops(r.ID); got.State != dispatch.Assigned || got.NoShowDueAt != nil {
				t.Fatalf("%s: request changed: %s %v", tt.name, got.State, got.NoShowDueAt)
			}
		}

		// At the door, 40 m away: the job arrives and the wait starts.
		w.move(nina, geo.Offset(zurich, 40, 0))
		waiting, err := w.svc.NotHome(w.ctx, nina, r.ID, dispatch.NotHomeInput{Note: "rang twice"})
		if err != nil {
			t.Fatal(err)
		}
		due := w.clock.Now().Add(10 * time.Minute)
		if waiting.State != dispatch.OnSite || waiting.Visits != 1 || waiting.NoShowDueAt == nil || !waiting.NoShowDueAt.Equal(due) {
			t.Fatalf("waiting: state %s visits %d due %v, want on_site 1 %v", waiting.State, waiting.Visits, waiting.NoShowDueAt, due)
		}
		data := w.lastEvent(r.ID, "customer_not_home")
		if data["technician_id"] != nina || data["distance_m"] != float64(40) || data["note"] != "rang twice" {
			t.Fatalf("customer_not_home data: %v", data)
		}
		if w.outboxCount(dispatch.TaskNoShow) != 1 {
			t.Fatal("no no-show timer in the outbox")
		}
		if _, err := w.svc.NotHome(w.ctx, nina, r.ID, dispatch.NotHomeInput{}); reasonOf(err) != "already_waiting" {
			t.Fatalf("second report: %v", err)
		}

		// The timer early does nothing; on time it closes the request.
		w.clock.Advance(9 * time.Minute)
		if err := w.svc.CloseNoShow(w.ctx, r.ID); err != nil {
			t.Fatal(err)
		}
		if got := w.ops(r.ID); got.State != dispatch.OnSite {
			t.Fatalf("closed early: %s", got.State)
		}
		w.clock.Advance(time.Minute)
		for range 2 { // a task may run twice
			if err := w.svc.CloseNoShow(w.ctx, r.ID); err != nil {
				t.Fatal(err)
			}
		}
		closed := w.ops(r.ID)
		if closed.State != dispatch.NoShow || closed.Outcome == nil || *closed.Outcome != dispatch.OutcomeNoShow || closed.NoShowDueAt != nil {
			t.Fatalf("closed: state %s outcome %v due %v", closed.State, closed.Outcome, closed.NoShowDueAt)
		}
		if n := w.activeJobs(nina); n != 0 {
			t.Fatalf("technician still holds %d jobs", n)
		}
		types := w.eventTypes(r.ID)
		if got := types[len(types)-3:]; !equal(got, []string{"on_site", "customer_not_home", "no_show"}) {
			t.Fatalf("events end with %v", got)
		}
		if _, err := w.svc.Cancel(w.ctx, dispatch.Caller{Role: "ops", Subject: "alice"}, r.ID, dispatch.CancelInput{Reason: "x"}); errs.CodeOf(err) != errs.Conflict {
			t.Fatalf("cancel after no-show: %v", err)
		}
	})
}

func TestCustomerHomeEndsTheWait(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		caller func(tech string) dispatch.Caller
	}{
		{"the customer", func(string) dispatch.Caller { return dispatch.Caller{Role: "customer", Subject: "carla"} }},
		{"the technician", func(tech string) dispatch.Caller { return dispatch.Caller{Role: "technician", Subject: tech} }},
		{"ops", func(string) dispatch.Caller { return dispatch.Caller{Role: "ops", Subject: "alice"} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dbtest.Each(t, func(t *testing.T, d *db.DB) {
				w := newWorld(t, d, match.Sequential, 1)
				nina := w.tech("Nina", 100)
				r := w.assignedJob(nina)
				if _, err := w.svc.CustomerHome(w.ctx, tt.caller(nina), r.ID); reasonOf(err) != "not_waiting" {
					t.Fatalf("home before anyone waits: %v", err)
				}
				if _, err := w.svc.NotHome(w.ctx, nina, r.ID, dispatch.NotHomeInput{}); err != nil {
					t.Fatal(err)
				}
				before := w.rows()
				if _, err := w.svc.CustomerHome(w.ctx, dispatch.Caller{Role: "customer", Subject: "someone"}, r.ID); errs.CodeOf(err) != errs.NotFound {
					t.Fatalf("another customer: %v", err)
				}
				w.sameRows(before)
				home, err := w.svc.CustomerHome(w.ctx, tt.caller(nina), r.ID)
				if err != nil {
					t.Fatal(err)
				}
				if home.State != dispatch.OnSite || home.NoShowDueAt != nil {
					t.Fatalf("after home: %s %v", home.State, home.NoShowDueAt)
				}
				if data := w.lastEvent(r.ID, "customer_home"); data["by"] != tt.caller(nina).Role {
					t.Fatalf("customer_home data: %v", data)
				}
				w.clock.Advance(time.Hour)
				if err := w.svc.CloseNoShow(w.ctx, r.ID); err != nil {
					t.Fatal(err)
				}
				done, err := w.svc.Complete(w.ctx, nina, r.ID, dispatch.JobStep{Outcome: "fixed"})
				if err != nil || done.State != dispatch.Completed {
					t.Fatalf("complete after home: %+v %v", done.State, err)
				}
			})
		})
	}
}

func TestRescheduleWhileTheTechnicianWaits(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		w := newWorld(t, d, match.Sequential, 1)
		nina := w.tech("Nina", 100)
		r := w.assignedJob(nina)
		carla := dispatch.Caller{Role: "customer", Subject: "carla"}
		tomorrow := w.clock.Now().Add(24 * time.Hour).Truncate(time.Hour)
		window := &dispatch.TimeWindow{Start: tomorrow, End: tomorrow.Add(2 * time.Hour)}
		if _, err := w.svc.Reschedule(w.ctx, carla, r.ID, dispatch.RescheduleInput{Window: window}); reasonOf(err) != "not_waiting" {
			t.Fatalf("reschedule with nobody waiting: %v", err)
		}
		if _, err := w.svc.NotHome(w.ctx, nina, r.ID, dispatch.NotHomeInput{}); err != nil {
			t.Fatal(err)
		}
		bad := []struct {
			name  string
			in    dispatch.RescheduleInput
			field string
		}{
			{"no window", dispatch.RescheduleInput{}, "window"},
			{"end before start", dispatch.RescheduleInput{Window: &dispatch.TimeWindow{Start: tomorrow, End: tomorrow.Add(-time.Hour)}}, "window.end"},
			{"in the past", dispatch.RescheduleInput{Window: &dispatch.TimeWindow{Start: tomorrow.Add(-72 * time.Hour), End: tomorrow.Add(-71 * time.Hour)}}, "window.end"},
		}
		for _, tt := range bad {
			before := w.rows()
			_, err := w.svc.Reschedule(w.ctx, carla, r.ID, tt.in)
			if e, ok := errs.As(err); !ok || e.Code != errs.Invalid || e.Field != tt.field {
				t.Fatalf("%s: %v, want invalid %s", tt.name, err, tt.field)
			}
			w.sameRows(before)
		}
		got, err := w.svc.Reschedule(w.ctx, carla, r.ID, dispatch.RescheduleInput{Window: window})
		if err != nil {
			t.Fatal(err)
		}
		if got.State != dispatch.Scheduled || got.TechnicianID != nil || got.Mode != dispatch.Window || !got.WindowStart.Equal(tomorrow) || got.NoShowDueAt != nil {
			t.Fatalf("rescheduled: %+v", got)
		}
		if n := w.activeJobs(nina); n != 0 {
			t.Fatalf("technician still holds %d jobs", n)
		}
		types := w.eventTypes(r.ID)
		if got := types[len(types)-2:]; !equal(got, []string{"rescheduled", "scheduled"}) {
			t.Fatalf("events end with %v", got)
		}
		w.clock.Advance(time.Hour)
		if err := w.svc.CloseNoShow(w.ctx, r.ID); err != nil || w.ops(r.ID).State != dispatch.Scheduled {
			t.Fatalf("no-show timer after rescheduling: %v, %s", err, w.ops(r.ID).State)
		}
	})
}

func TestHandBack(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		w := newWorld(t, d, match.Sequential, 1)
		nina := w.tech("Nina", 100)
		other := w.tech("Otto", 3000)
		r := w.assignedJob(nina)
		if _, err := w.svc.Arrive(w.ctx, nina, r.ID); err != nil {
			t.Fatal(err)
		}
		bad := []struct {
			name  string
			tech  string
			in    dispatch.HandBackInput
			code  errs.Code
			field string
		}{
			{"no reason", nina, dispatch.HandBackInput{}, errs.Invalid, "reason"},
			{"unknown reason", nina, dispatch.HandBackInput{Reason: "bored"}, errs.Invalid, "reason"},
			{"other without a note", nina, dispatch.HandBackInput{Reason: "other", Note: "  "}, errs.Invalid, "note"},
			{"note too long", nina, dispatch.HandBackInput{Reason: "emergency", Note: string(make([]byte, 501))}, errs.Invalid, "note"},
			{"not their job", other, dispatch.HandBackInput{Reason: "emergency"}, errs.NotFound, ""},
		}
		for _, tt := range bad {
			before := w.rows()
			_, err := w.svc.HandBack(w.ctx, tt.tech, r.ID, tt.in)
			e, ok := errs.As(err)
			if !ok || e.Code != tt.code || e.Field != tt.field {
				t.Fatalf("%s: %v, want %s %s", tt.name, err, tt.code, tt.field)
			}
			w.sameRows(before)
		}
		back, err := w.svc.HandBack(w.ctx, nina, r.ID, dispatch.HandBackInput{Reason: "missing_equipment", Note: "no ladder"})
		if err != nil {
			t.Fatal(err)
		}
		if back.State != dispatch.Searching || back.TechnicianID != nil {
			t.Fatalf("after hand-back: %s %v", back.State, back.TechnicianID)
		}
		data := w.lastEvent(r.ID, "handed_back")
		if data["reason"] != "missing_equipment" || data["note"] != "no ladder" || data["from"] != "on_site" || data["technician_id"] != nina {
			t.Fatalf("handed_back data: %v", data)
		}
		if n := w.activeJobs(nina); n != 0 {
			t.Fatalf("technician still holds %d jobs", n)
		}
		if got := offeredTo(w.match(r.ID)); len(got) != 1 || got[0] != other {
			t.Fatalf("searched again: offered to %v, want %s", got, other)
		}
	})
}

func TestDropIsAHandBack(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		w := newWorld(t, d, match.Sequential, 1)
		nina := w.tech("Nina", 100)
		r := w.assignedJob(nina)
		if _, err := w.svc.Drop(w.ctx, nina, r.ID, dispatch.JobStep{Reason: "flat tyre"}); err != nil {
			t.Fatal(err)
		}
		if data := w.lastEvent(r.ID, "handed_back"); data["reason"] != "other" || data["note"] != "flat tyre" || data["from"] != "assigned" {
			t.Fatalf("handed_back data: %v", data)
		}
	})
}

func TestUnconfirmedDeviceRequestExpires(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		w := newWorld(t, d, match.Sequential, 1)
		device := dispatch.Caller{Role: "machine", Subject: "owner"}
		lat, lng := zurich.Lat, zurich.Lng
		open := func(key, deviceID string) dispatch.Request {
			c, err := w.svc.Create(w.ctx, device, key, dispatch.NewRequest{Skill: "wifi_setup", Lat: &lat, Lng: &lng, DeviceID: deviceID})
			if err != nil {
				t.Fatal(err)
			}
			if c.Request.State != dispatch.PendingConfirmation {
				t.Fatalf("device request is %s", c.Request.State)
			}
			return c.Request
		}
		r := open("k1", "router-1")
		if w.outboxCount(dispatch.TaskConfirmExpire) != 1 {
			t.Fatal("no expiry timer written with the request")
		}
		w.clock.Advance(23 * time.Hour)
		if err := w.svc.ExpireConfirmation(w.ctx, r.ID); err != nil || w.ops(r.ID).State != dispatch.PendingConfirmation {
			t.Fatalf("expired early: %v %s", err, w.ops(r.ID).State)
		}
		w.clock.Advance(time.Hour)
		for range 2 {
			if err := w.svc.ExpireConfirmation(w.ctx, r.ID); err != nil {
				t.Fatal(err)
			}
		}
		got := w.ops(r.ID)
		if got.State != dispatch.Cancelled || got.CancelReason == nil || *got.CancelReason != "confirmation_expired" {
			t.Fatalf("after expiry: %s %v", got.State, got.CancelReason)
		}
		types := w.eventTypes(r.ID)
		if got := types[len(types)-2:]; !equal(got, []string{"confirmation_expired", "cancelled"}) {
			t.Fatalf("events end with %v", got)
		}
		if _, err := w.svc.Confirm(w.ctx, dispatch.Caller{Role: "customer", Subject: "owner"}, r.ID, dispatch.ConfirmInput{}); errs.CodeOf(err) != errs.Conflict {
			t.Fatalf("confirm after expiry: %v", err)
		}

		// A lost timer: the sweep expires it.
		lost := open("k2", "router-2")
		d.Exec("DELETE FROM outbox")
		w.clock.Advance(25 * time.Hour)
		res, err := w.svc.Sweep(w.ctx)
		if err != nil || res.ConfirmationsExpired != 1 || w.ops(lost.ID).State != dispatch.Cancelled {
			t.Fatalf("sweep: %+v %v %s", res, err, w.ops(lost.ID).State)
		}
	})
}

func TestSweepClosesLostNoShows(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		w := newWorld(t, d, match.Sequential, 1)
		nina := w.tech("Nina", 100)
		r := w.assignedJob(nina)
		if _, err := w.svc.NotHome(w.ctx, nina, r.ID, dispatch.NotHomeInput{}); err != nil {
			t.Fatal(err)
		}
		d.Exec("DELETE FROM outbox")
		w.clock.Advance(11 * time.Minute)
		res, err := w.svc.Sweep(w.ctx)
		if err != nil || res.NoShows != 1 || w.ops(r.ID).State != dispatch.NoShow {
			t.Fatalf("sweep: %+v %v %s", res, err, w.ops(r.ID).State)
		}
	})
}

func TestDeviceFaultOfAnotherSkillOpensItsOwnRequest(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		w := newWorld(t, d, match.Sequential, 1)
		if _, err := w.techs.CreateSkill(w.ctx, "router_replace", "Router replacement"); err != nil {
			t.Fatal(err)
		}
		device := dispatch.Caller{Role: "machine", Subject: "owner", AutoConfirm: true}
		lat, lng := zurich.Lat, zurich.Lng
		faults := []struct {
			key, skill, fault string
			attached          bool
			sameAs            int // index of the fault whose request it lands on
		}{
			{"f1", "router_replace", "wan_down", false, 0},
			{"f2", "router_replace", "wan_down_again", true, 0},
			{"f3", "wifi_setup", "wifi_weak", false, 2},
			{"f4", "wifi_setup", "wifi_gone", true, 2},
		}
		ids := make([]string, len(faults))
		for i, f := range faults {
			c, err := w.svc.Create(w.ctx, device, f.key, dispatch.NewRequest{Skill: f.skill, Lat: &lat, Lng: &lng, DeviceID: "box-1", FaultCode: f.fault})
			if err != nil {
				t.Fatal(err)
			}
			ids[i] = c.Request.ID
			if c.Attached != f.attached || c.Request.SkillCode != f.skill || ids[i] != ids[f.sameAs] {
				t.Fatalf("fault %s: attached %v to %s (%s)", f.key, c.Attached, c.Request.ID, c.Request.SkillCode)
			}
		}
		if ids[0] == ids[2] {
			t.Fatal("the Wi-Fi fault joined the router request")
		}
		for _, i := range []int{0, 2} {
			if r := w.ops(ids[i]); r.Faults != 2 || r.State != dispatch.Searching {
				t.Fatalf("request %d: %d faults, %s", i, r.Faults, r.State)
			}
		}
	})
}

func TestIntake(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		w := newWorld(t, d, match.Sequential, 1)
		alice := dispatch.Caller{Role: "ops", Subject: "alice"}
		key := []byte("0123456789abcdef0123456789abcdef")
		lat, lng := zurich.Lat, zurich.Lng
		in := dispatch.IntakeInput{Name: "Heidi Muster", Phone: "+41791112233", Locale: "de", Skill: "wifi_setup",
			Lat: &lat, Lng: &lng, Address: "Bahnhofstrasse 1"}

		bad := []struct {
			name   string
			caller dispatch.Caller
			edit   func(in *dispatch.IntakeInput)
			code   errs.Code
			field  string
		}{
			{"a customer", dispatch.Caller{Role: "customer", Subject: "carla"}, func(*dispatch.IntakeInput) {}, errs.Forbidden, ""},
			{"no name", alice, func(in *dispatch.IntakeInput) { in.Name = " " }, errs.Invalid, "name"},
			{"no phone", alice, func(in *dispatch.IntakeInput) { in.Phone = "" }, errs.Invalid, "phone"},
			{"not E.164", alice, func(in *dispatch.IntakeInput) { in.Phone = "0791112233" }, errs.Invalid, "phone"},
			{"a country not texted", alice, func(in *dispatch.IntakeInput) { in.Phone = "+12025550123" }, errs.Invalid, "phone"},
			{"unknown skill", alice, func(in *dispatch.IntakeInput) { in.Skill = "plumbing" }, errs.Invalid, "skill"},
			{"no place", alice, func(in *dispatch.IntakeInput) { in.Lat = nil }, errs.Invalid, "lat"},
			{"bad locale", alice, func(in *dispatch.IntakeInput) { in.Locale = "xx" }, errs.Invalid, "locale"},
			{"window in the past", alice, func(in *dispatch.IntakeInput) {
				in.Window = &dispatch.TimeWindow{Start: w.clock.Now().Add(-3 * time.Hour), End: w.clock.Now().Add(-2 * time.Hour)}
			}, errs.Invalid, "window.end"},
		}
		for _, tt := range bad {
			bin := in
			tt.edit(&bin)
			before := w.rows()
			_, err := w.svc.Intake(w.ctx, tt.caller, bin, key, "https://onsite.example")
			e, ok := errs.As(err)
			if !ok || e.Code != tt.code || e.Field != tt.field {
				t.Fatalf("%s: %v, want %s %s", tt.name, err, tt.code, tt.field)
			}
			w.sameRows(before)
		}

		first, err := w.svc.Intake(w.ctx, alice, in, key, "https://onsite.example")
		if err != nil {
			t.Fatal(err)
		}
		r := first.Request
		if !first.Customer.Created || first.Customer.Name != "Heidi Muster" || r.CustomerID != first.Customer.ID || r.CreatedBy != "ops" ||
			r.State != dispatch.Searching || r.ContactPhone == nil || *r.ContactPhone != in.Phone || *r.ContactLocale != "de" {
			t.Fatalf("intake: %+v", first)
		}
		var cust struct {
			Name, Phone, Locale string
		}
		d.Table("customers").Where("id = ?", r.CustomerID).Take(&cust)
		if cust.Name != "Heidi Muster" || cust.Phone != in.Phone || cust.Locale != "de" {
			t.Fatalf("customer row: %+v", cust)
		}
		var proof struct {
			ConfirmedAt *time.Time
			ConfirmedBy *string
		}
		d.Table("contact_phones").Where("customer_id = ? AND phone = ?", r.CustomerID, in.Phone).Take(&proof)
		if proof.ConfirmedAt == nil || proof.ConfirmedBy == nil || *proof.ConfirmedBy != "ops:alice" {
			t.Fatalf("proof of the phone: %+v", proof)
		}
		evs, _ := w.svc.Events(w.ctx, r.ID)
		if evs[0].Type != "created" || evs[0].ActorRole != "ops" || evs[0].ActorID != "alice" || evs[0].Data["intake"] != true ||
			evs[0].Data["customer_created"] != true || !evs[0].MessagesOwed {
			t.Fatalf("created event: %+v", evs[0])
		}
		// The tracking link opens the request; the customer sees it as theirs.
		if v, err := w.svc.Tracked(w.ctx, key, first.Tracking.Token); err != nil || v.ID != r.ID {
			t.Fatalf("tracking link: %v %v", v.ID, err)
		}
		if _, err := w.svc.Get(w.ctx, dispatch.Caller{Role: "customer", Subject: r.CustomerID}, r.ID); err != nil {
			t.Fatalf("the customer's own request: %v", err)
		}

		// The same phone again, with another name: the same account, its name kept.
		again := in
		again.Name = "H. Muster"
		second, err := w.svc.Intake(w.ctx, dispatch.Caller{Role: "ops", Subject: "bob"}, again, key, "https://onsite.example")
		if err != nil {
			t.Fatal(err)
		}
		if second.Customer.Created || second.Customer.ID != r.CustomerID || second.Customer.Name != "Heidi Muster" {
			t.Fatalf("second intake: %+v", second.Customer)
		}
		d.Table("contact_phones").Where("customer_id = ? AND phone = ?", r.CustomerID, in.Phone).Take(&proof)
		if *proof.ConfirmedBy != "ops:alice" {
			t.Fatalf("first proof overwritten: %v", *proof.ConfirmedBy)
		}

		// A customer who signed in with the phone before: their account.
		d.Exec("INSERT INTO customers (id, name, phone, locale, created_at) VALUES ('app-user', '', '+41794445566', 'fr', ?)", w.clock.Now())
		known := in
		known.Phone = "+41794445566"
		third, err := w.svc.Intake(w.ctx, alice, known, key, "https://onsite.example")
		if err != nil {
			t.Fatal(err)
		}
		if third.Customer.ID != "app-user" || third.Customer.Created {
			t.Fatalf("known phone: %+v", third.Customer)
		}
		var raw string
		d.Table("events").Where("request_id = ? AND type = 'created'", third.Request.ID).Pluck("data", &raw)
		var data map[string]any
		_ = json.Unmarshal([]byte(raw), &data)
		if data["customer_id"] != "app-user" || data["customer_created"] != false {
			t.Fatalf("created data: %v", data)
		}
	})
}

func TestNotHomeWaitsForTheWindow(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		w := newWorld(t, d, match.Sequential, 1)
		nina := w.tech("Nina", 100)
		lat, lng := zurich.Lat, zurich.Lng
		start := w.clock.Now().Add(20 * time.Minute) // within the lead: searching at once
		c, err := w.svc.Create(w.ctx, dispatch.Caller{Role: "customer", Subject: "carla"}, "", dispatch.NewRequest{Skill: "wifi_setup", Lat: &lat, Lng: &lng,
			Window: &dispatch.TimeWindow{Start: start, End: start.Add(2 * time.Hour)}})
		if err != nil {
			t.Fatal(err)
		}
		res := w.match(c.Request.ID)
		if _, err := w.svc.Accept(w.ctx, nina, res.Offered[0].ID); err != nil {
			t.Fatal(err)
		}
		before := w.rows()
		if _, err := w.svc.NotHome(w.ctx, nina, c.Request.ID, dispatch.NotHomeInput{}); reasonOf(err) != "before_window" {
			t.Fatalf("before the window: %v", err)
		}
		w.sameRows(before)
		w.clock.Advance(21 * time.Minute)
		w.move(nina, geo.Offset(zurich, 30, 0))
		if got, err := w.svc.NotHome(w.ctx, nina, c.Request.ID, dispatch.NotHomeInput{}); err != nil || got.NoShowDueAt == nil {
			t.Fatalf("in the window: %v", err)
		}
	})
}

// TestIntakeRace: many dispatchers taking calls from one new phone at once
// make one account.
func TestIntakeRace(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		w := newWorld(t, d, match.Sequential, 1)
		lat, lng := zurich.Lat, zurich.Lng
		in := dispatch.IntakeInput{Name: "Heidi", Phone: "+41791119999", Skill: "wifi_setup", Lat: &lat, Lng: &lng}
		var wg sync.WaitGroup
		errc := make(chan error, 20)
		for i := range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := w.svc.Intake(w.ctx, dispatch.Caller{Role: "ops", Subject: fmt.Sprint("ops-", i)}, in, []byte("k"), "https://x")
				errc <- err
			}()
		}
		wg.Wait()
		close(errc)
		for err := range errc {
			if err != nil {
				t.Fatal(err)
			}
		}
		var accounts int64
		d.Table("customers").Where("phone = ?", in.Phone).Count(&accounts)
		if accounts != 1 || w.count("requests") != 20 {
			t.Fatalf("%d accounts, %d requests; want 1 and 20", accounts, w.count("requests"))
		}
	})
}

// TestNoShowRacesCustomerHome: at the end of the wait the timer and the
// customer's "I'm home" race; exactly one wins, and the technician's
// capacity follows it.
func TestNoShowRacesCustomerHome(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		w := newWorld(t, d, match.Sequential, 1)
		nina := w.tech("Nina", 100)
		r := w.assignedJob(nina)
		if _, err := w.svc.NotHome(w.ctx, nina, r.ID, dispatch.NotHomeInput{}); err != nil {
			t.Fatal(err)
		}
		w.clock.Advance(10 * time.Minute)
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if i%2 == 0 {
					if err := w.svc.CloseNoShow(w.ctx, r.ID); err != nil {
						t.Error(err)
					}
					return
				}
				_, err := w.svc.CustomerHome(w.ctx, dispatch.Caller{Role: "customer", Subject: "carla"}, r.ID)
				if err != nil && errs.CodeOf(err) != errs.Conflict {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		types := w.eventTypes(r.ID)
		noShows, homes := 0, 0
		for _, typ := range types {
			switch typ {
			case "no_show":
				noShows++
			case "customer_home":
				homes++
			}
		}
		got := w.ops(r.ID)
		switch {
		case noShows == 1 && homes == 0 && got.State == dispatch.NoShow && w.activeJobs(nina) == 0:
		case noShows == 0 && homes == 1 && got.State == dispatch.OnSite && w.activeJobs(nina) == 1:
		default:
			t.Fatalf("%d no_show and %d customer_home events, state %s, %d jobs held", noShows, homes, got.State, w.activeJobs(nina))
		}
	})
}
