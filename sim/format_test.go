package sim

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/onsite/onsite/geo"
)

// crowd is a scenario of many technicians and an hour of requests, for the
// tests of what the format draws. edit changes its text.
func crowd(t *testing.T, edit func(string) string) Scenario {
	t.Helper()
	raw := `
name: crowd
seeds: 1
start_hour: 8
hours: 1
city: {center: {lat: 47.3769, lng: 8.5417}, radius_km: 10}
technicians:
  count: 2000
  skills: {a: 0.9, b: 0.9, c: 0.9, d: 0.9}
  shifts: [{start_hour: 8, end_hour: 17, share: 1}]
  travel: {car: {share: 1, speed_kmh: 30}}
demand:
  per_hour: [200]
  skills: {a: 1}
behaviour:
  service_minutes: {default: 60}
`
	if edit != nil {
		raw = edit(raw)
	}
	sc, err := Parse([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func replace(old, new string) func(string) string {
	return func(s string) string { return strings.Replace(s, old, new, 1) }
}

func TestFormatErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, old, new, want string
	}{
		{"max below min", "count: 2000\n", "count: 2000\n  min_skills: 2\n  max_skills: 1\n", "technicians.max_skills"},
		{"max above skills", "count: 2000\n", "count: 2000\n  max_skills: 5\n", "technicians.max_skills"},
		{"expired share", "count: 2000\n", "count: 2000\n  expired_share: 1.2\n", "technicians.expired_share"},
		{"town without radius", "count: 2000\n", "count: 2000\n  towns: [{center: {lat: 47.3, lng: 8.5}, weight: 1}]\n", "technicians.towns[0]"},
		{"uniform share without towns", "count: 2000\n", "count: 2000\n  home_uniform_share: 0.5\n", "technicians.home_uniform_share"},
		{"two shapes", "radius_km: 10}", "radius_km: 10, polygon: [{lat: 47, lng: 8}, {lat: 47.1, lng: 8}, {lat: 47, lng: 8.1}]}", "exactly one of"},
		{"rectangle upside down", "{center: {lat: 47.3769, lng: 8.5417}, radius_km: 10}",
			"{rectangle: {south_west: {lat: 47.5, lng: 8.6}, north_east: {lat: 47.3, lng: 8.4}}}", "south_west must lie south and west"},
		{"rectangle with a centre", "radius_km: 10}", "rectangle: {south_west: {lat: 47.3, lng: 8.4}, north_east: {lat: 47.5, lng: 8.6}}}", "city.center"},
		{"polygon of two", "{center: {lat: 47.3769, lng: 8.5417}, radius_km: 10}", "{polygon: [{lat: 47, lng: 8}, {lat: 47.1, lng: 8}]}", "at least 3 vertices"},
		{"flat polygon", "{center: {lat: 47.3769, lng: 8.5417}, radius_km: 10}",
			"{polygon: [{lat: 47, lng: 8}, {lat: 47.1, lng: 8}, {lat: 47.2, lng: 8}]}", "encloses no area"},
		{"polygon vertex", "{center: {lat: 47.3769, lng: 8.5417}, radius_km: 10}",
			"{polygon: [{lat: 47, lng: 8}, {lat: 97.1, lng: 8}, {lat: 47, lng: 8.2}]}", "city.polygon[1]"},
		{"shift minute", "{start_hour: 8, end_hour: 17, share: 1}", `{start: "08:61", end: "17:00", share: 1}`, "not a time of day"},
		{"shift both ways", "{start_hour: 8, end_hour: 17, share: 1}", `{start_hour: 8, start: "08:30", end: "17:00", share: 1}`, "not both"},
		{"shift backwards", "{start_hour: 8, end_hour: 17, share: 1}", `{start: "17:30", end: "08:15", share: 1}`, "technicians.shifts[0]"},
		{"by hour without to", "{default: 60}\n", "{default: 60}\n  by_hour: [{from: \"18:00\", accept_probability: 0.5}]\n", "behaviour.by_hour[0]"},
		{"by hour overlap", "{default: 60}\n",
			"{default: 60}\n  by_hour: [{from: \"18:00\", to: \"20:00\"}, {from: \"19:00\", to: \"21:00\"}]\n", "overlaps behaviour.by_hour[0]"},
		{"by hour share", "{default: 60}\n", "{default: 60}\n  by_hour: [{from: \"18:00\", to: \"20:00\", no_response_share: 2}]\n", "behaviour.by_hour[0].no_response_share"},
		{"off duty without hours", "count: 2000\n", "count: 2000\n  off_duty: {count: 5, come_online: 0.5, delay: 10m}\n", "technicians.off_duty.hours"},
		{"off duty probability", "count: 2000\n", "count: 2000\n  off_duty: {count: 5, come_online: 5, delay: 10m, hours: 3}\n", "technicians.off_duty.come_online"},
		{"surge outside the day", "skills: {a: 1}\n", "skills: {a: 1}\n  surges: [{from: \"10:00\", to: \"11:00\", center: {lat: 47.3, lng: 8.5}, radius_km: 2, per_hour: 100}]\n", "demand.surges[0]"},
		{"surge without rate", "skills: {a: 1}\n", "skills: {a: 1}\n  surges: [{from: \"08:00\", to: \"09:00\", center: {lat: 47.3, lng: 8.5}, radius_km: 2}]\n", "demand.surges[0].per_hour"},
		{"surge skill", "skills: {a: 1}\n", "skills: {a: 1}\n  surges: [{from: \"08:00\", to: \"09:00\", center: {lat: 47.3, lng: 8.5}, radius_km: 2, per_hour: 9, skills: {z: 1}}]\n", "demand.surges[0].skills.z"},
		{"two-line description", "name: crowd\n", "name: crowd\ndescription: \"one\\ntwo\"\n", "description"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			raw := `
name: crowd
start_hour: 8
hours: 1
city: {center: {lat: 47.3769, lng: 8.5417}, radius_km: 10}
technicians:
  count: 2000
  skills: {a: 0.9, b: 0.9, c: 0.9, d: 0.9}
  shifts: [{start_hour: 8, end_hour: 17, share: 1}]
  travel: {car: {share: 1, speed_kmh: 30}}
demand:
  per_hour: [200]
  skills: {a: 1}
behaviour:
  service_minutes: {default: 60}
`
			if !strings.Contains(raw, tt.old) {
				t.Fatalf("%q not in the scenario", tt.old)
			}
			_, err := Parse([]byte(strings.Replace(raw, tt.old, tt.new, 1)))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one naming %q", err, tt.want)
			}
		})
	}
}

