package match

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/onsite/onsite/geo"
)

var (
	zurich = geo.Point{Lat: 47.3769, Lng: 8.5417}
	now    = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
)

// cand returns an eligible candidate dx, dy metres from Zürich's centre.
func cand(id string, dx, dy float64) Candidate {
	return Candidate{
		TechnicianID: id, Position: geo.Offset(zurich, dx, dy), HasPosition: true,
		Traveller: geo.Traveller{Mode: "car", SpeedKmh: 25}, RadiusKm: 30,
		Certs: map[string]Interval{"wifi_setup": {now.Add(-time.Hour), now.Add(time.Hour)}}, Available: true, Capacity: 1,
	}
}

func job() Job {
	return Job{ID: "r1", Skill: "wifi_setup", Place: zurich, Deadline: now.Add(time.Hour)}
}

func TestEligible(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		edit func(c *Candidate)
		want string
	}{
		{"eligible", func(c *Candidate) {}, ReasonOK},
		{"certification expired", func(c *Candidate) {
			c.Certs = map[string]Interval{"wifi_setup": {now.Add(-time.Hour), now.Add(-time.Minute)}}
		}, ReasonNoCert},
		{"certification not yet valid", func(c *Candidate) {
			c.Certs = map[string]Interval{"wifi_setup": {now.Add(time.Minute), now.Add(time.Hour)}}
		}, ReasonNoCert},
		{"other skill only", func(c *Candidate) {
			c.Certs = map[string]Interval{"modem_install": {now.Add(-time.Hour), now.Add(time.Hour)}}
		}, ReasonNoCert},
		{"off duty", func(c *Candidate) { c.Available = false }, ReasonUnavailable},
		{"at capacity", func(c *Candidate) { c.ActiveJobs = 1 }, ReasonAtCapacity},
		{"under capacity 2", func(c *Candidate) { c.ActiveJobs, c.Capacity = 1, 2 }, ReasonOK},
		{"outside shift", func(c *Candidate) { c.Shifts = []Interval{{now.Add(time.Hour), now.Add(2 * time.Hour)}} }, ReasonOutsideShift},
		{"inside shift", func(c *Candidate) { c.Shifts = []Interval{{now.Add(-time.Hour), now.Add(time.Hour)}} }, ReasonOK},
		{"outside radius", func(c *Candidate) { c.RadiusKm = 1 }, ReasonOutsideRadius},
		{"declined before", func(c *Candidate) { c.Excluded = true }, ReasonExcluded},
		{"deciding on another offer", func(c *Candidate) { c.Deciding = true }, ReasonDeciding},
		{"at capacity, finishing soon, no chaining", func(c *Candidate) { c.ActiveJobs, c.FreeAt = 1, now.Add(5*time.Minute) }, ReasonAtCapacity},
		{"no position", func(c *Candidate) { c.HasPosition = false }, ReasonNoPosition},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := cand("a", 2000, 0)
			tt.edit(&c)
			if got := Eligible(job(), c, now); got != tt.want {
				t.Fatalf("Eligible = %q, want %q", got, tt.want)
			}
		})
	}
}

func ids(s []Scored) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = x.TechnicianID
	}
	return out
}

func TestRankOrder(t *testing.T) {
	t.Parallel()
	withRating := func(c Candidate, r float64) Candidate { c.Rating = r; return c }
	withIdle := func(c Candidate, d time.Duration) Candidate { c.IdleSince = now.Add(-d); return c }
	withRecord := func(c Candidate, sent, accepted int) Candidate { c.OffersSent, c.Accepted = sent, accepted; return c }
	bike := cand("bike", 1500, 0)
	bike.Traveller = geo.Traveller{Mode: "bike", SpeedKmh: 15}
	tests := []struct {
		name  string
		j     Job
		cands []Candidate
		want  []string
	}{
		{"nearest first", job(), []Candidate{cand("far", 8000, 0), cand("near", 1000, 0), cand("mid", 4000, 0)}, []string{"near", "mid", "far"}},
		{"faster beats nearer", job(), []Candidate{bike, cand("car", 1800, 0)}, []string{"car", "bike"}},
		{"same arrival: likelier to accept first", job(),
			[]Candidate{withRecord(cand("flaky", 1000, 0), 20, 2), withRecord(cand("steady", 1100, 0), 20, 19)}, []string{"steady", "flaky"}},
		{"same arrival and record: rating", job(),
			[]Candidate{withRating(cand("ok", 1000, 0), 4.1), withRating(cand("great", 1000, 100), 4.9)}, []string{"great", "ok"}},
		{"all else equal: longest idle", job(),
			[]Candidate{withIdle(cand("busy", 1000, 0), time.Minute), withIdle(cand("waiting", 1000, 0), time.Hour)}, []string{"waiting", "busy"}},
		{"ineligible dropped", job(), []Candidate{func() Candidate { c := cand("off", 500, 0); c.Available = false; return c }(), cand("on", 3000, 0)}, []string{"on"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ids(Rank(tt.j, tt.cands, geo.DefaultETA(), now))
			if len(got) != len(tt.want) {
				t.Fatalf("order %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("order %v, want %v", got, tt.want)
				}
			}
		})
	}
}

