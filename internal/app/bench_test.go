package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"gorm.io/gorm/clause"

	"github.com/onsite/onsite/dispatch"
	"github.com/onsite/onsite/geo"
	"github.com/onsite/onsite/internal/apitest"
	"github.com/onsite/onsite/internal/auth"
	"github.com/onsite/onsite/internal/dbtest"
	"github.com/onsite/onsite/technicians"
)

// BenchmarkPings sends location pings through HTTP into PostgreSQL (the
// whole path: token check, rate limits, validation, the conditional UPDATE,
// the live stream) from 10,000 technicians, 32 connections at once; single
// pings, and batches of 10 as an app sends after a gap.
func BenchmarkPings(b *testing.B) {
	s, meter := startMetered(b, apitest.Env("ONSITE_WORKERS", "false"))
	const n = 10_000
	now := time.Now().UTC()
	techs := make([]technicians.Technician, n)
	tokens := make([]string, n)
	for i := range techs {
		techs[i] = technicians.Technician{ID: fmt.Sprintf("bench-%05d", i), Name: "T", Phone: fmt.Sprintf("+4178%07d", i), Locale: "en",
			DutyStatus: "available", TravelMode: "car", SpeedKmh: 25, RadiusKm: 30, Capacity: 1, CreatedAt: now, UpdatedAt: now}
		tokens[i] = s.Token(auth.Technician, techs[i].ID)
	}
	if err := s.App.DB.Omit(clause.Associations).CreateInBatches(techs, 1000).Error; err != nil {
		b.Fatal(err)
	}
	for _, batch := range []int{1, 10} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			meter.b = b
			start := time.Now()
			var elapsed time.Duration
			var p99 float64
			meter.run(func() {
				elapsed, p99 = load(b, 32, http.StatusOK, func(i int) *http.Request {
					tech := i % n
					at := start.Add(time.Duration(i) * time.Microsecond)
					var body []byte
					path := "/v1/me/location"
					if batch == 1 {
						body, _ = json.Marshal(map[string]any{"lat": 47.3 + float64(tech%100)/1000, "lng": 8.5, "at": at})
					} else {
						path = "/v1/me/locations"
						var pings []map[string]any
						for k := range batch {
							pings = append(pings, map[string]any{"lat": 47.3 + float64(k)/1000, "lng": 8.5, "at": at.Add(-time.Duration(batch-k) * time.Second)})
						}
						body, _ = json.Marshal(map[string]any{"pings": pings})
					}
					req, _ := http.NewRequest(http.MethodPost, s.URL+path, bytes.NewReader(body))
					req.Header.Set("Authorization", "Bearer "+tokens[tech])
					return req
				})
			})
			b.ReportMetric(float64(b.N*batch)/elapsed.Seconds(), "pings/s")
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "requests/s")
			b.ReportMetric(p99, "p99-ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// load sends b.N requests made by build over conns connections at once and
// returns how long it took and the p99 latency in ms; any other status than
// want fails the benchmark.
func load(b *testing.B, conns, want int, build func(i int) *http.Request) (time.Duration, float64) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2 * conns}}
	return concurrently(b, conns, func(i int) error {
		req := build(i)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body) // so the connection is reused
		resp.Body.Close()
		if resp.StatusCode != want {
			return fmt.Errorf("status %d, want %d", resp.StatusCode, want)
		}
		return nil
	})
}

// concurrently runs call(0 … b.N-1) from conns goroutines and returns the
// elapsed time and the p99 latency in milliseconds; an error stops that
// goroutine and fails the benchmark.
func concurrently(b *testing.B, conns int, call func(i int) error) (time.Duration, float64) {
	var next atomic.Int64
	lat := make([]time.Duration, b.N)
	var wg sync.WaitGroup
	start := time.Now()
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				t0 := time.Now()
				err := call(i)
				lat[i] = time.Since(t0)
				if err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(lat)
	return elapsed, float64(lat[len(lat)*99/100].Microseconds()) / 1000
}