func TestSkillRangeAndExpiry(t *testing.T) {
	t.Parallel()
	sc := crowd(t, replace("count: 2000\n", "count: 2000\n  min_skills: 2\n  max_skills: 3\n  expired_share: 0.25\n"))
	d := newDay(sc, 3)
	held, expired := 0, 0
	for _, tech := range d.techs {
		n := len(tech.skills) + len(tech.expired)
		if n < 2 || n > 3 {
			t.Fatalf("%s holds %d certifications, want 2 to 3", tech.id, n)
		}
		held += n
		expired += len(tech.expired)
		for _, s := range tech.expired {
			if contains(tech.skills, s) {
				t.Fatalf("%s: %s both current and expired", tech.id, s)
			}
		}
	}
	if share := float64(expired) / float64(held); math.Abs(share-0.25) > 0.03 {
		t.Fatalf("expired share %.3f, want 0.25", share)
	}
	// The dispatch core must refuse an expired certification.
	i := slices.IndexFunc(d.techs, func(t *simTech) bool { return len(t.expired) > 0 })
	ts := &techState{simTech: d.techs[i], shiftStart: d.techs[i].shiftStart, shiftEnd: d.techs[i].shiftEnd}
	c := (&run{d: d}).candidate(ts)
	at := dayStart.Add(9 * time.Hour)
	for _, s := range ts.expired {
		if iv := c.Certs[s]; !iv.End.Before(at) {
			t.Fatalf("expired %s qualifies until %v", s, iv.End)
		}
	}
}

func TestHomesAroundTowns(t *testing.T) {
	t.Parallel()
	town := geo.Point{Lat: 47.40, Lng: 8.50}
	sc := crowd(t, replace("count: 2000\n", "count: 2000\n  towns: [{center: {lat: 47.40, lng: 8.50}, radius_km: 1, weight: 1}]\n  home_uniform_share: 0.2\n"))
	near := 0
	for _, tech := range newDay(sc, 1).techs {
		if geo.DistanceM(tech.home, town) < 2000 { // 4 σ
			near++
		}
	}
	// 80 % around the town, and a few of the uniform ones fall near it.
	if share := float64(near) / 2000; share < 0.77 || share > 0.85 {
		t.Fatalf("%.3f of homes within 2 km of the town, want about 0.8", share)
	}
}

