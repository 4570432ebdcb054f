package dispatch_test

import (
	"testing"
	"time"

	"github.com/onsite/onsite/dispatch"
	"github.com/onsite/onsite/dispatch/match"
	"github.com/onsite/onsite/internal/db"
	"github.com/onsite/onsite/internal/dbtest"
)

// TestEscalationSteps: a request nobody can reach in time is flagged at risk
// once, then escalated step by step as it stays at risk (a wider search at
// once, a bigger wave after 2 minutes, a page after 5, a text to the
// customer with an honest estimate after 10), each step once and each an
// event; it leaves at risk only with time to spare.
func TestEscalationSteps(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		w := newWorld(t, d, match.Batch, 1)
		// Give-up after the deadline, so late arrivals are still sent.
		w.svc = dispatch.NewService(d, dispatch.Config{SLA: time.Hour, GiveUp: 2 * time.Hour, WindowLead: 30 * time.Minute,
			OfferStrategy: match.Batch, OfferTimeout: 30 * time.Second, WaveSize: 1, MaxSearchKm: 40, BatchUrgency: 1}, w.clock.Now)
		far := []string{w.tech("A", 22000), w.tech("B", 23000), w.tech("C", 24000), w.tech("D", 25000)} // 66-78 min away at 25 km/h
		r := w.request()
		round := func() dispatch.BatchResult {
			t.Helper()
			res, err := w.svc.BatchRound(w.ctx, "", 0, nil)
			if err != nil {
				t.Fatal(err)
			}
			return res
		}
		load := func() dispatch.Request {
			t.Helper()
			var got dispatch.Request
			if err := d.Where("id = ?", r.ID).First(&got).Error; err != nil {
				t.Fatal(err)
			}
			return got
		}
		steps := func() []string {
			t.Helper()
			evs, err := w.svc.Events(w.ctx, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, e := range evs {
				switch e.Type {
				case "escalated":
					out = append(out, e.Data["step"].(string))
				case "at_risk", "back_on_track":
					out = append(out, e.Type)
				}
			}
			return out
		}
		declineAll := func(res dispatch.BatchResult) {
			t.Helper()
			for _, o := range res.Offered {
				if _, err := w.svc.Decline(w.ctx, o.TechnicianID, o.ID); err != nil {
					t.Fatal(err)
				}
			}
		}
		start := w.clock.Now()

		res := round()
		if len(res.Offered) != 1 || res.Offered[0].TechnicianID != far[0] {
			t.Fatalf("first round: %+v", res.Offered)
		}
		got := load()
		if !got.AtRisk || got.AtRiskSince == nil || !got.AtRiskSince.Equal(db.UTC(start)) || got.Escalation != int(match.StepWiderSearch) {
			t.Fatalf("after the first round: at risk %v since %v, escalation %d", got.AtRisk, got.AtRiskSince, got.Escalation)
		}
		declineAll(res)

		w.clock.Advance(2 * time.Minute)
		res = round()
		if len(res.Offered) != 3 {
			t.Fatalf("bigger wave: %d offers, want 3 at once", len(res.Offered))
		}
		for i, o := range res.Offered {
			if o.TechnicianID == far[0] || o.Rank != i+1 {
				t.Fatalf("bigger wave offer %d: %+v", i, o)
			}
		}
		declineAll(res)

		w.clock.Advance(3 * time.Minute)
		round() // everyone declined: nobody left, still at risk, paged
		w.clock.Advance(5 * time.Minute)
		round()
		w.clock.Advance(time.Minute)
		round() // nothing more: each step once
		want := []string{"at_risk", "wider_search", "bigger_wave", "paged", "customer_told"}
		if got := steps(); !equal(got, want) {
			t.Fatalf("steps %v, want %v", got, want)
		}
		var owed []dispatch.Event
		if err := d.Where("request_id = ? AND type = ? AND messages_owed", r.ID, "escalated").Find(&owed).Error; err != nil || len(owed) != 1 {
			t.Fatalf("escalations owing the customer a text: %d %v, want the last step only", len(owed), err)
		}
		if got := load(); got.Escalation != int(match.StepCustomerTold) {
			t.Fatalf("escalation %d", got.Escalation)
		}

		// Someone close comes on duty: the request is on track again, and
		// no step is taken twice.
		w.tech("Near", 800)
		w.clock.Advance(time.Minute)
		res = round()
		if len(res.Offered) != 1 {
			t.Fatalf("near technician: %+v", res.Offered)
		}
		if got := load(); got.AtRisk || got.AtRiskSince != nil || got.Escalation != int(match.StepCustomerTold) {
			t.Fatalf("back on track: at risk %v since %v, escalation %d", got.AtRisk, got.AtRiskSince, got.Escalation)
		}
		if got := steps(); !equal(got, append(want, "back_on_track")) {
			t.Fatalf("steps %v", got)
		}
	})
}

// TestSequentialEscalationWidensTheWave: the sequential strategy offers one
// technician at a time, and three at once once the request has been at risk
// for two minutes.
func TestSequentialEscalationWidensTheWave(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		w := newWorld(t, d, match.Sequential, 1)
		for i := range 5 {
			w.tech(string(rune('A'+i)), 22000+float64(i)*500)
		}
		r := w.request()
		res := w.match(r.ID)
		if len(res.Offered) != 1 || !res.AtRisk {
			t.Fatalf("first round: %+v", res)
		}
		if _, err := w.svc.Decline(w.ctx, res.Offered[0].TechnicianID, res.Offered[0].ID); err != nil {
			t.Fatal(err)
		}
		w.clock.Advance(2 * time.Minute)
		if res := w.match(r.ID); len(res.Offered) != 3 {
			t.Fatalf("after two minutes at risk: %d offers, want 3", len(res.Offered))
		}
	})
}

// TestOneRetryChainPerRequest: a request nobody can take is matched again
// by one chain of retries, however many rounds run meanwhile (its task, the
// sweep, answers): before, each sweep started another chain.
func TestOneRetryChainPerRequest(t *testing.T) {
	t.Parallel()
	for _, strategy := range []string{match.Sequential, match.Wave} {
		t.Run(strategy, func(t *testing.T) {
			dbtest.Each(t, func(t *testing.T, d *db.DB) {
				w := newWorld(t, d, strategy, 3)
				r := w.request() // no technician at all
				retries := func() int64 {
					t.Helper()
					var n int64
					if err := d.Table("outbox").Where("kind = ? AND payload LIKE ? AND process_at > created_at", dispatch.TaskMatch, "%"+r.ID+"%").
						Count(&n).Error; err != nil {
						t.Fatal(err)
					}
					return n
				}
				for range 3 {
					if res := w.match(r.ID); len(res.Offered) != 0 {
						t.Fatalf("%s: offered %+v", strategy, res.Offered)
					}
					w.clock.Advance(10 * time.Second)
				}
				if _, err := w.svc.Sweep(w.ctx); err != nil {
					t.Fatal(err)
				}
				if n := retries(); n != 1 {
					t.Fatalf("%s: %d retry chains within one retry period, want 1", strategy, n)
				}
				w.clock.Advance(time.Second) // the retry is due: its round schedules the next
				w.match(r.ID)
				w.match(r.ID)
				if n := retries(); n != 2 {
					t.Fatalf("%s: %d retries after the first came due, want 2", strategy, n)
				}
			})
		})
	}
}
