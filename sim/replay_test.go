package sim_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onsite/onsite/dispatch"
	"github.com/onsite/onsite/dispatch/match"
	"github.com/onsite/onsite/geo"
	"github.com/onsite/onsite/internal/db"
	"github.com/onsite/onsite/internal/dbtest"
	"github.com/onsite/onsite/sim"
	"github.com/onsite/onsite/technicians"
)

// replayDay is a small day: technicians on duty the whole day, ASAP requests
// over two hours, two skills. Nobody drops a job (the replay does not model
// drops). %d technicians, %v requests an hour.
const replayDay = `
name: replay
seeds: 1
start_hour: 8
hours: 2
city: {center: {lat: 47.3769, lng: 8.5417}, radius_km: 6}
technicians:
  count: %d
  capacity: 1
  min_skills: 1
  skills: {wifi: 0.9, tv: 0.4}
  shifts: [{start_hour: 8, end_hour: 20, share: 1}]
  travel: {car: {share: 0.7, speed_kmh: 30}, bike: {share: 0.3, speed_kmh: 15}}
demand:
  per_hour: [%v, %v]
  skills: {wifi: 3, tv: 1}
  asap_share: 1
behaviour:
  accept_probability: 0.7
  accept_spread: 0.2
  no_response_share: 0.1
  drop_share: 0
  response_median: 60s
  response_sigma: 0.6
  service_minutes: {default: 30}
  detour: 1.25
dispatch:
  sla: 1h
  give_up: 1h
  offer_timeout: 3m
  batch_window: 30s
  batch_urgency: 1
  strategies: [batch]
`

type replayClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *replayClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *replayClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.t) {
		c.t = t
	}
}

// TestReplayedDayServerDecidesAsSimulator runs a day in the simulator with
// the batch strategy, then replays it into the real server (dispatch and
// technicians services on the database): the same technicians, positions,
// skills and shifts, the requests at the same times, a batch round at each
// of the simulator's ticks, and the simulator's answers, arrivals and
// completions applied at their times. At every tick the server must offer
// the same technicians for the same requests, open as long, as the
// simulator did.
func TestReplayedDayServerDecidesAsSimulator(t *testing.T) {
	tests := []struct {
		name    string
		techs   int
		perHour float64
	}{
		{"ample supply", 20, 25},
		{"short supply", 10, 40}, // many requests wait, are given up; urgency and widening matter
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc, err := sim.Parse([]byte(fmt.Sprintf(replayDay, tt.techs, tt.perHour, tt.perHour)))
			if err != nil {
				t.Fatal(err)
			}
			replayDayOf(t, sc)
		})
	}
}

