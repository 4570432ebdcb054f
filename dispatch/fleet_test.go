package dispatch_test

import (
	"context"
	"fmt"
	"hash/crc32"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/onsite/onsite/dispatch"
	"github.com/onsite/onsite/dispatch/match"
	"github.com/onsite/onsite/geo"
	"github.com/onsite/onsite/internal/db"
	"github.com/onsite/onsite/internal/dbtest"
	"github.com/onsite/onsite/technicians"
)

// TestServerCandidatesEqualRank: the server's candidates (the live index
// loaded from PostgreSQL) are exactly match.Rank over every technician of
// the fleet, at 100k technicians.
func TestServerCandidatesEqualRank(t *testing.T) {
	n := 100_000
	if testing.Short() {
		n = 10_000
	}
	at := time.Now().UTC().Truncate(time.Second)
	d := dbtest.Postgres(t)
	now := func() time.Time { return at }
	svc, ids := loadBenchWorld(t, d, n, at, now)
	world := benchWorld(n, 1, at)
	ctx := context.Background()
	eta := geo.DefaultETA()
	mismatches := 0
	for _, id := range ids {
		got, err := svc.Candidates(ctx, id, 10)
		if err != nil {
			t.Fatal(err)
		}
		r, err := svc.Get(ctx, dispatch.Caller{Role: "ops"}, id)
		if err != nil {
			t.Fatal(err)
		}
		job := match.Job{ID: r.ID, Skill: r.SkillCode, Place: r.Place(), Deadline: *r.SLADeadline, GiveUp: *r.GiveUpAt}
		want := match.Rank(job, world, eta, at)
		if len(want) > 10 {
			want = want[:10]
		}
		gotIDs := make([]string, len(got))
		for i, c := range got {
			gotIDs[i] = c.TechnicianID
		}
		wantIDs := make([]string, len(want))
		for i, c := range want {
			wantIDs[i] = c.TechnicianID
		}
		if !slices.Equal(gotIDs, wantIDs) {
			mismatches++
			if mismatches <= 3 {
				t.Errorf("request %s: server %v, Rank %v", id, gotIDs, wantIDs)
			}
		}
	}
	if mismatches > 0 {
		t.Fatalf("%d of %d answers differ from Rank over the whole fleet", mismatches, len(ids))
	}
}

// twoProcesses opens the same PostgreSQL schema twice, as two onsite
// processes would, each with its own dispatch service and live index.
func twoProcesses(t *testing.T) (a, b *world) {
	t.Helper()
	u := dbtest.PostgresSchemaURL(t)
	ctx := context.Background()
	open := func() *db.DB {
		d, err := db.OpenPostgres(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = d.Close() })
		return d
	}
	da := open()
	if err := db.Migrate(ctx, da, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	a = newWorld(t, da, match.Batch, 1)
	db2 := open()
	b = &world{t: t, d: db2, clock: a.clock, techs: technicians.NewService(db2, a.clock.Now), ctx: ctx, phone: 41799000000}
	b.svc = dispatch.NewService(db2, dispatch.Config{
		SLA: time.Hour, GiveUp: time.Hour, WindowLead: 30 * time.Minute, OfferStrategy: match.Batch,
		OfferTimeout: 30 * time.Second, WaveSize: 1, MaxSearchKm: 40, BatchUrgency: 1,
	}, a.clock.Now)
	for _, w := range []*world{a, b} {
		fctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); w.svc.Fleet().Run(fctx) }()
		t.Cleanup(func() { cancel(); <-done })
	}
	return a, b
}

// eventually polls cond until it holds or 10 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func candidateIDs(t *testing.T, w *world, requestID string) []string {
	t.Helper()
	got, err := w.svc.Candidates(w.ctx, requestID, 20)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(got))
	for i, c := range got {
		ids[i] = c.TechnicianID
	}
	return ids
}

