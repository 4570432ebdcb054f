package technicians_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/onsite/onsite/internal/db"
	"github.com/onsite/onsite/internal/dbtest"
	"github.com/onsite/onsite/internal/errs"
	"github.com/onsite/onsite/technicians"
)

func newTech(t *testing.T, s *technicians.Service, phone string, capacity int) technicians.Technician {
	t.Helper()
	tech, err := s.Create(context.Background(), technicians.NewTechnician{Name: "Tina", Phone: phone, Capacity: &capacity})
	if err != nil {
		t.Fatal(err)
	}
	return tech
}

// TestReserveRace races 50 goroutines for a technician with capacity 2 on
// PostgreSQL: exactly two win (invariant 2), and the technician turns busy.
func TestReserveRace(t *testing.T) {
	t.Parallel()
	d := dbtest.Postgres(t)
	s := technicians.NewService(d, time.Now)
	ctx := context.Background()
	tech := newTech(t, s, "+41790000001", 2)
	if _, err := s.SetDuty(ctx, tech.ID, technicians.Available); err != nil {
		t.Fatal(err)
	}
	var won, lost atomic.Int32
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := d.Tx(ctx, func(tx *gorm.DB) error {
				return technicians.Reserve(tx, tech.ID, time.Now().UTC(), false)
			})
			switch {
			case err == nil:
				won.Add(1)
			case errors.Is(err, technicians.ErrNoCapacity):
				lost.Add(1)
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if won.Load() != 2 || lost.Load() != 48 {
		t.Fatalf("won %d, lost %d; want 2 and 48", won.Load(), lost.Load())
	}
	got, err := s.Get(ctx, tech.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.ActiveJobs != 2 || got.DutyStatus != technicians.Busy {
		t.Fatalf("after race: active %d, duty %s", got.ActiveJobs, got.DutyStatus)
	}
	// the database itself refuses more than capacity, whatever the caller does
	err = d.Exec("UPDATE technicians SET active_jobs = 3 WHERE id = ?", tech.ID).Error
	if err == nil {
		t.Fatal("database accepted active_jobs above capacity")
	}
	if err := d.Tx(ctx, func(tx *gorm.DB) error { return technicians.Release(tx, tech.ID, time.Now().UTC()) }); err != nil {
		t.Fatal(err)
	}
	got, _ = s.Get(ctx, tech.ID)
	if got.ActiveJobs != 1 || got.DutyStatus != technicians.Available {
		t.Fatalf("after release: active %d, duty %s", got.ActiveJobs, got.DutyStatus)
	}
}

func TestDutyAndReserveRules(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := technicians.NewService(d, time.Now)
		tech := newTech(t, s, "+41790000002", 1)
		reserve := func(force bool) error {
			return d.Tx(context.Background(), func(tx *gorm.DB) error { return technicians.Reserve(tx, tech.ID, time.Now().UTC(), force) })
		}
		if err := reserve(false); !errors.Is(err, technicians.ErrNoCapacity) {
			t.Fatalf("offline technician reserved: %v", err)
		}
		if _, err := s.Suspend(ctx, tech.ID, true); err != nil {
			t.Fatal(err)
		}
		if _, err := s.SetDuty(ctx, tech.ID, technicians.Available); errs.CodeOf(err) != errs.Conflict {
			t.Fatalf("suspended technician went on duty: %v", err)
		}
		if _, err := s.Suspend(ctx, tech.ID, false); err != nil {
			t.Fatal(err)
		}
		if _, err := s.SetDuty(ctx, tech.ID, technicians.Available); err != nil {
			t.Fatal(err)
		}
		if err := reserve(false); err != nil {
			t.Fatal(err)
		}
		got, _ := s.Get(ctx, tech.ID)
		if got.DutyStatus != technicians.Busy {
			t.Fatalf("at capacity but %s", got.DutyStatus)
		}
		// going on duty while at capacity keeps the technician busy
		if got, _ := s.SetDuty(ctx, tech.ID, technicians.Available); got.DutyStatus != technicians.Busy {
			t.Fatalf("duty %s", got.DutyStatus)
		}
	})
}

