package technicians_test

import (
	"context"
	"testing"
	"time"

	"github.com/onsite/onsite/internal/db"
	"github.com/onsite/onsite/internal/dbtest"
	"github.com/onsite/onsite/internal/errs"
	"github.com/onsite/onsite/technicians"
)

func TestScheduleOf(t *testing.T) {
	t.Parallel()
	zurich, err := time.LoadLocation("Europe/Zurich")
	if err != nil {
		t.Fatal(err)
	}
	local := func(y int, m time.Month, d, h, min int) time.Time { return time.Date(y, m, d, h, min, 0, 0, zurich) }
	weekly := func(kind string, day time.Weekday, start, minutes int) technicians.WeeklyShift {
		return technicians.WeeklyShift{Kind: kind, Weekday: day, StartMinute: start, Minutes: minutes}
	}
	office := []technicians.WeeklyShift{
		weekly(technicians.KindShift, time.Monday, 8*60, 9*60),             // 08:00-17:00
		weekly(technicians.KindBreak, time.Monday, 12*60, 30),              // 12:00-12:30
		weekly(technicians.KindShift, time.Friday, 22*60, 8*60),            // 22:00-06:00
		weekly(technicians.KindShift, time.Sunday, 1*60, 4*60),             // 01:00-05:00
		weekly(technicians.KindBreak, time.Wednesday, 0, 24*60),            // a break on a day off
		weekly(technicians.KindShift, time.Tuesday, 23*60+30, 24*60-23*60), // 23:30-24:00 (lasts 30 min)
	}
	tests := []struct {
		name             string
		at               time.Time
		inShift, onBreak bool
		next             time.Time // zero: not asked
	}{
		{name: "Monday morning", at: local(2026, 12, 7, 9, 0), inShift: true},
		{name: "Monday at the break", at: local(2026, 12, 7, 12, 10), inShift: true, onBreak: true},
		{name: "Monday after the break", at: local(2026, 12, 7, 12, 30), inShift: true},
		{name: "Monday evening", at: local(2026, 12, 7, 17, 0), next: local(2026, 12, 8, 23, 30)},
		{name: "Monday before work", at: local(2026, 12, 7, 6, 0), next: local(2026, 12, 7, 8, 0)},
		{name: "Saturday 03:00, the night shift begun on Friday", at: local(2026, 12, 12, 3, 0), inShift: true},
		{name: "Saturday 06:00, the night over", at: local(2026, 12, 12, 6, 0), next: local(2026, 12, 13, 1, 0)},
		{name: "summer time begins: still 01:00-05:00 by the clock", at: local(2026, 3, 29, 4, 30), inShift: true},
		{name: "summer time begins: over at 05:00", at: local(2026, 3, 29, 5, 0), next: local(2026, 3, 30, 8, 0)},
		{name: "summer time: a week later the same", at: local(2026, 4, 5, 4, 59), inShift: true},
		{name: "Wednesday's break, outside any shift", at: local(2026, 12, 9, 10, 0), onBreak: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := technicians.ScheduleOf(nil, office, tt.at, tt.at.Add(technicians.ScheduleHorizon), zurich)
			if !s.Restricted {
				t.Fatal("weekly shifts do not restrict")
			}
			if got := s.InShift(tt.at); got != tt.inShift {
				t.Fatalf("InShift = %v", got)
			}
			if got := s.OnBreak(tt.at); got != tt.onBreak {
				t.Fatalf("OnBreak = %v", got)
			}
			if got := s.Works(tt.at); got != (tt.inShift && !tt.onBreak) {
				t.Fatalf("Works = %v", got)
			}
			if !tt.next.IsZero() {
				if got, ok := s.NextShift(tt.at); !ok || !got.Equal(tt.next) {
					t.Fatalf("NextShift = %v %v, want %v", got.In(zurich), ok, tt.next)
				}
			}
		})
	}
	// 01:00-05:00 on the night clocks go forward holds 3 hours, not 4.
	day := local(2026, 3, 29, 0, 0)
	s := technicians.ScheduleOf(nil, office[3:4], day, day.Add(24*time.Hour), zurich)
	if len(s.Shifts) != 1 || s.Shifts[0].End.Sub(s.Shifts[0].Start) != 3*time.Hour || !s.Shifts[0].End.Equal(local(2026, 3, 29, 5, 0)) {
		t.Fatalf("the night clocks go forward: %+v", s.Shifts)
	}
	// One-off breaks do not restrict; a one-off shift does.
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	brk := technicians.Shift{Kind: technicians.KindBreak, StartsAt: now, EndsAt: now.Add(time.Hour)}
	if s := technicians.ScheduleOf([]technicians.Shift{brk}, nil, now, now.Add(time.Hour), time.UTC); s.Restricted || !s.OnBreak(now) || !s.InShift(now) {
		t.Fatalf("a one-off break: %+v", s)
	}
}

