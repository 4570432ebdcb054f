package app_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm/clause"

	"github.com/onsite/onsite/dispatch"
	"github.com/onsite/onsite/geo"
	"github.com/onsite/onsite/internal/apitest"
	"github.com/onsite/onsite/internal/auth"
	"github.com/onsite/onsite/internal/dbtest"
	"github.com/onsite/onsite/technicians"
)

// TestSurgeTwoProcesses: a surge of requests over two `onsite serve`
// processes sharing PostgreSQL and Redis (the full size, 2,000 requests in
// 60 s over 1,000 technicians, unless -short: 300 in 10 s). Technicians
// accept what they are offered and finish at once. It checks that every
// request is offered and served (no growing backlog), that the batch round
// ran once per window across both processes (not once per process), that no
// round failed, and that no request was ever assigned twice.
func TestSurgeTwoProcesses(t *testing.T) {
	nTechs, nReqs, over := 1000, 2000, 60*time.Second
	if testing.Short() {
		nTechs, nReqs, over = 300, 300, 10*time.Second
	}
	u := dbtest.PostgresSchemaURL(t)
	opts := []apitest.Option{apitest.Env("DATABASE_URL", u), apitest.Env("ONSITE_QUEUE_PREFIX", "surge"+strconv.FormatInt(time.Now().UnixNano(), 36)+":"),
		apitest.Env("ONSITE_BATCH_WINDOW", "1s")}
	s1 := apitest.Start(t, "postgres", dbtest.RedisDBApp, opts...)
	s2 := apitest.Start(t, "postgres", dbtest.RedisDBApp, opts...)
	servers := []*apitest.Server{s1, s2}
	ctx := context.Background()

	// The fleet, written in bulk, then loaded by both indexes.
	s1.Must(http.StatusCreated, "POST", "/v1/skills", s1.Token(auth.Ops, "alice"), map[string]string{"code": "router_replace", "name": "Replace a router"}, nil)
	now := time.Now().UTC()
	techs := make([]technicians.Technician, nTechs)
	certs := make([]technicians.Certification, nTechs)
	for i := range techs {
		p := geo.Offset(zurichPoint, float64(i%40)*500-10000, float64(i/40)*(20000/float64(nTechs/40+1))-10000)
		cell := geo.CellOf(p, geo.CityResolution)
		techs[i] = technicians.Technician{ID: fmt.Sprintf("surge-%04d", i), Name: "T", Phone: fmt.Sprintf("+4177%07d", i), Locale: "en",
			DutyStatus: technicians.Available, Lat: &p.Lat, Lng: &p.Lng, Cell: &cell, PositionAt: &now, TravelMode: "car", SpeedKmh: 25,
			RadiusKm: 30, Capacity: 1, CreatedAt: now, UpdatedAt: now}
		certs[i] = technicians.Certification{TechnicianID: techs[i].ID, SkillCode: "router_replace", CertifiedAt: now.Add(-time.Hour), ExpiresAt: now.Add(48 * time.Hour)}
	}
	if err := s1.App.DB.Omit(clause.Associations).CreateInBatches(techs, 500).Error; err != nil {
		t.Fatal(err)
	}
	if err := s1.App.DB.CreateInBatches(certs, 500).Error; err != nil {
		t.Fatal(err)
	}
	for _, s := range servers {
		if err := s.App.Dispatch.Fleet().Load(ctx); err != nil {
			t.Fatal(err)
		}
	}
	ticksBefore := batchTicks(t, servers)
	start := time.Now()

	// Technicians: take every pending offer, through either process, and
	// finish the job at once so they are free again.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
			var pending []struct{ ID, TechnicianID, RequestID string }
			s1.App.DB.Raw("SELECT id, technician_id, request_id FROM offers WHERE state = 'pending'").Scan(&pending)
			for k, o := range pending {
				ds := servers[(i+k)%2].App.Dispatch
				if _, err := ds.Accept(ctx, o.TechnicianID, o.ID); err != nil {
					continue
				}
				_, _ = ds.Depart(ctx, o.TechnicianID, o.RequestID)
				_, _ = ds.Arrive(ctx, o.TechnicianID, o.RequestID)
				_, _ = ds.Complete(ctx, o.TechnicianID, o.RequestID, dispatch.JobStep{Outcome: "fixed"})
			}
		}
	}()

	// Customers: nReqs requests spread evenly over the period, half through
	// each process.
	every := over / time.Duration(nReqs)
	for i := range nReqs {
		time.Sleep(time.Until(start.Add(time.Duration(i) * every)))
		p := geo.Offset(zurichPoint, float64(i%97)*200-9700, float64(i%89)*220-9700)
		s := servers[i%2]
		res := s.Call("POST", "/v1/requests", s.Token(auth.Customer, fmt.Sprint("c", i%50)), map[string]any{"skill": "router_replace", "lat": p.Lat, "lng": p.Lng})
		if res.Status != http.StatusCreated {
			t.Fatalf("request %d: status %d", i, res.Status)
		}
	}
	// Every request is served soon after the surge: no backlog left behind.
	deadline := time.Now().Add(30 * time.Second)
	var open int64
	for {
		s1.App.DB.Raw("SELECT COUNT(*) FROM requests WHERE state NOT IN ('completed')").Scan(&open)
		if open == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	elapsed := time.Since(start)
	if open != 0 {
		t.Fatalf("%d of %d requests not served 30 s after the surge", open, nReqs)
	}
	var doubles int64
	s1.App.DB.Raw("SELECT COUNT(*) FROM (SELECT request_id FROM assignments GROUP BY request_id HAVING COUNT(*) > 1) x").Scan(&doubles)
	if doubles != 0 {
		t.Fatalf("%d requests were assigned more than once", doubles)
	}
	ticks := batchTicks(t, servers)
	ran := ticks["ran"] - ticksBefore["ran"]
	windows := int(elapsed / time.Second)
	t.Logf("%d requests in %s over %d technicians: %d batch rounds in %d windows across both processes, ticks %v",
		nReqs, elapsed.Round(time.Second), nTechs, ran, windows, ticks)
	if ran > windows+2 {
		t.Fatalf("%d batch rounds in %d windows: the round ran in both processes", ran, windows)
	}
	if ran < windows/2 {
		t.Fatalf("only %d batch rounds in %d windows", ran, windows)
	}
	if f := ticks["failed"] - ticksBefore["failed"]; f != 0 {
		t.Fatalf("%d batch rounds failed", f)
	}
}

// zurichPoint is where the surge happens.
var zurichPoint = geo.Point{Lat: 47.3769, Lng: 8.5417}

var tickLine = regexp.MustCompile(`onsite_periodic_ticks_total\{job="dispatch:batch",region="[^"]*",result="([a-z_]+)"\} ([0-9.e+]+)`)

// batchTicks sums the batch job's ticks by result over the servers' /metrics.
func batchTicks(t *testing.T, servers []*apitest.Server) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, s := range servers {
		res, err := http.Get(s.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		for _, m := range tickLine.FindAllStringSubmatch(string(body), -1) {
			f, _ := strconv.ParseFloat(m[2], 64)
			out[m[1]] += int(f)
		}
	}
	return out
}