func TestLocationIgnoresStalePings(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := technicians.NewService(d, time.Now)
		tech := newTech(t, s, "+41790000003", 1)
		now := time.Now().UTC()
		newer, older := now.Add(-10*time.Second), now.Add(-time.Minute)
		if loc, err := s.UpdateLocation(ctx, tech.ID, technicians.Ping{Lat: ptr(47.37), Lng: ptr(8.54), At: &newer}); err != nil || !loc.Applied {
			t.Fatalf("first ping: %+v %v", loc, err)
		}
		if loc, err := s.UpdateLocation(ctx, tech.ID, technicians.Ping{Lat: ptr(46.0), Lng: ptr(7.0), At: &older}); err != nil || loc.Applied {
			t.Fatalf("stale ping applied: %+v %v", loc, err)
		}
		got, _ := s.Get(ctx, tech.ID)
		if *got.Lat != 47.37 || got.Cell == nil {
			t.Fatalf("position moved back: %v", *got.Lat)
		}
		if _, err := s.UpdateLocation(ctx, "nobody", technicians.Ping{Lat: ptr(1.0), Lng: ptr(1.0)}); errs.CodeOf(err) != errs.NotFound {
			t.Fatalf("unknown technician: %v", err)
		}
	})
}

func TestCertificationsAndShifts(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := technicians.NewService(d, time.Now)
		if _, err := s.CreateSkill(ctx, "router_replace", "Replace a router"); err != nil {
			t.Fatal(err)
		}
		tech := newTech(t, s, "+41790000004", 1)
		exp := time.Now().Add(24 * time.Hour)
		if _, err := s.Certify(ctx, tech.ID, "router_replace", nil, exp); err != nil {
			t.Fatal(err)
		}
		// renewing replaces the expiry
		exp2 := exp.Add(24 * time.Hour)
		if _, err := s.Certify(ctx, tech.ID, "router_replace", nil, exp2); err != nil {
			t.Fatal(err)
		}
		got, _ := s.Get(ctx, tech.ID)
		if len(got.Certifications) != 1 || !got.Certifications[0].ExpiresAt.Equal(db.UTC(exp2)) {
			t.Fatalf("certifications: %+v", got.Certifications)
		}
		list, err := s.List(ctx, technicians.Filter{Skill: "router_replace"})
		if err != nil || len(list) != 1 {
			t.Fatalf("list by skill: %d %v", len(list), err)
		}
		start := time.Now().Truncate(time.Hour)
		if _, err := s.SetShifts(ctx, tech.ID, []technicians.ShiftInput{{Start: start, End: start.Add(8 * time.Hour)}}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.SetShifts(ctx, tech.ID, []technicians.ShiftInput{{Start: start, End: start.Add(-time.Hour)}}); errs.CodeOf(err) != errs.Invalid {
			t.Fatalf("bad shift: %v", err)
		}
		got, _ = s.Get(ctx, tech.ID)
		if len(got.Shifts) != 1 || !technicians.InShift(got.Shifts, start.Add(time.Hour)) || technicians.InShift(got.Shifts, start.Add(9*time.Hour)) {
			t.Fatalf("shifts: %+v", got.Shifts)
		}
		if err := s.Revoke(ctx, tech.ID, "router_replace"); err != nil {
			t.Fatal(err)
		}
		if err := s.Revoke(ctx, tech.ID, "router_replace"); errs.CodeOf(err) != errs.NotFound {
			t.Fatalf("second revoke: %v", err)
		}
	})
}

func ptr[T any](v T) *T { return &v }