// TestFleetFollowsOtherProcess: a change committed by one process reaches
// the other's index through the feed, and a lost feed connection is healed
// by a resync that also brings what was missed meanwhile.
func TestFleetFollowsOtherProcess(t *testing.T) {
	a, b := twoProcesses(t)
	t1 := a.tech("Anna", 500)
	r := a.request()
	eventually(t, "the other process to see the technician", func() bool {
		return slices.Contains(candidateIDs(t, b, r.ID), t1)
	})
	if _, err := a.techs.SetDuty(a.ctx, t1, technicians.Offline); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the other process to see the technician off duty", func() bool {
		return !slices.Contains(candidateIDs(t, b, r.ID), t1)
	})
	// A position moves the technician in the other index too.
	far := geo.Offset(zurich, 60_000, 0)
	if _, err := a.techs.SetDuty(a.ctx, t1, technicians.Available); err != nil {
		t.Fatal(err)
	}
	if _, err := a.techs.UpdateLocation(a.ctx, t1, technicians.Ping{Lat: &far.Lat, Lng: &far.Lng, At: ptr(a.clock.Now().Add(time.Second))}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the other process to see the move", func() bool {
		c, ok := b.svc.Fleet().Pool().Get(t1)
		return ok && geo.DistanceM(c.Position, far) < 1
	})

	// Cut the other process's listening connections: what changes while
	// nobody listens arrives with the resync on reconnect.
	// Only this test's schema's channels (their names end in the schema's
	// hash): other tests and sessions share the database.
	tag := fmt.Sprintf("%08x", crc32.ChecksumIEEE([]byte(b.d.Schema)))
	var cut int64
	if err := b.d.Raw(`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE query LIKE 'LISTEN %' AND query LIKE ? AND pid <> pg_backend_pid()`,
		"%_"+tag+"%").Scan(&cut).Error; err != nil || cut == 0 {
		t.Fatalf("cut %d listening connections: %v", cut, err)
	}
	t2 := a.tech("Beat", 300)
	eventually(t, "the other process to resync after losing the feed", func() bool {
		return slices.Contains(candidateIDs(t, b, r.ID), t2)
	})
}

// TestBatchAcrossProcessesNeverDoubleAssigns: two processes run batch rounds
// at the same time from their own indexes while technicians change duty and
// accept; the database keeps one live assignment per request, a technician
// within capacity, and one pending offer per technician.
func TestBatchAcrossProcessesNeverDoubleAssigns(t *testing.T) {
	a, b := twoProcesses(t)
	var techs []string
	for i := range 12 {
		techs = append(techs, a.tech(fmt.Sprint("T", i), float64(i)*300))
	}
	for range 30 {
		a.request()
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for _, w := range []*world{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 40 {
				res, err := w.svc.BatchRound(w.ctx, "", 0, nil)
				if err != nil {
					t.Error(err)
					return
				}
				for _, o := range res.Offered {
					_, _ = w.svc.Accept(w.ctx, o.TechnicianID, o.ID) // either process may win
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			id := techs[i%len(techs)]
			status := technicians.Offline
			if i%2 == 1 {
				status = technicians.Available
			}
			_, _ = a.techs.SetDuty(a.ctx, id, status)
		}
	}()
	time.AfterFunc(3*time.Second, func() { close(stop) })
	wg.Wait()
	var doubles, over, pendingTwice int64
	a.d.Raw(`SELECT COUNT(*) FROM (SELECT request_id FROM assignments WHERE ended_at IS NULL GROUP BY request_id HAVING COUNT(*) > 1) x`).Scan(&doubles)
	a.d.Raw(`SELECT COUNT(*) FROM technicians WHERE active_jobs > capacity`).Scan(&over)
	a.d.Raw(`SELECT COUNT(*) FROM (SELECT technician_id FROM offers WHERE state = 'pending' GROUP BY technician_id HAVING COUNT(*) > 1) x`).Scan(&pendingTwice)
	var assigned int64
	a.d.Raw(`SELECT COUNT(*) FROM assignments`).Scan(&assigned)
	if doubles != 0 || over != 0 || pendingTwice != 0 {
		t.Fatalf("double assignments %d, over capacity %d, technicians with two pending offers %d", doubles, over, pendingTwice)
	}
	if assigned == 0 {
		t.Fatal("no request was assigned at all")
	}
}

// TestBatchRoundStatements: a batch round runs a constant number of
// statements, whatever the number of waiting requests.
func TestBatchRoundStatements(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		w := newWorld(t, d, match.Batch, 1)
		const n = 40
		for i := range n {
			w.tech(fmt.Sprint("T", i), float64(i)*2000)
			w.requestAt(geo.Offset(zurich, float64(i)*2000, 100))
		}
		res, err := w.svc.BatchRound(w.ctx, "", 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Offered) != n {
			t.Fatalf("%d waiting: %d offers", n, len(res.Offered))
		}
		if res.Statements > 10 {
			t.Fatalf("%d waiting: %d statements", n, res.Statements)
		}
		t.Logf("%d waiting, %d offers: %d statements", n, len(res.Offered), res.Statements)
	})
}