// BenchmarkCreateRequest posts requests end to end on PostgreSQL: token,
// rate limits, idempotency key, validation, the insert with its event and
// outbox rows in one transaction; with the workers off (16 connections) and
// on with the default batch strategy (8 connections).
func BenchmarkCreateRequest(b *testing.B) {
	for _, tc := range []struct {
		name    string
		workers string
		conns   int
	}{{"workers=off", "false", 16}, {"workers=on", "true", 8}} {
		b.Run(tc.name, func(b *testing.B) {
			s, meter := startMetered(b, apitest.Env("ONSITE_WORKERS", tc.workers))
			ops := s.Token(auth.Ops, "bench")
			s.Must(http.StatusCreated, "POST", "/v1/skills", ops, map[string]string{"code": "wifi_setup", "name": "Wi-Fi"}, nil)
			tokens := make([]string, 100)
			for i := range tokens {
				tokens[i] = s.Token(auth.Customer, fmt.Sprintf("c%03d", i))
			}
			var elapsed time.Duration
			var p99 float64
			meter.run(func() {
				elapsed, p99 = load(b, tc.conns, http.StatusCreated, func(i int) *http.Request {
					body, _ := json.Marshal(map[string]any{"skill": "wifi_setup", "lat": 47.3 + float64(i%100)/1000, "lng": 8.5, "address": "Bench street 1"})
					req, _ := http.NewRequest(http.MethodPost, s.URL+"/v1/requests", bytes.NewReader(body))
					req.Header.Set("Authorization", "Bearer "+tokens[i%len(tokens)])
					req.Header.Set("Idempotency-Key", fmt.Sprintf("bench-%d", i))
					return req
				})
			})
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "requests/s")
			b.ReportMetric(p99, "p99-ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}

var liveSkills = []string{"router_replace", "wifi_setup", "modem_install", "tv_setup", "smart_home", "fiber_splice", "appliance_fix", "pc_repair"}

// liveWorld bulk-inserts n technicians uniform over 91.4 km around Zurich
// (1–2 of 8 skills, 60 % available), as loadBenchWorld in dispatch does, reloads
// the live index, and creates 300 searching requests as customers. It returns
// the request ids and the technicians (for the Redis peer).
func liveWorld(b *testing.B, s *apitest.Server, n int) ([]string, []technicians.Technician, map[string][]string) {
	ctx := context.Background()
	at := time.Now().UTC()
	zurich := geo.Point{Lat: 47.3769, Lng: 8.5417}
	const side = 91400.0
	rng := rand.New(rand.NewPCG(1, 7))
	for _, sk := range liveSkills {
		s.App.DB.Create(&technicians.Skill{Code: sk, Name: sk, CreatedAt: at})
	}
	var all []technicians.Technician
	skillsOf := map[string][]string{}
	techs := make([]technicians.Technician, 0, 2000)
	certs := make([]technicians.Certification, 0, 4000)
	flush := func() {
		if err := s.App.DB.Omit(clause.Associations).CreateInBatches(techs, 1000).Error; err != nil {
			b.Fatal(err)
		}
		if err := s.App.DB.CreateInBatches(certs, 2000).Error; err != nil {
			b.Fatal(err)
		}
		techs, certs = techs[:0], certs[:0]
	}
	for i := range n {
		p := geo.Offset(zurich, (rng.Float64()-0.5)*side, (rng.Float64()-0.5)*side)
		lat, lng := p.Lat, p.Lng
		cell := geo.CellOf(p, geo.CityResolution)
		id := fmt.Sprintf("t%06d", i)
		sks := []string{liveSkills[rng.IntN(8)]}
		if rng.IntN(2) == 0 {
			if s2 := liveSkills[rng.IntN(8)]; s2 != sks[0] {
				sks = append(sks, s2)
			}
		}
		duty := technicians.Offline
		if rng.Float64() < 0.6 {
			duty = technicians.Available
		}
		t := technicians.Technician{ID: id, Name: id, Phone: fmt.Sprintf("+4170%07d", i), Locale: "en", DutyStatus: duty,
			Lat: &lat, Lng: &lng, Cell: &cell, PositionAt: &at, TravelMode: "car", SpeedKmh: 25, RadiusKm: 30, Capacity: 1,
			Rating: float64(rng.IntN(11)) / 2, CreatedAt: at, UpdatedAt: at}
		techs = append(techs, t)
		all = append(all, t)
		skillsOf[id] = sks
		for _, sk := range sks {
			certs = append(certs, technicians.Certification{TechnicianID: id, SkillCode: sk, CertifiedAt: at.Add(-time.Hour), ExpiresAt: at.Add(24 * time.Hour)})
		}
		if len(techs) == cap(techs) {
			flush()
		}
	}
	flush()
	s.App.DB.Exec("ANALYZE")
	if err := s.App.Dispatch.Fleet().Load(ctx); err != nil {
		b.Fatal(err)
	}
	var ids []string
	for i := range 300 {
		p := geo.Offset(zurich, (rng.Float64()-0.5)*side*0.9, (rng.Float64()-0.5)*side*0.9)
		lat, lng := p.Lat, p.Lng
		out, err := s.App.Dispatch.Create(ctx, dispatch.Caller{Role: "customer", Subject: fmt.Sprint("c", i)}, "",
			dispatch.NewRequest{Skill: liveSkills[rng.IntN(8)], Lat: &lat, Lng: &lng, Address: "Bench street 1"})
		if err != nil {
			b.Fatal(err)
		}
		ids = append(ids, out.Request.ID)
	}
	return ids, all, skillsOf
}

// BenchmarkViewRequest is GET /v1/requests/{id} of searching requests by
// their customers over 10,000 technicians, 8 connections (the expected wait
// comes from the live index).
func BenchmarkViewRequest(b *testing.B) {
	s, meter := startMetered(b, apitest.Env("ONSITE_WORKERS", "false"))
	ids, _, _ := liveWorld(b, s, 10_000)
	tokens := make([]string, len(ids))
	for i := range ids {
		tokens[i] = s.Token(auth.Customer, fmt.Sprint("c", i))
	}
	b.ResetTimer()
	meter.b = b
	var elapsed time.Duration
	var p99 float64
	meter.run(func() {
		elapsed, p99 = load(b, 8, http.StatusOK, func(i int) *http.Request {
			k := i % len(ids)
			req, _ := http.NewRequest(http.MethodGet, s.URL+"/v1/requests/"+ids[k], nil)
			req.Header.Set("Authorization", "Bearer "+tokens[k])
			return req
		})
	})
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "requests/s")
	b.ReportMetric(p99, "p99-ms")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkCandidates is GET /v1/requests/{id}/candidates (ops) over 10,000
// technicians at 8 connections, beside two peers in the same run, over the
// network with go-redis, 8 at once: redis-geosearch is one bare GEOSEARCH
// BYRADIUS 2 km ASC COUNT 10 on a per-skill GEO key of the available
// technicians (no request lookup, no eligibility, no ranking: not the same
// question); redis-candidates answers the route's question from Redis (see
// there).
func BenchmarkCandidates(b *testing.B) {
	s, meter := startMetered(b, apitest.Env("ONSITE_WORKERS", "false"))
	ids, all, skillsOf := liveWorld(b, s, 10_000)
	ops := s.Token(auth.Ops, "bench")
	b.Run("onsite", func(b *testing.B) {
		meter.b = b
		var elapsed time.Duration
		var p99 float64
		meter.run(func() {
			elapsed, p99 = load(b, 8, http.StatusOK, func(i int) *http.Request {
				req, _ := http.NewRequest(http.MethodGet, s.URL+"/v1/requests/"+ids[i%len(ids)]+"/candidates", nil)
				req.Header.Set("Authorization", "Bearer "+ops)
				return req
			})
		})
		b.ReportMetric(float64(b.N)/elapsed.Seconds(), "requests/s")
		b.ReportMetric(p99, "p99-ms")
		b.ReportMetric(0, "ns/op")
	})
	addr := os.Getenv("TEST_REDIS_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr, DB: 15, PoolSize: 16})
	defer rdb.Close()
	ctx := context.Background()
	prefix := "httpbench:geo:"
	for _, sk := range liveSkills {
		rdb.Del(ctx, prefix+sk)
	}
	pipe := rdb.Pipeline()
	for _, t := range all {
		if t.DutyStatus != technicians.Available {
			continue
		}
		for _, sk := range skillsOf[t.ID] {
			pipe.GeoAdd(ctx, prefix+sk, &redis.GeoLocation{Name: t.ID, Longitude: *t.Lng, Latitude: *t.Lat})
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		b.Skip("redis peer: ", err)
	}
	type q struct {
		skill    string
		lat, lng float64
	}
	var qs []q
	for _, id := range ids {
		var r struct {
			Skill string  `json:"skill"`
			Lat   float64 `json:"lat"`
			Lng   float64 `json:"lng"`
		}
		s.Must(http.StatusOK, "GET", "/v1/requests/"+id, ops, nil, &r)
		qs = append(qs, q{r.Skill, r.Lat, r.Lng})
	}
	b.Run("redis-geosearch", func(b *testing.B) {
		meter.b = b
		var elapsed time.Duration
		var p99 float64
		meter.run(func() {
			elapsed, p99 = concurrently(b, 8, func(i int) error {
				x := qs[i%len(qs)]
				return rdb.GeoSearch(ctx, prefix+x.skill, &redis.GeoSearchQuery{Longitude: x.lng, Latitude: x.lat,
					Radius: 2, RadiusUnit: "km", Sort: "ASC", Count: 10}).Err()
			})
		})
		b.ReportMetric(float64(b.N)/elapsed.Seconds(), "requests/s")
		b.ReportMetric(p99, "p99-ms")
		b.ReportMetric(0, "ns/op")
	})
	// The same question answered from Redis, as a service keeping its
	// fleet there would: per request a hash (skill, place) and a set of
	// excluded technicians; per technician a hash (duty, jobs, capacity,
	// speed, reach, certification expiry per skill); per skill a GEO key of the
	// available ones. One call is three round trips: the request and its
	// exclusions, the 2·limit nearest within the widest search (40 km, as
	// ONSITE_MAX_SEARCH_KM), and the state of those hits, filtered (duty,
	// capacity, reach, certification, exclusions) and ranked by straight-line ETA.
	const limit, reachKm = 20, 40
	pipe = rdb.Pipeline()
	for _, t := range all {
		f := map[string]any{"duty": t.DutyStatus, "active_jobs": t.ActiveJobs, "capacity": t.Capacity, "speed_kmh": t.SpeedKmh, "radius_km": t.RadiusKm}
		for _, sk := range skillsOf[t.ID] {
			f["cert:"+sk] = time.Now().Add(24 * time.Hour).Unix()
		}
		pipe.HSet(ctx, prefix+"tech:"+t.ID, f)
	}
	for k, id := range ids {
		pipe.HSet(ctx, prefix+"req:"+id, "skill", qs[k].skill, "lat", qs[k].lat, "lng", qs[k].lng)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		b.Fatal(err)
	}
	type ranked struct {
		id  string
		eta time.Duration
	}
	candidates := func(id string) ([]ranked, error) {
		p := rdb.Pipeline()
		req := p.HMGet(ctx, prefix+"req:"+id, "skill", "lat", "lng")
		excl := p.SMembers(ctx, prefix+"excluded:"+id)
		if _, err := p.Exec(ctx); err != nil {
			return nil, err
		}
		v := req.Val()
		skill, _ := v[0].(string)
		lat, _ := strconv.ParseFloat(fmt.Sprint(v[1]), 64)
		lng, _ := strconv.ParseFloat(fmt.Sprint(v[2]), 64)
		excluded := map[string]bool{}
		for _, t := range excl.Val() {
			excluded[t] = true
		}
		hits, err := rdb.GeoSearchLocation(ctx, prefix+skill, &redis.GeoSearchLocationQuery{WithDist: true,
			GeoSearchQuery: redis.GeoSearchQuery{Longitude: lng, Latitude: lat, Radius: reachKm, RadiusUnit: "km", Sort: "ASC", Count: 2 * limit}}).Result()
		if err != nil {
			return nil, err
		}
		p = rdb.Pipeline()
		states := make([]*redis.SliceCmd, len(hits))
		for i, h := range hits {
			states[i] = p.HMGet(ctx, prefix+"tech:"+h.Name, "duty", "active_jobs", "capacity", "speed_kmh", "radius_km", "cert:"+skill)
		}
		if _, err := p.Exec(ctx); err != nil {
			return nil, err
		}
		now := time.Now().Unix()
		var out []ranked
		for i, h := range hits {
			st := states[i].Val()
			jobs, _ := strconv.Atoi(fmt.Sprint(st[1]))
			capacity, _ := strconv.Atoi(fmt.Sprint(st[2]))
			speed, _ := strconv.ParseFloat(fmt.Sprint(st[3]), 64)
			radius, _ := strconv.ParseFloat(fmt.Sprint(st[4]), 64)
			certUntil, _ := strconv.ParseInt(fmt.Sprint(st[5]), 10, 64)
			if st[0] != technicians.Available || jobs >= capacity || certUntil <= now || excluded[h.Name] || speed <= 0 || h.Dist > radius {
				continue
			}
			out = append(out, ranked{h.Name, time.Duration(h.Dist / speed * float64(time.Hour))})
		}
		slices.SortFunc(out, func(a, b ranked) int { return int(a.eta - b.eta) })
		return out[:min(limit, len(out))], nil
	}
	b.Run("redis-candidates", func(b *testing.B) {
		meter.b = b
		var elapsed time.Duration
		var p99 float64
		meter.run(func() {
			elapsed, p99 = concurrently(b, 8, func(i int) error {
				_, err := candidates(ids[i%len(ids)])
				return err
			})
		})
		b.ReportMetric(float64(b.N)/elapsed.Seconds(), "requests/s")
		b.ReportMetric(p99, "p99-ms")
		b.ReportMetric(0, "ns/op")
	})
	for _, sk := range liveSkills {
		rdb.Del(ctx, prefix+sk)
	}
	for _, t := range all {
		pipe.Del(ctx, prefix+"tech:"+t.ID)
	}
	for _, id := range ids {
		pipe.Del(ctx, prefix+"req:"+id)
	}
	_, _ = pipe.Exec(ctx)
}

// cpuMeter counts the CPU time spent during a benchmark's load, per call:
// this process (client and server together: they share it), the server's
// PostgreSQL backends (found by their application_name) and the Redis
// server. The throughput of these benchmarks moves with whatever else runs
// on the machine; the CPU per call much less. Linux only (it reads /proc);
// elsewhere it reports nothing.
type cpuMeter struct {
	b        *testing.B
	s        *apitest.Server
	app      string // application_name of the server's database connections, "" for none
	redisPID int
}

// newCPUMeter meters the server s, whose database URL carries app as its
// application_name ("" when it has no PostgreSQL).
func newCPUMeter(b *testing.B, s *apitest.Server, app string) *cpuMeter {
	m := &cpuMeter{b: b, s: s, app: app}
	if info, err := s.App.Redis.Info(context.Background(), "server").Result(); err == nil {
		for _, line := range strings.Split(info, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
				m.redisPID, _ = strconv.Atoi(v)
			}
		}
	}
	return m
}

type cpuSample struct{ self, redis time.Duration }

// procCPU is the user and system time of a process, from /proc.
func procCPU(pid int) (time.Duration, bool) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// The command name (field 2) may hold spaces: count from after it.
	f := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+1:]))
	if len(f) < 13 {
		return 0, false
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * 10 * time.Millisecond, true // USER_HZ is 100 on Linux
}

func (m *cpuMeter) sample() (cpuSample, map[int]time.Duration) {
	var out cpuSample
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		out.self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	pg := map[int]time.Duration{}
	if m.app != "" {
		var pids []int
		m.s.App.DB.Raw("SELECT pid FROM pg_stat_activity WHERE application_name = ?", m.app).Scan(&pids)
		for _, pid := range pids {
			if d, ok := procCPU(pid); ok {
				pg[pid] = d
			}
		}
	}
	if m.redisPID != 0 {
		out.redis, _ = procCPU(m.redisPID)
	}
	return out, pg
}

// run calls load and reports, beside its own metrics, the CPU time per call
// (µs) of this process, of PostgreSQL and of Redis.
func (m *cpuMeter) run(load func()) {
	before, pgBefore := m.sample()
	load()
	after, pgAfter := m.sample()
	var pg time.Duration
	for pid, d := range pgAfter {
		pg += d - pgBefore[pid] // a backend opened meanwhile counts from 0
	}
	per := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(m.b.N) }
	m.b.ReportMetric(per(after.self-before.self), "proc-cpu-µs/op")
	if m.app != "" {
		m.b.ReportMetric(per(pg), "pg-cpu-µs/op")
	}
	if m.redisPID != 0 {
		m.b.ReportMetric(per(after.redis-before.redis), "redis-cpu-µs/op")
	}
}

// startMetered starts a server on PostgreSQL whose connections are named,
// so that a cpuMeter finds its backends.
func startMetered(b *testing.B, opts ...apitest.Option) (*apitest.Server, *cpuMeter) {
	app := fmt.Sprintf("onsite-bench-%d", rand.Uint64())
	u := dbtest.PostgresSchemaURL(b) + "&application_name=" + app
	s := apitest.Start(b, "postgres", dbtest.RedisDBApp, append(opts, apitest.Env("DATABASE_URL", u))...)
	return s, newCPUMeter(b, s, app)
}