func replayDayOf(t *testing.T, sc sim.Scenario) {
	var tr sim.Trace
	v := sim.Variant{Name: "batch", Strategy: "batch", Batch: sc.Dispatch.BatchWindow.Duration, Urgency: sc.Dispatch.BatchUrgency, Trace: &tr}
	res, err := sim.Run(sc, v, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Offers < 40 || res.Declined == 0 || res.Expired == 0 {
		t.Fatalf("the day is too tame to test much: %+v", res)
	}
	t.Logf("simulated: %d requests, %d offers, %d accepted, %d declined, %d expired, %d unfulfilled",
		res.Requests, res.Offers, res.Accepted, res.Declined, res.Expired, res.Unfulfilled)
	dbtest.Each(t, func(t *testing.T, d *db.DB) { replay(t, d, sc, &tr) })
}

type replayer struct {
	t        *testing.T
	ctx      context.Context
	clock    *replayClock
	techs    *technicians.Service
	svc      *dispatch.Service
	tech     map[string]string // sim id → server id
	simOf    map[string]string // server id → sim id (technicians and requests)
	req      map[string]string // sim id → server id
	place    map[string]geo.Point
	offer    map[[2]string]string // (sim request, sim technician) → the server's open offer
	subMicro int                  // expiries due less than a microsecond after the simulator's
}

func replay(t *testing.T, d *db.DB, sc sim.Scenario, tr *sim.Trace) {
	ctx := context.Background()
	start := tr.Events[0].At
	for _, x := range tr.Technicians {
		if x.ShiftStart.Before(start) {
			start = x.ShiftStart
		}
	}
	c := &replayClock{t: start}
	r := &replayer{t: t, ctx: ctx, clock: c, techs: technicians.NewService(d, c.Now),
		tech: map[string]string{}, simOf: map[string]string{}, req: map[string]string{}, place: map[string]geo.Point{}, offer: map[[2]string]string{}}
	r.svc = dispatch.NewService(d, dispatch.Config{
		SLA: sc.Dispatch.SLA.Duration, GiveUp: sc.Dispatch.GiveUp.Duration, OfferStrategy: match.Batch,
		BatchWindow: sc.Dispatch.BatchWindow.Duration, BatchUrgency: sc.Dispatch.BatchUrgency,
		OfferTimeout: sc.Dispatch.OfferTimeout.Duration, WaveSize: 1, MaxSearchKm: 40,
		ETA: geo.StraightLine{Detour: sc.Behaviour.Detour},
	}, c.Now)
	r.onboard(sc, tr)

	pending := tr.Requests // created when the clock reaches them
	ticks, compared := 0, 0
	for i := 0; i < len(tr.Events); i++ {
		e := tr.Events[i]
		for len(pending) > 0 && !pending[0].Created.After(e.At) {
			c.Set(pending[0].Created) // at its own time, not the next event's
			r.create(pending[0])
			pending = pending[1:]
		}
		c.Set(e.At)
		switch e.Kind {
		case sim.TraceBatch:
			ticks++
			var want []sim.TraceEvent
			for i+1 < len(tr.Events) && tr.Events[i+1].Kind == sim.TraceOffer && tr.Events[i+1].At.Equal(e.At) {
				i++
				want = append(want, tr.Events[i])
			}
			compared += len(want)
			r.tick(e.At, want)
		case sim.TraceOffer:
			t.Fatalf("%s: an offer outside a batch tick: %+v", e.At.Format("15:04:05"), e)
		case sim.TraceAccept:
			id := r.openOffer(e)
			if _, err := r.svc.Accept(ctx, r.tech[e.Technician], id); err != nil {
				t.Fatalf("%s: accept of %s by %s: %v", e.At.Format("15:04:05.000"), e.Request, e.Technician, err)
			}
			if _, err := r.svc.Depart(ctx, r.tech[e.Technician], r.req[e.Request]); err != nil {
				t.Fatal(err)
			}
		case sim.TraceDecline:
			if _, err := r.svc.Decline(ctx, r.tech[e.Technician], r.openOffer(e)); err != nil {
				t.Fatalf("decline: %v", err)
			}
		case sim.TraceExpire:
			id := r.openOffer(e)
			err := r.svc.ExpireOffer(ctx, id)
			var early *dispatch.NotDueError
			if errors.As(err, &early) && early.Due.Sub(e.At) < time.Microsecond {
				// The server's clock keeps microseconds, but a batch offer's
				// expiry (now + a timeout cut to the useful time) keeps
				// nanoseconds on SQLite: due within the microsecond after.
				c.Set(e.At.Truncate(time.Microsecond).Add(time.Microsecond))
				r.subMicro++
				err = r.svc.ExpireOffer(ctx, id)
			}
			if err != nil {
				t.Fatalf("%s: expire: %v", e.At.Format("15:04:05.000000000"), err)
			}
		case sim.TraceArrive:
			r.move(e.Technician, r.place[e.Request])
			if _, err := r.svc.Arrive(ctx, r.tech[e.Technician], r.req[e.Request]); err != nil {
				t.Fatal(err)
			}
		case sim.TraceDone:
			if _, err := r.svc.Complete(ctx, r.tech[e.Technician], r.req[e.Request], dispatch.JobStep{Outcome: "fixed"}); err != nil {
				t.Fatal(err)
			}
		case sim.TraceGiveUp:
			if err := r.svc.CheckDeadline(ctx, r.req[e.Request]); err != nil {
				t.Fatal(err)
			}
			got, err := r.svc.Get(ctx, dispatch.Caller{Role: "ops"}, r.req[e.Request])
			if err != nil || got.State != dispatch.Unfulfilled {
				t.Fatalf("%s: %s given up in the simulator, %s on the server (%v)", e.At.Format("15:04:05"), e.Request, got.State, err)
			}
		}
	}
	if compared == 0 {
		t.Fatal("no offers compared")
	}
	t.Logf("%d batch ticks, %d offers: the server decided as the simulator at every one (%d expiries due within the microsecond after the simulator's)",
		ticks, compared, r.subMicro)
}

// onboard creates the technicians in the simulator's order (server ids are
// time-ordered, so the last tie-break of the ranking, by id, stays the same),
// certified, with their shift, on duty at their home.
func (r *replayer) onboard(sc sim.Scenario, tr *sim.Trace) {
	t := r.t
	skills := map[string]bool{}
	for _, x := range tr.Technicians {
		for _, s := range x.Skills {
			if !skills[s] {
				skills[s] = true
				if _, err := r.techs.CreateSkill(r.ctx, s, s); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	var ids []string
	radius := 40.0
	for i, x := range tr.Technicians {
		speed, capacity := x.SpeedKmh, x.Capacity
		tech, err := r.techs.Create(r.ctx, technicians.NewTechnician{Name: x.ID, Phone: fmt.Sprintf("+4179%07d", i),
			TravelMode: x.Mode, SpeedKmh: &speed, RadiusKm: &radius, Capacity: &capacity})
		if err != nil {
			t.Fatal(err)
		}
		r.tech[x.ID], r.simOf[tech.ID] = tech.ID, x.ID
		ids = append(ids, tech.ID)
		for _, s := range x.Skills {
			if _, err := r.techs.Certify(r.ctx, tech.ID, s, nil, x.ShiftEnd.Add(30*24*time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := r.techs.SetShifts(r.ctx, tech.ID, []technicians.ShiftInput{{Start: x.ShiftStart, End: x.ShiftEnd}}); err != nil {
			t.Fatal(err)
		}
		if _, err := r.techs.SetDuty(r.ctx, tech.ID, technicians.Available); err != nil {
			t.Fatal(err)
		}
		r.move(x.ID, x.Home)
	}
	if !sort.StringsAreSorted(ids) {
		t.Fatal("server ids are not in creation order: the ranking's last tie-break would differ")
	}
}

func (r *replayer) move(simTech string, p geo.Point) {
	at := r.clock.Now()
	if _, err := r.techs.UpdateLocation(r.ctx, r.tech[simTech], technicians.Ping{Lat: &p.Lat, Lng: &p.Lng, At: &at}); err != nil {
		r.t.Fatal(err)
	}
}

func (r *replayer) create(q sim.TraceRequest) {
	if !q.WindowStart.IsZero() {
		r.t.Fatal("the replay handles ASAP requests only")
	}
	out, err := r.svc.Create(r.ctx, dispatch.Caller{Role: "customer", Subject: "carla"}, "",
		dispatch.NewRequest{Skill: q.Skill, Lat: &q.Place.Lat, Lng: &q.Place.Lng, Address: q.ID})
	if err != nil {
		r.t.Fatal(err)
	}
	r.req[q.ID], r.simOf[out.Request.ID], r.place[q.ID] = out.Request.ID, q.ID, q.Place
}

func (r *replayer) openOffer(e sim.TraceEvent) string {
	k := [2]string{e.Request, e.Technician}
	id, ok := r.offer[k]
	if !ok {
		r.t.Fatalf("%s: %s for an offer the server did not make: %s to %s", e.At.Format("15:04:05"), e.Kind, e.Request, e.Technician)
	}
	delete(r.offer, k)
	return id
}

// tick runs the server's batch round and compares its offers with the
// simulator's at the same tick.
func (r *replayer) tick(at time.Time, want []sim.TraceEvent) {
	res, err := r.svc.BatchRound(r.ctx, "", 0, nil)
	if err != nil {
		r.t.Fatal(err)
	}
	show := func(req, tech string, expires time.Time) string {
		return fmt.Sprintf("%s→%s (open %s)", req, tech, expires.Sub(at).Round(time.Millisecond))
	}
	var w, g []string
	for _, e := range want {
		w = append(w, show(e.Request, e.Technician, e.Expires))
	}
	for _, o := range res.Offered {
		g = append(g, show(r.simOf[o.RequestID], r.simOf[o.TechnicianID], o.ExpiresAt))
		r.offer[[2]string{r.simOf[o.RequestID], r.simOf[o.TechnicianID]}] = o.ID
	}
	slices.Sort(w)
	slices.Sort(g)
	if !slices.Equal(w, g) {
		r.t.Fatalf("tick %s: the simulator offered\n  %s\nthe server\n  %s", at.Format("15:04:05"), strings.Join(w, "\n  "), strings.Join(g, "\n  "))
	}
}
