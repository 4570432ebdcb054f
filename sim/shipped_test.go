package sim

import (
	"crypto/sha256"
	"fmt"
	"testing"
)

// dayPrint is a digest of everything drawn for a day: technicians and
// requests.
func dayPrint(d *day) string {
	h := sha256.New()
	for _, t := range d.techs {
		fmt.Fprintf(h, "%s %.7f %.7f %s %.1f %v %s %s %d\n", t.id, t.home.Lat, t.home.Lng, t.mode, t.speed, t.skills, t.shiftStart, t.shiftEnd, t.capacity)
	}
	for _, r := range d.requests {
		fmt.Fprintf(h, "%s %s %.7f %.7f %s %v %s %s %s\n", r.id, r.created, r.place.Lat, r.place.Lng, r.skill, r.asap, r.windowStart, r.windowEnd, r.service)
	}
	return fmt.Sprintf("%x", h.Sum(nil))[:16]
}

// TestShippedDaysUnchanged pins the shipped city and regional days: what is
// drawn for a seed, and what each strategy reaches on the first two hours.
// The figures were taken before the scenario format grew (skill ranges,
// towns, regions, minute shifts, answers by hour, off-duty technicians);
// a scenario that uses none of it must give the same day and figures.
func TestShippedDaysUnchanged(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file  string
		print string
		runs  string // per variant: on time/ASAP, unfulfilled, offers
	}{
		{"scenarios/city.yaml", "1362b96fdf5e673d", "sequential 194/196 0 346; wave 193/196 0 705; batch 195/196 1 381; batch+chain 194/196 2 512; "},
		{"scenarios/regional.yaml", "bd8b3b9f4ec45e89", "sequential 50/54 4 138; wave 50/54 4 239; batch 51/54 5 133; batch+chain 50/54 6 171; "},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			sc, err := Load(tt.file)
			if err != nil {
				t.Fatal(err)
			}
			if got := dayPrint(newDay(sc, 1)); got != tt.print {
				t.Errorf("day drawn for seed 1: %s, want %s", got, tt.print)
			}
			sc.Hours = 2
			sc.Demand.PerHour = sc.Demand.PerHour[:2]
			variants, err := Variants(sc, "all")
			if err != nil {
				t.Fatal(err)
			}
			runs := ""
			for _, v := range variants {
				r := runDay(newDay(sc, 1), v, nil)
				runs += fmt.Sprintf("%s %d/%d %d %d; ", v.Name, r.OnSiteInTime, r.ASAP, r.Unfulfilled, r.Offers)
			}
			if runs != tt.runs {
				t.Errorf("runs of seed 1, two hours:\n got %s\nwant %s", runs, tt.runs)
			}
		})
	}
}
