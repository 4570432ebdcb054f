package dispatch_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/tidwall/rtree"
	"gorm.io/gorm/clause"

	"github.com/onsite/onsite/dispatch"
	"github.com/onsite/onsite/dispatch/match"
	"github.com/onsite/onsite/geo"
	"github.com/onsite/onsite/internal/db"
	"github.com/onsite/onsite/internal/dbtest"
	"github.com/onsite/onsite/technicians"
)

// The benchmark world of docs/PERFORMANCE.md: technicians uniform over
// 8,350 km² (a square of 91.4 km around Zürich), 8 skills, 1–2 each, 60 %
// available; a query asks for the 10 best for one skill at a random place.
var benchSkills = []string{"router_replace", "wifi_setup", "modem_install", "tv_setup", "smart_home", "fiber_splice", "appliance_fix", "pc_repair"}

const benchSideM = 91400.0

func benchWorld(n int, seed uint64, at time.Time) []match.Candidate {
	rng := rand.New(rand.NewPCG(seed, 7))
	out := make([]match.Candidate, n)
	for i := range out {
		p := geo.Offset(zurich, (rng.Float64()-0.5)*benchSideM, (rng.Float64()-0.5)*benchSideM)
		certs := map[string]match.Interval{benchSkills[rng.IntN(8)]: {Start: at.Add(-time.Hour), End: at.Add(24 * time.Hour)}}
		if rng.IntN(2) == 0 {
			certs[benchSkills[rng.IntN(8)]] = match.Interval{Start: at.Add(-time.Hour), End: at.Add(24 * time.Hour)}
		}
		out[i] = match.Candidate{
			TechnicianID: fmt.Sprintf("t%06d", i), Position: p, HasPosition: true,
			Traveller: geo.Traveller{Mode: "car", SpeedKmh: 20 + float64(rng.IntN(3))*5}, RadiusKm: 30,
			Certs: certs, Available: rng.Float64() < 0.6, Capacity: 1, Rating: float64(rng.IntN(11)) / 2,
		}
	}
	return out
}

type benchQuery struct {
	place geo.Point
	skill string
}

func benchQueries(n int, seed uint64) []benchQuery {
	rng := rand.New(rand.NewPCG(seed, 11))
	qs := make([]benchQuery, n)
	for i := range qs {
		qs[i] = benchQuery{place: geo.Offset(zurich, (rng.Float64()-0.5)*benchSideM*0.9, (rng.Float64()-0.5)*benchSideM*0.9), skill: benchSkills[rng.IntN(8)]}
	}
	return qs
}