func TestRegions(t *testing.T) {
	t.Parallel()
	// An L-shaped polygon: the square 47.0–47.2 × 8.0–8.2 without its
	// north-east quarter.
	poly := "{polygon: [{lat: 47.0, lng: 8.0}, {lat: 47.0, lng: 8.2}, {lat: 47.1, lng: 8.2}, {lat: 47.1, lng: 8.1}, {lat: 47.2, lng: 8.1}, {lat: 47.2, lng: 8.0}]}"
	rect := "{rectangle: {south_west: {lat: 46.9, lng: 7.5}, north_east: {lat: 47.0, lng: 7.9}}}"
	tests := []struct {
		name   string
		region string
		inside func(geo.Point) bool
	}{
		{"polygon", poly, func(p geo.Point) bool {
			in := p.Lat >= 47.0 && p.Lat <= 47.2 && p.Lng >= 8.0 && p.Lng <= 8.2
			return in && !(p.Lat > 47.1 && p.Lng > 8.1)
		}},
		{"rectangle", rect, func(p geo.Point) bool { return p.Lat >= 46.9 && p.Lat <= 47.0 && p.Lng >= 7.5 && p.Lng <= 7.9 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sc := crowd(t, replace("{center: {lat: 47.3769, lng: 8.5417}, radius_km: 10}", tt.region))
			d := newDay(sc, 1)
			for _, tech := range d.techs {
				if !tt.inside(tech.home) {
					t.Fatalf("home %v outside the %s", tech.home, tt.name)
				}
			}
			for _, q := range d.requests {
				if !tt.inside(q.place) {
					t.Fatalf("request at %v outside the %s", q.place, tt.name)
				}
			}
			if sc.City.RadiusKm <= 0 {
				t.Fatal("no radius derived for the region")
			}
		})
	}
	// The L has no point in its missing quarter, but its other three hold
	// about a third each.
	sc := crowd(t, replace("{center: {lat: 47.3769, lng: 8.5417}, radius_km: 10}", poly))
	west := 0
	for _, tech := range newDay(sc, 2).techs {
		if tech.home.Lat > 47.1 {
			west++
		}
	}
	if share := float64(west) / 2000; math.Abs(share-1.0/3) > 0.04 {
		t.Fatalf("%.3f of homes in the north-west quarter, want a third", share)
	}
}

func TestShiftsOnAnyMinute(t *testing.T) {
	t.Parallel()
	sc := crowd(t, replace("{start_hour: 8, end_hour: 17, share: 1}", `{start: "07:45", end: "21:00", share: 0.5}, {start: "16:30", end: "25:15", share: 0.5}`))
	seen := map[string]bool{}
	for _, tech := range newDay(sc, 1).techs {
		seen[tech.shiftStart.Format("02 15:04")+"–"+tech.shiftEnd.Format("02 15:04")] = true
	}
	want := map[string]bool{"05 07:45–05 21:00": true, "05 16:30–06 01:15": true}
	if len(seen) != 2 || !seen["05 07:45–05 21:00"] || !seen["05 16:30–06 01:15"] {
		t.Fatalf("shifts %v, want %v", seen, want)
	}
}

func TestAnswersByHour(t *testing.T) {
	t.Parallel()
	sc := crowd(t, replace("{default: 60}\n", "{default: 60}\n  accept_probability: 0.9\n  no_response_share: 0\n  by_hour: [{from: \"08:30\", to: \"09:00\", accept_probability: 0.2, no_response_share: 0.5, response_median: 10m}]\n"))
	d := newDay(sc, 1)
	type tally struct{ n, responds, accepts int }
	var early, late tally
	for _, q := range d.requests {
		at := &early
		if q.created.Sub(dayStart) >= 8*time.Hour+30*time.Minute {
			at = &late
		}
		for _, tech := range d.techs[:50] {
			a := d.answer(tech, q)
			at.n++
			if a.responds {
				at.responds++
			}
			if a.accepts {
				at.accepts++
			}
		}
	}
	check := func(name string, got, want float64) {
		if math.Abs(got-want) > 0.03 {
			t.Errorf("%s: %.3f, want %.2f", name, got, want)
		}
	}
	check("responding before 08:30", float64(early.responds)/float64(early.n), 1)
	check("accepting before 08:30", float64(early.accepts)/float64(early.n), 0.9)
	check("responding from 08:30", float64(late.responds)/float64(late.n), 0.5)
	check("accepting from 08:30", float64(late.accepts)/float64(late.n), 0.2)
	if b := d.behaviourAt(dayStart.Add(8*time.Hour + 45*time.Minute)); b.ResponseMedian.Duration != 10*time.Minute {
		t.Errorf("answer median at 08:45: %v, want 10m", b.ResponseMedian)
	}
}