func (w *world) requestAt(p geo.Point) dispatch.Request {
	w.t.Helper()
	out, err := w.svc.Create(w.ctx, dispatch.Caller{Role: "customer", Subject: "carla"}, "", dispatch.NewRequest{Skill: "wifi_setup", Lat: &p.Lat, Lng: &p.Lng})
	if err != nil {
		w.t.Fatal(err)
	}
	return out.Request
}

func ptr[T any](v T) *T { return &v }

// TestExpectedWaitCountsTheOneAsked: while a technician close by decides on
// the request's offer, the customer is told about them (their drive and the
// rest of an answer), not that nobody is free, and what the figure is made
// of; a second request behind it waits for the next one free.
func TestExpectedWaitCountsTheOneAsked(t *testing.T) {
	for _, strategy := range []string{match.Sequential, match.Batch} {
		t.Run(strategy, func(t *testing.T) {
			dbtest.Each(t, func(t *testing.T, d *db.DB) {
				w := newWorld(t, d, strategy, 1)
				carla := dispatch.Caller{Role: "customer", Subject: "carla"}
				near := w.tech("Anna", 89)
				r := w.request()
				before, err := w.svc.View(w.ctx, carla, r.ID)
				if err != nil {
					t.Fatal(err)
				}
				if e := before.ExpectedWait; e == nil || e.FreeTechniciansNear != 1 || e.BeingAsked != 0 ||
					!slices.Equal(e.BasedOn, []string{"free_technician_eta", "queue_ahead", "answer_time"}) {
					t.Fatalf("before any offer: %+v", e)
				}
				var offered []dispatch.Offer
				if strategy == match.Batch {
					res, err := w.svc.BatchRound(w.ctx, "", 0, nil)
					if err != nil {
						t.Fatal(err)
					}
					offered = res.Offered
				} else {
					offered = w.match(r.ID).Offered
				}
				if len(offered) != 1 || offered[0].TechnicianID != near {
					t.Fatalf("offered %+v", offered)
				}
				w.clock.Advance(time.Second) // past the cached figure
				v, err := w.svc.View(w.ctx, carla, r.ID)
				if err != nil {
					t.Fatal(err)
				}
				if e := v.ExpectedWait; e == nil || e.FreeTechniciansNear != 1 || e.BeingAsked != 1 || e.Minutes > 5 ||
					!slices.Equal(e.BasedOn, []string{"asked_technician_eta", "answer_time"}) {
					t.Fatalf("while Anna decides: %+v", e)
				}
				w.clock.Advance(time.Second)
				r2 := w.request()
				v2, err := w.svc.View(w.ctx, carla, r2.ID)
				if err != nil {
					t.Fatal(err)
				}
				if e := v2.ExpectedWait; e == nil || e.AheadInQueue != 1 || e.BeingAsked != 0 || e.Minutes < 15 ||
					!slices.Equal(e.BasedOn, []string{"sla"}) {
					t.Fatalf("behind the first request: %+v", e)
				}
			})
		})
	}
}