// reportPercentiles adds p50 and p99 latency in µs to the benchmark output.
func reportPercentiles(b *testing.B, ds []time.Duration) {
	slices.Sort(ds)
	p := func(q float64) float64 { return float64(ds[int(q*float64(len(ds)-1))].Nanoseconds()) / 1e3 }
	b.ReportMetric(p(0.5), "p50-µs")
	b.ReportMetric(p(0.99), "p99-µs")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkSearchInProcess is candidate search + ranking over the in-process
// H3 cell index (match.Pool), beside tidwall/rtree (the R-tree inside
// Tile38) and brute force over the same data and queries.
func BenchmarkSearchInProcess(b *testing.B) {
	at := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	eta := geo.DefaultETA()
	sizes := []int{10_000, 100_000, 1_000_000}
	if testing.Short() {
		sizes = sizes[:2]
	}
	for _, n := range sizes {
		world := benchWorld(n, 1, at)
		qs := benchQueries(4096, 2)
		pool := match.NewPool(benchResolution())
		tr := &rtree.RTreeG[int]{}
		for i, c := range world {
			pool.Put(c)
			pt := [2]float64{c.Position.Lng, c.Position.Lat}
			tr.Insert(pt, pt, i)
		}
		job := func(q benchQuery) match.Job {
			return match.Job{ID: "q", Skill: q.skill, Place: q.place, Deadline: at.Add(time.Hour)}
		}
		b.Run(fmt.Sprintf("h3-index/%dk", n/1000), func(b *testing.B) {
			ds := make([]time.Duration, 0, b.N)
			for i := 0; b.Loop(); i++ {
				start := time.Now()
				got := pool.Search(job(qs[i%len(qs)]), 10, 40, nil, eta, at)
				ds = append(ds, time.Since(start))
				if len(got) == 0 {
					b.Fatal("no candidates")
				}
			}
			reportPercentiles(b, ds)
		})
		b.Run(fmt.Sprintf("rtree/%dk", n/1000), func(b *testing.B) {
			ds := make([]time.Duration, 0, b.N)
			for i := 0; b.Loop(); i++ {
				q := qs[i%len(qs)]
				start := time.Now()
				rtreeExact(tr, world, job(q), 10, 40, eta, at)
				ds = append(ds, time.Since(start))
			}
			reportPercentiles(b, ds)
		})
		if n > 10_000 {
			continue
		}
		b.Run(fmt.Sprintf("brute-force/%dk", n/1000), func(b *testing.B) {
			ds := make([]time.Duration, 0, b.N)
			for i := 0; b.Loop(); i++ {
				start := time.Now()
				match.Rank(job(qs[i%len(qs)]), world, eta, at)
				ds = append(ds, time.Since(start))
			}
			reportPercentiles(b, ds)
		})
	}
}

// BenchmarkSearchPostgres is the same search from PostgreSQL through the
// indexed H3 cell column, as every server process runs it
// (dispatch.Service.Candidates: exclusions, ring bands, shifts, ranking).
func BenchmarkSearchPostgres(b *testing.B) {
	if testing.Short() {
		b.Skip("loads 100k technicians")
	}
	at := time.Now().UTC()
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("%dk", n/1000), func(b *testing.B) {
			d := dbtest.Postgres(b)
			svc, ids := loadBenchWorld(b, d, n, at, time.Now)
			ctx := context.Background()
			ds := make([]time.Duration, 0, b.N)
			for i := 0; b.Loop(); i++ {
				start := time.Now()
				got, err := svc.Candidates(ctx, ids[i%len(ids)], 10)
				ds = append(ds, time.Since(start))
				if err != nil {
					b.Fatal(err)
				}
				if len(got) == 0 {
					b.Fatal("no candidates")
				}
			}
			reportPercentiles(b, ds)
		})
	}
}

// loadBenchWorld writes the benchmark world into d and opens 512 requests at
// the query places.
func loadBenchWorld(b testing.TB, d *db.DB, n int, at time.Time, now func() time.Time) (*dispatch.Service, []string) {
	b.Helper()
	world := benchWorld(n, 1, at)
	ctx := context.Background()
	for _, s := range benchSkills {
		d.Create(&technicians.Skill{Code: s, Name: s, CreatedAt: at})
	}
	techs := make([]technicians.Technician, 0, 2000)
	certs := make([]technicians.Certification, 0, 4000)
	flush := func() {
		if err := d.Omit(clause.Associations).CreateInBatches(techs, 1000).Error; err != nil {
			b.Fatal(err)
		}
		if err := d.CreateInBatches(certs, 2000).Error; err != nil {
			b.Fatal(err)
		}
		techs, certs = techs[:0], certs[:0]
	}
	for i, c := range world {
		lat, lng := c.Position.Lat, c.Position.Lng
		cell := geo.CellOf(c.Position, geo.CityResolution)
		duty := technicians.Offline
		if c.Available {
			duty = technicians.Available
		}
		techs = append(techs, technicians.Technician{
			ID: c.TechnicianID, Name: c.TechnicianID, Phone: fmt.Sprintf("+4170%07d", i), Locale: "en", DutyStatus: duty,
			Lat: &lat, Lng: &lng, Cell: &cell, PositionAt: &at, TravelMode: "car", SpeedKmh: c.Traveller.SpeedKmh,
			RadiusKm: c.RadiusKm, Capacity: 1, Rating: c.Rating, CreatedAt: at, UpdatedAt: at,
		})
		for skill, iv := range c.Certs {
			certs = append(certs, technicians.Certification{TechnicianID: c.TechnicianID, SkillCode: skill, CertifiedAt: iv.Start, ExpiresAt: iv.End})
		}
		if len(techs) == cap(techs) {
			flush()
		}
	}
	flush()
	d.Exec("ANALYZE")
	svc := dispatch.NewService(d, dispatch.Config{SLA: time.Hour, GiveUp: time.Hour, WindowLead: time.Hour,
		OfferStrategy: match.Wave, OfferTimeout: 30 * time.Second, WaveSize: 3, MaxSearchKm: 40}, now)
	var ids []string
	for i, q := range benchQueries(512, 2) {
		lat, lng := q.place.Lat, q.place.Lng
		out, err := svc.Create(ctx, dispatch.Caller{Role: "customer", Subject: fmt.Sprint("c", i)}, "", dispatch.NewRequest{Skill: q.skill, Lat: &lat, Lng: &lng})
		if err != nil {
			b.Fatal(err)
		}
		ids = append(ids, out.Request.ID)
	}
	return svc, ids
}