func TestChaining(t *testing.T) {
	t.Parallel()
	j := job()
	j.ChainWithin = 15 * time.Minute
	finishing := cand("finishing", 500, 0)
	finishing.ActiveJobs, finishing.FreeAt = 1, now.Add(5*time.Minute)
	late := cand("late", 300, 0)
	late.ActiveJobs, late.FreeAt = 1, now.Add(40*time.Minute)
	queued := cand("queued", 300, 0)
	queued.ActiveJobs, queued.FreeAt, queued.Queued = 1, now.Add(2*time.Minute), true
	free := cand("free", 6000, 0) // 7.5 km of road: 18 minutes
	got := Rank(j, []Candidate{free, finishing, late, queued}, geo.DefaultETA(), now)
	if ids := ids(got); len(ids) != 2 || ids[0] != "finishing" || ids[1] != "free" {
		t.Fatalf("order %v, want [finishing free]", ids)
	}
	if eta := got[0].ETA; eta < 5*time.Minute || eta > 7*time.Minute {
		t.Fatalf("chained ETA %v, want the 5 minutes left plus the short drive", eta)
	}
}

func TestAtRisk(t *testing.T) {
	t.Parallel()
	eta := geo.DefaultETA()
	j := job()
	near := Rank(j, []Candidate{cand("near", 2000, 0)}, eta, now)
	far := Rank(j, []Candidate{cand("far", 25000, 0)}, eta, now) // 31 km of road at 25 km/h: 75 min
	if AtRisk(j, near) {
		t.Error("a technician 2 km away is not at risk")
	}
	if !AtRisk(j, far) {
		t.Error("a technician 75 minutes away misses a 60-minute deadline")
	}
	if !AtRisk(j, nil) {
		t.Error("no candidate at all is at risk")
	}
}