func TestEndShiftsAndStalePositions(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := technicians.NewService(d, time.Now)
		over := newTech(t, s, "+41790000010", 1)
		working := newTech(t, s, "+41790000011", 1)
		noShifts := newTech(t, s, "+41790000012", 1)
		stale := newTech(t, s, "+41790000013", 1)
		now := time.Now()
		if _, err := s.SetShifts(ctx, working.ID, []technicians.ShiftInput{{Start: now.Add(-time.Hour), End: now.Add(time.Hour)}}); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{over.ID, working.ID, noShifts.ID, stale.ID} {
			if _, err := s.SetDuty(ctx, id, technicians.Available); err != nil {
				t.Fatal(err)
			}
			at := now
			if id == stale.ID {
				at = now.Add(-time.Hour)
			}
			if _, err := s.UpdateLocation(ctx, id, technicians.Ping{Lat: ptr(47.0), Lng: ptr(8.0), At: &at}); err != nil {
				t.Fatal(err)
			}
		}
		// Its shift set after going on duty: going on duty after the last
		// shift ended is refused.
		if _, err := s.SetShifts(ctx, over.ID, []technicians.ShiftInput{{Start: now.Add(-9 * time.Hour), End: now.Add(-time.Hour)}}); err != nil {
			t.Fatal(err)
		}
		if n, err := s.EndShifts(ctx); err != nil || n != 1 {
			t.Fatalf("end shifts: %d %v", n, err)
		}
		if n, err := s.OfflineStale(ctx, 15*time.Minute); err != nil || n != 1 {
			t.Fatalf("stale: %d %v", n, err)
		}
		for id, want := range map[string]string{over.ID: technicians.Offline, working.ID: technicians.Available, noShifts.ID: technicians.Available, stale.ID: technicians.Offline} {
			if got, _ := s.Get(ctx, id); got.DutyStatus != want {
				t.Errorf("%s: %s, want %s", got.Phone, got.DutyStatus, want)
			}
		}
		if got, err := s.ByPhone(ctx, "+41790000011"); err != nil || got.ID != working.ID {
			t.Fatalf("by phone: %v", err)
		}
		// Each technician taken off duty is owed a text saying why, and the
		// view says it too; going back on duty makes the text moot.
		if _, err := s.Suspend(ctx, noShifts.ID, true); err != nil {
			t.Fatal(err)
		}
		notices, err := s.DutyNotices(ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{over.ID: technicians.DutyShiftEnded, stale.ID: technicians.DutyNoPosition, noShifts.ID: technicians.DutySuspended}
		if len(notices) != len(want) {
			t.Fatalf("notices %+v, want %v", notices, want)
		}
		for _, n := range notices {
			if want[n.TechnicianID] != n.Reason || !n.Current || n.Phone == "" {
				t.Errorf("notice %+v, want reason %s, current", n, want[n.TechnicianID])
			}
			if got, _ := s.Get(ctx, n.TechnicianID); got.DutyReason == nil || *got.DutyReason != n.Reason {
				t.Errorf("%s: duty_reason %v, want %s", got.Phone, got.DutyReason, n.Reason)
			}
		}
		if _, err := s.SetDuty(ctx, stale.ID, technicians.Available); err != nil {
			t.Fatal(err)
		}
		for _, n := range notices {
			if n.TechnicianID == over.ID {
				if err := s.DutyNoticeDone(ctx, n.TechnicianID, n.At); err != nil {
					t.Fatal(err)
				}
			}
		}
		left, err := s.DutyNotices(ctx, 10)
		if err != nil || len(left) != 1 || left[0].TechnicianID != noShifts.ID {
			t.Fatalf("notices left %+v %v, want only the suspension", left, err)
		}
		if got, _ := s.Get(ctx, stale.ID); got.DutyReason != nil {
			t.Errorf("back on duty, duty_reason still %q", *got.DutyReason)
		}
	})
}