// BenchmarkDispatchCycle measures accepted offers per second under
// concurrent load on PostgreSQL: each operation opens a request, runs a
// matching round, accepts the first offer and cancels to free the
// technician again.
func BenchmarkDispatchCycle(b *testing.B) {
	d := dbtest.Postgres(b)
	at := time.Now().UTC()
	techs := technicians.NewService(d, time.Now)
	ctx := context.Background()
	if _, err := techs.CreateSkill(ctx, "wifi_setup", "Wi-Fi"); err != nil {
		b.Fatal(err)
	}
	for i := range 200 {
		capacity := 10
		t, err := techs.Create(ctx, technicians.NewTechnician{Name: "T", Phone: fmt.Sprintf("+4179%07d", i), Capacity: &capacity})
		if err != nil {
			b.Fatal(err)
		}
		techs.Certify(ctx, t.ID, "wifi_setup", nil, at.Add(24*time.Hour))
		techs.SetDuty(ctx, t.ID, technicians.Available)
		p := geo.Offset(zurich, float64(i%20)*700-7000, float64(i/20)*700-3500)
		techs.UpdateLocation(ctx, t.ID, technicians.Ping{Lat: &p.Lat, Lng: &p.Lng})
	}
	svc := dispatch.NewService(d, dispatch.Config{SLA: time.Hour, GiveUp: time.Hour, WindowLead: time.Hour,
		OfferStrategy: match.Sequential, OfferTimeout: 30 * time.Second, WaveSize: 1, MaxSearchKm: 40}, time.Now)
	ops := dispatch.Caller{Role: "ops", Subject: "bench"}
	start := time.Now()
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))
		for pb.Next() {
			p := geo.Offset(zurich, (rng.Float64()-0.5)*14000, (rng.Float64()-0.5)*7000)
			out, err := svc.Create(ctx, dispatch.Caller{Role: "customer", Subject: "c"}, "", dispatch.NewRequest{Skill: "wifi_setup", Lat: &p.Lat, Lng: &p.Lng})
			if err != nil {
				b.Fatal(err)
			}
			res, err := svc.Match(ctx, out.Request.ID)
			if err != nil || len(res.Offered) == 0 {
				b.Fatalf("match: %+v %v", res, err)
			}
			if _, err := svc.Accept(ctx, res.Offered[0].TechnicianID, res.Offered[0].ID); err != nil {
				b.Fatal(err)
			}
			if _, err := svc.Cancel(ctx, ops, out.Request.ID, dispatch.CancelInput{Reason: "bench"}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "accepts/s")
}

// BenchmarkAssignBatch is one batch round's assignment (match.AssignBatch)
// after the candidate search: N waiting requests at random places, each with
// its 5 best candidates, as the server's batch round builds them. "country"
// is the benchmark world (10,000 technicians over 8,350 km², few requests
// compete); "city" is 200 technicians and the requests in a 22 km square, a
// surge where most requests compete for the same technicians.
func BenchmarkAssignBatch(b *testing.B) {
	at := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	eta := geo.DefaultETA()
	policy := match.BatchPolicy{Urgency: 1, UrgencyCap: time.Hour, AnswerTime: 90 * time.Second, MaxWait: match.DefaultMaxWait}
	cases := []struct {
		name  string
		techs int
		scale float64 // share of the benchmark square's side
		sizes []int
	}{
		{"country", 10_000, 1, []int{50, 200, 1000, 3000}},
		{"city", 200, 22_000 / benchSideM, []int{100, 500}},
	}
	for _, c := range cases {
		pool := match.NewPool(geo.CityResolution)
		for _, t := range benchWorld(c.techs, 1, at) {
			t.Position = geo.Point{Lat: zurich.Lat + (t.Position.Lat-zurich.Lat)*c.scale, Lng: zurich.Lng + (t.Position.Lng-zurich.Lng)*c.scale}
			t.Available = true
			pool.Put(t)
		}
		for _, n := range c.sizes {
			qs := benchQueries(n, 3)
			jobs := make([]match.Job, n)
			lists := make([][]match.Scored, n)
			for i, q := range qs {
				q.place = geo.Point{Lat: zurich.Lat + (q.place.Lat-zurich.Lat)*c.scale, Lng: zurich.Lng + (q.place.Lng-zurich.Lng)*c.scale}
				jobs[i] = match.Job{ID: fmt.Sprintf("r%d", i), Skill: q.skill, Place: q.place,
					Deadline: at.Add(time.Duration(i%60) * time.Minute), GiveUp: at.Add(time.Hour)}
				lists[i] = pool.Search(jobs[i], 5, 40, nil, eta, at)
			}
			b.Run(fmt.Sprintf("%s/requests=%d", c.name, n), func(b *testing.B) {
				pairs := 0
				for b.Loop() {
					pairs = len(match.AssignBatch(jobs, lists, at, policy))
				}
				b.ReportMetric(float64(pairs), "pairs")
			})
		}
	}
}