func TestPlanOffers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		strategy  string
		timeLeft  time.Duration
		available int
		want      OfferPlan
	}{
		{"sequential with time", Sequential, 55 * time.Minute, 10, OfferPlan{1, 30 * time.Second}},
		{"wave with time", Wave, 55 * time.Minute, 10, OfferPlan{3, 30 * time.Second}},
		{"wave limited by candidates", Wave, 55 * time.Minute, 2, OfferPlan{2, 30 * time.Second}},
		{"sequential near deadline widens", Sequential, 10 * time.Minute, 10, OfferPlan{3, 30 * time.Second}},
		{"close to deadline shortens", Sequential, 5 * time.Minute, 10, OfferPlan{3, 15 * time.Second}},
		{"past deadline", Wave, -time.Minute, 10, OfferPlan{3, 15 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := PlanOffers(tt.strategy, 3, 30*time.Second, tt.timeLeft, tt.available); got != tt.want {
				t.Fatalf("plan %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestPoolSearchMatchesBruteForce checks the ring search against ranking
// every technician, uniform and clustered, near cell edges included.
func TestPoolSearchMatchesBruteForce(t *testing.T) {
	t.Parallel()
	// Up to sparseMembers technicians of a skill, the search looks at
	// buckets instead of walking rings: both ways are checked.
	for _, tc := range []struct {
		layout string
		res, n int
	}{{"uniform", 8, 3000}, {"clustered", 8, 3000}, {"uniform", 7, 3000}, {"clustered", 7, 3000},
		{"uniform", 8, 150}, {"clustered", 8, 200}, {"uniform", 7, 120}} {
		layout := tc.layout
		t.Run(fmt.Sprintf("%s/res%d/%d", layout, tc.res, tc.n), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			pool := NewPool(tc.res)
			var all []Candidate
			for i := range tc.n {
				var dx, dy float64
				if layout == "uniform" || i%3 == 0 {
					dx, dy = (rng.Float64()*2-1)*12000, (rng.Float64()*2-1)*12000
				} else {
					dx, dy = float64(i%4)*3000-4500+rng.NormFloat64()*400, float64(i%5)*1000+rng.NormFloat64()*400
				}
				c := cand(string(rune('A'+i%26))+itoa(i), dx, dy)
				c.Available = rng.Float64() < 0.6
				if rng.Float64() < 0.3 {
					c.Traveller = geo.Traveller{Mode: "bike", SpeedKmh: 15}
				}
				c.Rating = float64(rng.IntN(5))
				pool.Put(c)
				all = append(all, c)
			}
			eta := geo.DefaultETA()
			mismatches := 0
			for q := range 300 {
				place := geo.Offset(zurich, (rng.Float64()*2-1)*10000, (rng.Float64()*2-1)*10000)
				j := Job{ID: itoa(q), Skill: "wifi_setup", Place: place, Deadline: now.Add(time.Hour)}
				got := ids(pool.Search(j, 10, 40, nil, eta, now))
				want := ids(Rank(j, all, eta, now))
				if len(want) > 10 {
					want = want[:10]
				}
				if len(want) < 10 {
					t.Fatalf("query %d: only %d eligible, the test would prove little", q, len(want))
				}
				if len(got) != len(want) {
					mismatches++
					continue
				}
				for i := range got {
					if got[i] != want[i] {
						mismatches++
						break
					}
				}
			}
			if mismatches != 0 {
				t.Fatalf("%d of 300 queries differ from brute force", mismatches)
			}
		})
	}
}

func itoa(i int) string {
	const digits = "0123456789"
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{digits[i%10]}, b...)
	}
	return string(b)
}

func TestPoolMove(t *testing.T) {
	t.Parallel()
	pool := NewPool(geo.CityResolution)
	pool.Put(cand("a", 20000, 0))
	j := job()
	if got := pool.Search(j, 5, 10, nil, geo.DefaultETA(), now); len(got) != 0 {
		t.Fatalf("far technician found: %v", ids(got))
	}
	pool.Move("a", geo.Offset(zurich, 500, 0))
	if got := ids(pool.Search(j, 5, 10, nil, geo.DefaultETA(), now)); len(got) != 1 || got[0] != "a" {
		t.Fatalf("moved technician not found: %v", got)
	}
	if got := pool.Search(j, 5, 10, func(id string) bool { return id == "a" }, geo.DefaultETA(), now); len(got) != 0 {
		t.Fatal("excluded technician found")
	}
}

func StraightLineETAForTest() geo.StraightLine { return geo.DefaultETA() }

func offset(p geo.Point, dx float64) geo.Point { return geo.Offset(p, dx, 0) }

// TestSparseSearchEqualsWalk: looking at a few technicians' buckets gives
// what walking the rings gives, at every reach (the ring limit included).
func TestSparseSearchEqualsWalk(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 4))
	sparse, walk := NewPool(geo.CityResolution), NewPool(geo.CityResolution)
	walk.walkOnly = true
	for i := range 200 {
		c := cand("s"+itoa(i), (rng.Float64()*2-1)*15000, (rng.Float64()*2-1)*15000)
		c.Available = rng.Float64() < 0.7
		c.Rating = float64(rng.IntN(5))
		sparse.Put(c)
		walk.Put(c)
	}
	eta := geo.DefaultETA()
	for q := range 400 {
		place := geo.Offset(zurich, (rng.Float64()*2-1)*14000, (rng.Float64()*2-1)*14000)
		j := Job{ID: itoa(q), Skill: "wifi_setup", Place: place, Deadline: now.Add(time.Hour)}
		reach := []float64{0.5, 1, 2, 3, 5, 8, 13, 40}[q%8]
		got, want := ids(sparse.Search(j, 5, reach, nil, eta, now)), ids(walk.Search(j, 5, reach, nil, eta, now))
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("query %d, reach %.1f km: sparse %v, walk %v", q, reach, got, want)
		}
	}
}