func TestSkillNames(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := technicians.NewService(d, time.Now)
		sk, err := s.AddSkill(ctx, technicians.Skill{Code: "router_replace", Name: "Router replacement",
			Names: technicians.Names{"de": " Router ersetzen ", "fr": "Remplacement du routeur"}})
		if err != nil || sk.Names["de"] != "Router ersetzen" {
			t.Fatalf("add: %+v %v", sk, err)
		}
		if _, err := s.CreateSkill(ctx, "wifi_setup", "Wi-Fi"); err != nil {
			t.Fatal(err)
		}
		for _, tt := range []struct {
			name  string
			code  string
			in    technicians.SkillUpdate
			field string
		}{
			{"unknown locale", "router_replace", technicians.SkillUpdate{Names: technicians.Names{"es": "Router"}}, "names"},
			{"empty name", "router_replace", technicians.SkillUpdate{Names: technicians.Names{"it": " "}}, "names.it"},
			{"nothing", "router_replace", technicians.SkillUpdate{}, "names"},
			{"long name", "router_replace", technicians.SkillUpdate{Name: ptr(strings.Repeat("x", 101))}, "name"},
		} {
			_, err := s.UpdateSkill(ctx, tt.code, tt.in)
			if e, ok := errs.As(err); !ok || e.Code != errs.Invalid || e.Field != tt.field {
				t.Errorf("%s: %v, want invalid %s", tt.name, err, tt.field)
			}
		}
		if _, err := s.UpdateSkill(ctx, "nope", technicians.SkillUpdate{Name: ptr("x")}); errs.CodeOf(err) != errs.NotFound {
			t.Errorf("unknown skill: %v", err)
		}
		sk, err = s.UpdateSkill(ctx, "router_replace", technicians.SkillUpdate{Names: technicians.Names{"it": "Sostituzione router"}})
		if err != nil || len(sk.Names) != 1 || sk.Names["it"] != "Sostituzione router" || sk.Name != "Router replacement" {
			t.Fatalf("update: %+v %v", sk, err)
		}
		list, err := s.ListSkills(ctx)
		if err != nil || len(list) != 2 || list[1].Names == nil {
			t.Fatalf("list: %+v %v", list, err)
		}
	})
}

func TestPingBuffer(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := technicians.NewService(d, time.Now)
		a := newTech(t, s, "+41790000020", 1)
		b := newTech(t, s, "+41790000021", 1)
		var moved []technicians.Moved
		buf := technicians.NewPingBuffer(d, time.Hour, func(_ context.Context, m []technicians.Moved) { moved = append(moved, m...) }, nil)
		now := time.Now().UTC()
		at := func(d time.Duration) *time.Time { x := now.Add(d); return &x }
		// a batch sent out of order: the newest wins
		got, err := buf.Add(a.ID,
			technicians.Ping{Lat: ptr(47.1), Lng: ptr(8.1), At: at(-30 * time.Second)},
			technicians.Ping{Lat: ptr(47.3), Lng: ptr(8.3), At: at(-10 * time.Second)},
			technicians.Ping{Lat: ptr(47.2), Lng: ptr(8.2), At: at(-20 * time.Second)})
		if err != nil || got.Received != 3 {
			t.Fatalf("add: %+v %v", got, err)
		}
		if _, err := buf.Add(b.ID, technicians.Ping{Lat: ptr(46.0), Lng: ptr(7.0), At: at(-5 * time.Second)}); err != nil {
			t.Fatal(err)
		}
		if _, err := buf.Add(a.ID, technicians.Ping{Lat: ptr(99.0), Lng: ptr(8.0)}); errs.CodeOf(err) != errs.Invalid {
			t.Fatalf("bad ping: %v", err)
		}
		if _, err := buf.Add(a.ID, technicians.Ping{Lat: ptr(47.0), Lng: ptr(8.0)}, technicians.Ping{Lat: ptr(47.0)}); err == nil {
			t.Fatal("a batch with a ping without lng was taken")
		}
		if err := buf.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if len(moved) != 2 {
			t.Fatalf("moved %+v", moved)
		}
		ga, _ := s.Get(ctx, a.ID)
		if *ga.Lat != 47.3 || ga.Cell == nil {
			t.Fatalf("a at %v", *ga.Lat)
		}
		// a ping older than the stored position is dropped at the flush
		moved = nil
		if _, err := buf.Add(a.ID, technicians.Ping{Lat: ptr(40.0), Lng: ptr(8.0), At: at(-time.Minute)}); err != nil {
			t.Fatal(err)
		}
		if err := buf.Flush(ctx); err != nil || len(moved) != 0 {
			t.Fatalf("stale ping written: %+v %v", moved, err)
		}
		if ga, _ = s.Get(ctx, a.ID); *ga.Lat != 47.3 {
			t.Fatalf("moved backwards to %v", *ga.Lat)
		}
	})
}