// TestWeeklyShiftsInput: what ops enter is stored and shown as entered, and
// bad entries are refused naming the field, changing nothing.
func TestWeeklyShiftsInput(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := technicians.NewService(d, time.Now)
		tech := newTech(t, s, "+41790000201", 1)
		got, err := s.SetWeekly(ctx, tech.ID, []technicians.WeeklyInput{
			{Day: "mon", Start: "08:00", End: "17:00"},
			{Kind: "break", Day: "mon", Start: "12:00", End: "12:30"},
			{Day: "fri", Start: "22:00", End: "06:00"},
			{Day: "sun", Start: "18:00", End: "24:00"},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(got.WeeklyShifts) != 4 || got.WeeklyShifts[0].Weekday != time.Sunday || got.WeeklyShifts[0].Minutes != 360 ||
			got.WeeklyShifts[3].Weekday != time.Friday || got.WeeklyShifts[3].Minutes != 8*60 || got.WeeklyShifts[2].Kind != technicians.KindBreak {
			t.Fatalf("stored %+v", got.WeeklyShifts)
		}
		bad := []struct {
			name  string
			in    technicians.WeeklyInput
			field string
		}{
			{"no day", technicians.WeeklyInput{Start: "08:00", End: "09:00"}, "weekly[0].day"},
			{"a day of its own", technicians.WeeklyInput{Day: "someday", Start: "08:00", End: "09:00"}, "weekly[0].day"},
			{"25 o'clock", technicians.WeeklyInput{Day: "mon", Start: "25:00", End: "09:00"}, "weekly[0].start"},
			{"no minutes", technicians.WeeklyInput{Day: "mon", Start: "8", End: "09:00"}, "weekly[0].start"},
			{"24:00 as a start", technicians.WeeklyInput{Day: "mon", Start: "24:00", End: "09:00"}, "weekly[0].start"},
			{"end missing", technicians.WeeklyInput{Day: "mon", Start: "08:00"}, "weekly[0].end"},
			{"as long as nothing", technicians.WeeklyInput{Day: "mon", Start: "08:00", End: "08:00"}, "weekly[0].end"},
			{"a nap", technicians.WeeklyInput{Kind: "nap", Day: "mon", Start: "08:00", End: "09:00"}, "weekly[0].kind"},
		}
		for _, tt := range bad {
			t.Run(tt.name, func(t *testing.T) {
				_, err := s.SetWeekly(ctx, tech.ID, []technicians.WeeklyInput{tt.in})
				if e, ok := errs.As(err); !ok || e.Code != errs.Invalid || e.Field != tt.field {
					t.Fatalf("got %v, want invalid %s", err, tt.field)
				}
			})
		}
		if n := dbtest.Count(t, d, "weekly_shifts"); n != 4 {
			t.Fatalf("%d weekly shifts after bad input, want the 4", n)
		}
		if _, err := s.SetWeekly(ctx, "nope", nil); errs.CodeOf(err) != errs.NotFound {
			t.Fatalf("unknown technician: %v", err)
		}
		if got, err := s.SetWeekly(ctx, tech.ID, []technicians.WeeklyInput{}); err != nil || len(got.WeeklyShifts) != 0 {
			t.Fatalf("clearing: %v %+v", err, got.WeeklyShifts)
		}
	})
}