// TestOffDuty: off-duty technicians are drawn beside the others without
// changing them; a day whose only technician is off duty is served only by
// the run that asks them to come online, and only when they say yes.
func TestOffDuty(t *testing.T) {
	t.Parallel()
	base := crowd(t, nil)
	with := crowd(t, replace("count: 2000\n", "count: 2000\n  off_duty: {count: 30, come_online: 0.5, delay: 15m, hours: 3}\n"))
	a, b := newDay(base, 4), newDay(with, 4)
	if dayPrint(a) != dayPrint(b) {
		t.Fatal("adding off-duty technicians changed the rest of the day")
	}
	if len(b.offDuty) != 30 || b.offDuty[0].id != "t02000" || !b.offDuty[0].shiftEnd.IsZero() {
		t.Fatalf("off-duty technicians: %d, first %+v", len(b.offDuty), b.offDuty[0])
	}

	// One request at 08:10 at the centre; the only technician on shift is
	// on shift only from 17:00; one off-duty technician at the centre.
	raw := oneTechnician(17, "30s", "at_minute: 10, place: {lat: 47.3769, lng: 8.5417}")
	raw = strings.Replace(raw, "  count: 1\n", "  count: 1\n  off_duty: {count: 1, come_online: COME, delay: 10m, hours: 2}\n", 1)
	raw = strings.Replace(raw, "offer_timeout: 2m", "offer_timeout: 2m\n  batch_window: 15s", 1)
	for _, tt := range []struct {
		come          string
		calls, online int
		onTime        int
	}{
		{"1", 1, 1, 1},
		{"0", 1, 0, 0},
	} {
		sc, err := Parse([]byte(strings.Replace(raw, "COME", tt.come, 1)))
		if err != nil {
			t.Fatal(err)
		}
		vs, err := Variants(sc, "batch")
		if err != nil {
			t.Fatal(err)
		}
		if len(vs) != 2 || vs[1].Name != "batch+call" {
			t.Fatalf("variants %+v", vs)
		}
		plain := runDay(newDay(sc, 1), vs[0], nil)
		call := runDay(newDay(sc, 1), vs[1], nil)
		if plain.OnSiteInTime != 0 || plain.CalledOut != 0 {
			t.Fatalf("without call-outs: %+v", plain)
		}
		if call.CalledOut != tt.calls || call.CameOnline != tt.online || call.OnSiteInTime != tt.onTime {
			t.Fatalf("come_online %s: called %d, came %d, on time %d; want %d, %d, %d",
				tt.come, call.CalledOut, call.CameOnline, call.OnSiteInTime, tt.calls, tt.online, tt.onTime)
		}
	}
}

func TestSurge(t *testing.T) {
	t.Parallel()
	center := geo.Point{Lat: 47.39, Lng: 8.52}
	sc := crowd(t, replace("skills: {a: 1}\n", "skills: {a: 1}\n  asap_share: 0\n  surges: [{from: \"08:20\", to: \"08:50\", center: {lat: 47.39, lng: 8.52}, radius_km: 1.5, per_hour: 1000, skills: {b: 1}}]\n"))
	d := newDay(sc, 5)
	n := 0
	for i, q := range d.requests {
		if i > 0 && q.created.Before(d.requests[i-1].created) || q.idx != i {
			t.Fatalf("requests out of order or misnumbered at %d", i)
		}
		if q.skill != "b" {
			continue
		}
		n++
		since := q.created.Sub(dayStart)
		if !q.asap || since < 8*time.Hour+20*time.Minute || since >= 8*time.Hour+50*time.Minute || geo.DistanceM(q.place, center) > 1500 {
			t.Fatalf("surge request %+v outside its window or area", q)
		}
	}
	if n < 440 || n > 560 { // Poisson, mean 500, σ 22
		t.Fatalf("%d surge requests, want about 500", n)
	}
	if rest := len(d.requests) - n; rest < 150 || rest > 250 {
		t.Fatalf("%d other requests, want about 200", rest)
	}
}
