package technicians_test

import (
	"context"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/onsite/onsite/internal/db"
	"github.com/onsite/onsite/internal/dbtest"
	"github.com/onsite/onsite/internal/errs"
	"github.com/onsite/onsite/technicians"
)

// TestUpdate changes settings after onboarding; bad input answers an
// invalid or conflict error and leaves the row exactly as it was.
func TestUpdate(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		now := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
		clock := func() time.Time { return now }
		s := technicians.NewService(d, clock)
		tech := newTech(t, s, "+41790000101", 2)
		if _, err := s.SetDuty(ctx, tech.ID, technicians.Available); err != nil {
			t.Fatal(err)
		}
		if err := d.Tx(ctx, func(tx *gorm.DB) error { return technicians.Reserve(tx, tech.ID, now, false) }); err != nil {
			t.Fatal(err)
		}
		bad := []struct {
			name  string
			ch    technicians.Changes
			code  errs.Code
			field string
		}{
			{"nothing", technicians.Changes{}, errs.Invalid, ""},
			{"capacity zero", technicians.Changes{Capacity: ptr(0)}, errs.Invalid, "capacity"},
			{"capacity eleven", technicians.Changes{Capacity: ptr(11)}, errs.Invalid, "capacity"},
			{"radius zero", technicians.Changes{RadiusKm: ptr(0.0)}, errs.Invalid, "radius_km"},
			{"radius too far", technicians.Changes{RadiusKm: ptr(501.0)}, errs.Invalid, "radius_km"},
			{"speed negative", technicians.Changes{SpeedKmh: ptr(-1.0)}, errs.Invalid, "speed_kmh"},
			{"rocket", technicians.Changes{TravelMode: ptr("rocket")}, errs.Invalid, "travel_mode"},
			{"klingon", technicians.Changes{Locale: ptr("tlh")}, errs.Invalid, "locale"},
			{"a good field and a bad one", technicians.Changes{Locale: ptr("de"), Capacity: ptr(0)}, errs.Invalid, "capacity"},
		}
		before, err := s.Get(ctx, tech.ID)
		if err != nil {
			t.Fatal(err)
		}
		now = now.Add(time.Minute)
		for _, tt := range bad {
			t.Run(tt.name, func(t *testing.T) {
				_, err := s.Update(ctx, tech.ID, tt.ch)
				e, ok := errs.As(err)
				if !ok || e.Code != tt.code || e.Field != tt.field {
					t.Fatalf("error %v, want %s on %q", err, tt.code, tt.field)
				}
			})
		}
		if _, err := s.Update(ctx, "nope", technicians.Changes{Locale: ptr("de")}); errs.CodeOf(err) != errs.NotFound {
			t.Fatalf("unknown technician: %v", err)
		}
		// One job held: capacity 1 is fine (and makes them busy), 0 is not
		// allowed anyway; with two jobs held capacity 1 is a conflict.
		if err := d.Tx(ctx, func(tx *gorm.DB) error { return technicians.Reserve(tx, tech.ID, now, false) }); err != nil {
			t.Fatal(err)
		}
		before, _ = s.Get(ctx, tech.ID)
		_, err = s.Update(ctx, tech.ID, technicians.Changes{Capacity: ptr(1), Locale: ptr("fr")})
		if e, ok := errs.As(err); !ok || e.Code != errs.Conflict || e.Reason != "capacity_below_jobs" {
			t.Fatalf("capacity below jobs: %v", err)
		}
		after, _ := s.Get(ctx, tech.ID)
		if after.UpdatedAt != before.UpdatedAt || after.Locale != before.Locale || after.Capacity != 2 {
			t.Fatalf("a refused change wrote: %+v", after)
		}
		if err := d.Tx(ctx, func(tx *gorm.DB) error { return technicians.Release(tx, tech.ID, now) }); err != nil {
			t.Fatal(err)
		}

		good := []struct {
			name string
			ch   technicians.Changes
			want func(technicians.Technician) bool
		}{
			{"capacity fills with the job held: busy", technicians.Changes{Capacity: ptr(1)}, func(x technicians.Technician) bool {
				return x.Capacity == 1 && x.DutyStatus == technicians.Busy
			}},
			{"capacity above the job: available again", technicians.Changes{Capacity: ptr(3)}, func(x technicians.Technician) bool {
				return x.Capacity == 3 && x.DutyStatus == technicians.Available
			}},
			{"bike takes the bike's speed", technicians.Changes{TravelMode: ptr("bike")}, func(x technicians.Technician) bool {
				return x.TravelMode == "bike" && x.SpeedKmh == 15
			}},
			{"foot at a given speed", technicians.Changes{TravelMode: ptr("foot"), SpeedKmh: ptr(6.5)}, func(x technicians.Technician) bool {
				return x.TravelMode == "foot" && x.SpeedKmh == 6.5
			}},
			{"radius and locale", technicians.Changes{RadiusKm: ptr(12.5), Locale: ptr("it")}, func(x technicians.Technician) bool {
				return x.RadiusKm == 12.5 && x.Locale == "it" && x.TravelMode == "foot"
			}},
		}
		for _, tt := range good {
			t.Run(tt.name, func(t *testing.T) {
				got, err := s.Update(ctx, tech.ID, tt.ch)
				if err != nil {
					t.Fatal(err)
				}
				if !tt.want(got) {
					t.Fatalf("after update: %+v", got)
				}
			})
		}
		// Off duty stays off duty whatever the capacity.
		if _, err := s.SetDuty(ctx, tech.ID, technicians.Offline); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Update(ctx, tech.ID, technicians.Changes{Capacity: ptr(1)}); err != nil || got.DutyStatus != technicians.Offline {
			t.Fatalf("off duty after a capacity change: %v %+v", err, got)
		}
	})
}