// TestEarlyDuty: going on duty before the shift is kept and takes effect at
// its start; the shift clock neither takes such a technician off nor leaves
// them on past the shift's end.
func TestEarlyDuty(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		now := time.Date(2026, 12, 4, 6, 0, 0, 0, time.UTC)
		s := technicians.NewService(d, func() time.Time { return now })
		early := newTech(t, s, "+41790000301", 1)
		start := now.Add(2 * time.Minute)
		if _, err := s.SetShifts(ctx, early.ID, []technicians.ShiftInput{{Start: start, End: start.Add(8 * time.Hour)}}); err != nil {
			t.Fatal(err)
		}
		got, err := s.SetDuty(ctx, early.ID, technicians.Available)
		if err != nil {
			t.Fatal(err)
		}
		if got.DutyStatus != technicians.Available || got.OnDutyFrom == nil || !got.OnDutyFrom.Equal(start) {
			t.Fatalf("on duty early: %s from %v, want available from %s", got.DutyStatus, got.OnDutyFrom, start)
		}
		ping := now
		if _, err := s.UpdateLocation(ctx, early.ID, technicians.Ping{Lat: ptr(47.0), Lng: ptr(8.0), At: &ping}); err != nil {
			t.Fatal(err)
		}
		if n, err := s.EndShifts(ctx); err != nil || n != 0 {
			t.Fatalf("the shift clock before the shift: %d off duty, %v", n, err)
		}
		now = now.Add(30 * time.Minute) // no ping for half an hour, the shift begun
		if n, err := s.OfflineStale(ctx, 15*time.Minute); err != nil || n != 1 {
			t.Fatalf("stale once the shift begun: %d, %v", n, err)
		}
		if got, err = s.SetDuty(ctx, early.ID, technicians.Available); err != nil || got.OnDutyFrom != nil {
			t.Fatalf("on duty in the shift: %v, from %v", err, got.OnDutyFrom)
		}
		now = start.Add(8 * time.Hour)
		if n, err := s.EndShifts(ctx); err != nil || n != 1 {
			t.Fatalf("the shift clock at the end: %d off duty, %v", n, err)
		}

		// The clock clears OnDutyFrom when it passes; off duty clears it too.
		later := newTech(t, s, "+41790000302", 1)
		start = now.Add(time.Hour)
		if _, err := s.SetShifts(ctx, later.ID, []technicians.ShiftInput{{Start: start, End: start.Add(time.Hour)}}); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.SetDuty(ctx, later.ID, technicians.Available); got.OnDutyFrom == nil {
			t.Fatal("no OnDutyFrom")
		}
		// The shift moved: so does the early duty.
		moved := start.Add(30 * time.Minute)
		if got, err := s.SetShifts(ctx, later.ID, []technicians.ShiftInput{{Start: moved, End: moved.Add(30 * time.Minute)}}); err != nil || got.OnDutyFrom == nil || !got.OnDutyFrom.Equal(moved) {
			t.Fatalf("shift moved to %s: on duty from %v, %v", moved, got.OnDutyFrom, err)
		}
		if _, err := s.SetShifts(ctx, later.ID, []technicians.ShiftInput{{Start: start, End: start.Add(time.Hour)}}); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.SetDuty(ctx, later.ID, technicians.Offline); got.OnDutyFrom != nil {
			t.Fatalf("off duty still on duty from %v", got.OnDutyFrom)
		}
		if _, err := s.SetDuty(ctx, later.ID, technicians.Available); err != nil {
			t.Fatal(err)
		}
		now = start.Add(time.Minute)
		if n, err := s.EndShifts(ctx); err != nil || n != 0 {
			t.Fatalf("the shift clock in the shift: %d, %v", n, err)
		}
		if got, _ := s.Get(ctx, later.ID); got.OnDutyFrom != nil || got.DutyStatus != technicians.Available {
			t.Fatalf("after the start: %s from %v", got.DutyStatus, got.OnDutyFrom)
		}

		// No shift ahead: refused, and nothing written.
		now = now.Add(2 * time.Hour)
		before, _ := s.Get(ctx, later.ID)
		if _, err := s.SetDuty(ctx, later.ID, technicians.Offline); err != nil {
			t.Fatal(err)
		}
		before, _ = s.Get(ctx, later.ID)
		_, err = s.SetDuty(ctx, later.ID, technicians.Available)
		if e, ok := errs.As(err); !ok || e.Code != errs.Conflict || e.Reason != "no_shift_ahead" {
			t.Fatalf("no shift ahead: %v", err)
		}
		if after, _ := s.Get(ctx, later.ID); after.UpdatedAt != before.UpdatedAt || after.DutyStatus != technicians.Offline {
			t.Fatalf("a refused duty change wrote: %+v", after)
		}

		// Weekly shifts count the same: Friday 2026-12-04 07:00 UTC, a
		// weekly Friday shift from 09:00 Zürich (08:00 UTC).
		zurich, _ := time.LoadLocation("Europe/Zurich")
		s.WithTimeZone(zurich)
		now = time.Date(2026, 12, 4, 7, 0, 0, 0, time.UTC)
		weekly := newTech(t, s, "+41790000303", 1)
		if _, err := s.SetWeekly(ctx, weekly.ID, []technicians.WeeklyInput{{Day: "fri", Start: "09:00", End: "17:00"}}); err != nil {
			t.Fatal(err)
		}
		got, err = s.SetDuty(ctx, weekly.ID, technicians.Available)
		if err != nil || got.OnDutyFrom == nil || !got.OnDutyFrom.Equal(time.Date(2026, 12, 4, 8, 0, 0, 0, time.UTC)) {
			t.Fatalf("early for a weekly shift: %v, from %v", err, got.OnDutyFrom)
		}
		now = time.Date(2026, 12, 4, 16, 0, 0, 0, time.UTC)
		if n, err := s.EndShifts(ctx); err != nil || n != 1 {
			t.Fatalf("the weekly shift over: %d off duty, %v", n, err)
		}
	})
}