// TestPoolSearchReachMatchesBruteForce: with a reach that binds, the search
// gives what ranking everyone whose cell lies within MaxRing rings of the
// job's cell gives, at both resolutions and for dense and sparse skills.
func TestPoolSearchReachMatchesBruteForce(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ res, n int }{{8, 4000}, {7, 4000}, {8, 200}, {7, 150}} {
		t.Run(fmt.Sprintf("res%d/%d", tc.res, tc.n), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(5, 6))
			pool := NewPool(tc.res)
			var all []Candidate
			for i := range tc.n {
				c := cand("r"+itoa(i), (rng.Float64()*2-1)*15000, (rng.Float64()*2-1)*15000)
				c.Available = rng.Float64() < 0.6
				if rng.Float64() < 0.3 {
					c.Traveller = geo.Traveller{Mode: "bike", SpeedKmh: 15}
				}
				c.Rating = float64(rng.IntN(5))
				pool.Put(c)
				all = append(all, c)
			}
			eta := geo.DefaultETA()
			for q := range 300 {
				place := geo.Offset(zurich, (rng.Float64()*2-1)*14000, (rng.Float64()*2-1)*14000)
				j := Job{ID: itoa(q), Skill: "wifi_setup", Place: place, Deadline: now.Add(time.Hour)}
				reach := []float64{0.3, 0.8, 1.5, 2.5, 4, 7, 12}[q%7]
				want := []int{1, 3, 10, 40}[q%4]
				origin, maxK := geo.CellOf(place, tc.res), geo.MaxRing(tc.res, reach)
				var in []Candidate
				for _, c := range all {
					if k, ok := geo.GridDistance(origin, geo.CellOf(c.Position, tc.res)); ok && k <= maxK {
						in = append(in, c)
					}
				}
				wantIDs := ids(Rank(j, in, eta, now))
				if len(wantIDs) > want {
					wantIDs = wantIDs[:want]
				}
				// Every other query hides geo.Reach: the search bisects.
				var model geo.ETA = eta
				if q%2 == 1 {
					model = struct{ geo.ETA }{eta}
				}
				got := ids(pool.Search(j, want, reach, nil, model, now))
				if fmt.Sprint(got) != fmt.Sprint(wantIDs) {
					t.Fatalf("query %d, reach %.1f km, want %d: search %v, brute force %v", q, reach, want, got, wantIDs)
				}
			}
		})
	}
}

// TestPoolUpdateTravel: a technician made faster by Update is found where
// their new speed brings them first (the search's bounds follow the speed).
func TestPoolUpdateTravel(t *testing.T) {
	t.Parallel()
	pool := NewPool(geo.CityResolution)
	for i := range 12 {
		pool.Put(cand("near"+itoa(i), 2000, float64(i)*10))
	}
	pool.Put(cand("fast", 6000, 0))
	pool.Update("fast", func(c *Candidate) { c.Traveller.SpeedKmh = 200 })
	if got := ids(pool.Search(job(), 1, 40, nil, geo.DefaultETA(), now)); len(got) != 1 || got[0] != "fast" {
		t.Fatalf("best %v, want [fast]", got)
	}
}

// TestPrefer: a follow-up's first technician is asked first when they are
// eligible and make the deadline, and not otherwise.
func TestPrefer(t *testing.T) {
	t.Parallel()
	eta := StraightLineETAForTest()
	near, mid := cand("near", 500, 0), cand("mid", 3000, 0)
	far := cand("far", 27000, 0) // inside the radius, over an hour away at 25 km/h
	unqualified := cand("nocert", 1000, 0)
	unqualified.Certs = nil
	all := []Candidate{near, mid, far, unqualified}
	tests := []struct {
		name   string
		prefer string
		first  string
	}{
		{"none", "", "near"},
		{"eligible and in time", "mid", "mid"},
		{"already first", "near", "near"},
		{"too far for the deadline", "far", "near"},
		{"not eligible", "nocert", "near"},
		{"unknown", "ghost", "near"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := job()
			j.Prefer = tt.prefer
			ranked := Rank(j, all, eta, now)
			if len(ranked) != 3 {
				t.Fatalf("%d eligible, want near, mid and far", len(ranked))
			}
			got := Prefer(j, ranked)
			if got[0].TechnicianID != tt.first || len(got) != len(ranked) {
				t.Fatalf("first %s of %d, want %s", got[0].TechnicianID, len(got), tt.first)
			}
			if ranked[0].TechnicianID != "near" {
				t.Fatal("Prefer changed its input")
			}
		})
	}
	// In the batch, the preferred technician wins the pair when in time.
	j := job()
	j.Prefer = "mid"
	pairs := AssignBatch([]Job{j}, [][]Scored{Rank(j, all, eta, now)}, now, BatchPolicy{})
	if len(pairs) != 1 || pairs[0].TechnicianID != "mid" {
		t.Fatalf("batch pairs %+v", pairs)
	}
	j.Prefer = "far"
	pairs = AssignBatch([]Job{j}, [][]Scored{Rank(j, all, eta, now)}, now, BatchPolicy{})
	if len(pairs) != 1 || pairs[0].TechnicianID != "near" {
		t.Fatalf("batch pairs %+v (far misses the deadline)", pairs)
	}
}