// BenchmarkBatchTick is one batch round on PostgreSQL: 500 waiting requests
// over the benchmark world (10,000 technicians), candidates from the live
// index, the assignment, and every offer with its event and outbox rows
// written set-based. Between rounds the offers are withdrawn and the index
// reloaded, so every round starts from the same state.
func BenchmarkBatchTick(b *testing.B) {
	if testing.Short() {
		b.Skip("loads 10k technicians")
	}
	at := time.Now().UTC()
	d := dbtest.Postgres(b)
	svc, _ := loadBenchWorld(b, d, 10_000, at, time.Now)
	ctx := context.Background()
	var offers, statements int
	ds := make([]time.Duration, 0, b.N)
	for b.Loop() {
		b.StopTimer()
		if err := d.Exec("UPDATE offers SET state = 'withdrawn' WHERE state = 'pending'").Error; err != nil {
			b.Fatal(err)
		}
		if err := svc.Fleet().Load(ctx); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		res, err := svc.BatchRound(ctx, "", 500, nil)
		ds = append(ds, time.Since(start))
		if err != nil {
			b.Fatal(err)
		}
		offers, statements = len(res.Offered), res.Statements
	}
	b.ReportMetric(float64(offers), "offers")
	b.ReportMetric(float64(statements), "statements")
	slices.Sort(ds)
	b.ReportMetric(float64(ds[len(ds)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(ds[len(ds)-1].Microseconds())/1000, "max-ms")
}

// rtreeExact is the peer's exact search: technicians in order of distance
// from the R-tree, the eligible ones kept, walking on until nobody farther
// could arrive sooner than the want-th found (the same bound Pool.Search
// uses), then ranked like Rank. Its answers equal Rank over everyone.
func rtreeExact(tr *rtree.RTreeG[int], world []match.Candidate, j match.Job, want int, reachKm float64, eta geo.ETA, at time.Time) []match.Scored {
	var found []match.Candidate
	pt := [2]float64{j.Place.Lng, j.Place.Lat}
	// A degree of longitude is the shorter one here: metres per degree of
	// box distance are at least this.
	mPerDeg := 111_320 * math.Cos(j.Place.Lat*math.Pi/180)
	stopM := reachKm * 1000
	fastest := geo.Traveller{Mode: "car", SpeedKmh: 30}
	tr.Nearby(rtree.BoxDist[float64, int](pt, pt, nil), func(_, _ [2]float64, idx int, dist float64) bool {
		if math.Sqrt(dist)*mPerDeg > stopM {
			return false
		}
		if match.Eligible(j, world[idx], at) == match.ReasonOK {
			found = append(found, world[idx])
			if len(found) == want {
				ranked := match.Rank(j, found, eta, at)
				bound := ranked[want-1].ETA/(2*time.Minute)*(2*time.Minute) + 2*time.Minute
				for m := 0.0; m < stopM; m += 100 {
					if eta.Estimate(j.Place, geo.Offset(j.Place, m, 0), fastest) > bound {
						stopM = m
						break
					}
				}
			}
		}
		return true
	})
	ranked := match.Rank(j, found, eta, at)
	if len(ranked) > want {
		ranked = ranked[:want]
	}
	return ranked
}

// benchResolution is the index resolution of the in-process benchmark
// (ONSITE_BENCH_RES to compare; default the city resolution).
func benchResolution() int {
	if v, err := strconv.Atoi(os.Getenv("ONSITE_BENCH_RES")); err == nil {
		return v
	}
	return geo.CityResolution
}
