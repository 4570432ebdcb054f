package match

import (
	"testing"
	"time"

	"github.com/onsite/onsite/geo"
)

// TestEligibleWithBookingsAndBreaks: a candidate 1 km from the job drives 3
// minutes (25 km/h, roads 1.25× the straight line); the job lasts an hour.
func TestEligibleWithBookingsAndBreaks(t *testing.T) {
	eta := geo.DefaultETA()
	at := func(d time.Duration) time.Time { return now.Add(d) }
	booking := func(dxM float64, start, end time.Duration) Booking {
		return Booking{Place: geo.Offset(zurich, dxM, 0), Start: at(start), End: at(end)}
	}
	asap := job()
	asap.Length = time.Hour
	windowed := func(opens, closes time.Duration) Job {
		j := asap
		j.Opens, j.Deadline = at(opens), at(closes)
		return j
	}
	tests := []struct {
		name     string
		j        Job
		bookings []Booking
		breaks   []Interval
		capacity int
		active   int
		chain    bool
		want     string
	}{
		{name: "no bookings", j: asap, want: ReasonOK},
		{name: "booked three hours ahead", j: asap, bookings: []Booking{booking(0, 3*time.Hour, 4*time.Hour)}, want: ReasonOK},
		{name: "done and there just at the window's start", j: asap, bookings: []Booking{booking(0, 63*time.Minute, 2*time.Hour)}, want: ReasonOK},
		{name: "a minute late for the window", j: asap, bookings: []Booking{booking(0, 62*time.Minute, 2*time.Hour)}, want: ReasonLateForWindow},
		{name: "the drive on makes it late", j: asap, bookings: []Booking{booking(5000, 75*time.Minute, 2*time.Hour)}, want: ReasonLateForWindow},
		{name: "the drive on still fits", j: asap, bookings: []Booking{booking(5000, 78*time.Minute, 2*time.Hour)}, want: ReasonOK},
		{name: "room for both at once", j: asap, bookings: []Booking{booking(0, 30*time.Minute, 2*time.Hour)}, capacity: 2, want: ReasonOK},
		{name: "no room with a job held", j: asap, bookings: []Booking{booking(0, 30*time.Minute, 2*time.Hour)}, capacity: 2, active: 1, want: ReasonLateForWindow},
		{name: "two clashes fill two", j: asap, bookings: []Booking{booking(0, 30*time.Minute, 2*time.Hour), booking(0, 40*time.Minute, 2*time.Hour)}, capacity: 2, want: ReasonLateForWindow},
		{name: "a chained technician keeps bookings too", j: asap, bookings: []Booking{booking(0, 62*time.Minute, 2*time.Hour)}, active: 1, chain: true, want: ReasonLateForWindow},
		{name: "a window after the booking's", j: windowed(3*time.Hour, 4*time.Hour), bookings: []Booking{booking(0, time.Hour, 2*time.Hour)}, want: ReasonOK},
		{name: "a window before the booking's", j: windowed(30*time.Minute, 40*time.Minute), bookings: []Booking{booking(0, 2*time.Hour, 3*time.Hour)}, want: ReasonOK},
		{name: "overlapping windows", j: windowed(90*time.Minute, 150*time.Minute), bookings: []Booking{booking(0, time.Hour, 2*time.Hour)}, want: ReasonLateForWindow},
		{name: "on a break", j: asap, breaks: []Interval{{at(-10 * time.Minute), at(20 * time.Minute)}}, want: ReasonOnBreak},
		{name: "a break over", j: asap, breaks: []Interval{{at(-time.Hour), at(-time.Minute)}}, want: ReasonOK},
		{name: "a break ahead", j: asap, breaks: []Interval{{at(time.Minute), at(time.Hour)}}, want: ReasonOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := cand("t1", 1000, 0)
			c.Bookings, c.Breaks, c.ActiveJobs = tt.bookings, tt.breaks, tt.active
			if tt.capacity > 0 {
				c.Capacity = tt.capacity
			}
			j := tt.j
			if tt.chain {
				j.ChainWithin, c.FreeAt = 30*time.Minute, now // free now, so the drive is still 3 minutes
			}
			if got := EligibleWith(j, c, eta, now); got != tt.want {
				t.Fatalf("EligibleWith = %q, want %q", got, tt.want)
			}
			// Rank and the pool's search agree with the door.
			ranked := Rank(j, []Candidate{c}, eta, now)
			if (len(ranked) == 1) != (tt.want == ReasonOK) {
				t.Fatalf("Rank kept %d", len(ranked))
			}
			p := NewPool(geo.CityResolution)
			p.Put(c)
			if found := p.Search(j, 5, 30, nil, eta, now); (len(found) == 1) != (tt.want == ReasonOK) {
				t.Fatalf("Search found %d", len(found))
			}
		})
	}
}

// TestAroundLeavesOutBreaks: a technician on a break is not counted free for
// the expected wait.
func TestAroundLeavesOutBreaks(t *testing.T) {
	for _, tt := range []struct {
		name   string
		breaks []Interval
		free   int
	}{
		{"working", nil, 1},
		{"on a break", []Interval{{now.Add(-time.Minute), now.Add(time.Minute)}}, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := cand("t1", 500, 0)
			c.Breaks = tt.breaks
			p := NewPool(geo.CityResolution)
			p.Put(c)
			if got := p.Around(zurich, "wifi_setup", 5, now); got.Free != tt.free {
				t.Fatalf("free %d, want %d", got.Free, tt.free)
			}
		})
	}
}
