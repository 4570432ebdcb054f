package app_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onsite/onsite/internal/apitest"
	"github.com/onsite/onsite/internal/app"
	"github.com/onsite/onsite/internal/auth"
	"github.com/onsite/onsite/internal/db"
	"github.com/onsite/onsite/internal/dbtest"
	"github.com/onsite/onsite/webhooks"
)

// testClock is real time moved on by the test.
type testClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}

// hookWorker stands in for asynq and the periodic sweep on the test's
// clock: it keeps the wake-ups Onsite queues and, when the test says so,
// runs those that are due, one at a time, with the real delivery code.
type hookWorker struct {
	clk *testClock
	svc *webhooks.Service

	mu     sync.Mutex
	queued []queuedWake
}

type queuedWake struct {
	id string
	at time.Time
}

func (w *hookWorker) Wake(_ context.Context, k webhooks.Wake) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.queued = append(w.queued, queuedWake{id: k.DeliveryID, at: w.clk.Now().Add(k.In)})
}

// run attempts every wake-up that is due, and those the attempts queue,
// until none is due.
func (w *hookWorker) run(t *testing.T) {
	t.Helper()
	for {
		now := w.clk.Now()
		w.mu.Lock()
		id := ""
		for i, q := range w.queued {
			if !q.at.After(now) {
				id = q.id
				w.queued = append(w.queued[:i], w.queued[i+1:]...)
				break
			}
		}
		w.mu.Unlock()
		if id == "" {
			return
		}
		if err := w.svc.Attempt(context.Background(), id); err != nil {
			t.Fatalf("attempt %s: %v", id, err)
		}
	}
}

// tick moves the clock on, runs the sweep as the periodic job would, and
// runs what is due.
func (w *hookWorker) tick(t *testing.T, d time.Duration) {
	t.Helper()
	w.clk.Advance(d)
	if _, err := w.svc.WakeDue(context.Background(), 500); err != nil {
		t.Fatal(err)
	}
	w.run(t)
}

func (w *hookWorker) waiting() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.queued)
}

// startHooked runs a server without task workers on a test clock, whose
// webhook deliveries the returned worker drives.
func startHooked(t *testing.T, engine string) (*apitest.Server, *hookWorker) {
	t.Helper()
	hw := &hookWorker{clk: &testClock{}}
	s := apitest.Start(t, engine, dbtest.RedisDBApp, apitest.Env("ONSITE_WORKERS", "false"),
		apitest.Clock(hw.clk.Now), apitest.With(app.WithWebhookWaker(hw)))
	hw.svc = s.App.Webhooks
	return s, hw
}

// hookBody is what an endpoint receives.
type hookBody struct {
	ID      string    `json:"id"`
	EventID string    `json:"event_id"`
	Type    string    `json:"type"`
	At      time.Time `json:"at"`
	Seq     int       `json:"seq"`
	Request struct {
		ID           string  `json:"id"`
		State        string  `json:"state"`
		TechnicianID *string `json:"technician_id"`
		CancelReason *string `json:"cancel_reason"`
		Visits       int     `json:"visits"`
		Outcome      *string `json:"outcome"`
	} `json:"request"`
}

// hookRecord is an entry of the delivery log.
type hookRecord struct {
	ID          string     `json:"id"`
	EndpointID  string     `json:"endpoint_id"`
	EventID     string     `json:"event_id"`
	EventType   string     `json:"event_type"`
	RequestID   string     `json:"request_id"`
	Seq         int        `json:"seq"`
	State       string     `json:"state"`
	Attempts    int        `json:"attempts"`
	NextAt      *time.Time `json:"next_attempt_at"`
	GiveUpAfter *time.Time `json:"give_up_after"`
	LastStatus  *int       `json:"last_status"`
	LastError   *string    `json:"last_error"`
	CreatedAt   time.Time  `json:"created_at"`
	DeliveredAt *time.Time `json:"delivered_at"`
	FailedAt    *time.Time `json:"failed_at"`
	Body        hookBody   `json:"body"`
}

type hookLog struct {
	Items []hookRecord `json:"items"`
	Total int          `json:"total"`
}

// hookCall is a delivery an endpoint took (answered 2xx).
type hookCall struct {
	DeliveryID string
	Attempt    int
	Body       hookBody
}

// hookReceiver is an owner's endpoint on 127.0.0.1 (reachable because
// apitest sets ONSITE_WEBHOOK_ALLOW_PRIVATE): it checks each call's
// signature and headers, answers 503 while down, and keeps what it took.
type hookReceiver struct {
	URL string

	mu     sync.Mutex
	secret string
	down   bool
	calls  int
	got    []hookCall
}

func newHookReceiver(t *testing.T) *hookReceiver {
	t.Helper()
	h := &hookReceiver{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		h.calls++
		if h.down {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		ts, v1, _ := strings.Cut(strings.TrimPrefix(r.Header.Get("Onsite-Signature"), "t="), ",v1=")
		m := hmac.New(sha256.New, []byte(h.secret))
		m.Write([]byte(ts + "."))
		m.Write(raw)
		if !hmac.Equal([]byte(hex.EncodeToString(m.Sum(nil))), []byte(v1)) {
			t.Errorf("bad signature %q", r.Header.Get("Onsite-Signature"))
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var b hookBody
		if err := json.Unmarshal(raw, &b); err != nil {
			t.Errorf("body %s: %v", raw, err)
		}
		if r.Header.Get("Onsite-Delivery-Id") != b.ID || r.Header.Get("Onsite-Event-Id") != b.EventID {
			t.Errorf("headers %v for body %s", r.Header, raw)
		}
		attempt, _ := strconv.Atoi(r.Header.Get("Onsite-Attempt"))
		h.got = append(h.got, hookCall{DeliveryID: b.ID, Attempt: attempt, Body: b})
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	h.URL = srv.URL + "/onsite"
	return h
}

func (h *hookReceiver) setDown(down bool) {
	h.mu.Lock()
	h.down = down
	h.mu.Unlock()
}

func (h *hookReceiver) taken() []hookCall {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hookCall(nil), h.got...)
}

func (h *hookReceiver) callCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls
}

// registerHook registers the receiver for the owner and returns the
// endpoint's id.
func registerHook(t *testing.T, s *apitest.Server, owner string, h *hookReceiver) string {
	t.Helper()
	var ep struct{ ID, Secret string }
	h.mu.Lock()
	defer h.mu.Unlock()
	s.Must(http.StatusCreated, "POST", "/v1/webhooks", owner, map[string]string{"url": h.URL}, &ep)
	h.secret = ep.Secret
	return ep.ID
}

func deliveryLog(t *testing.T, s *apitest.Server, owner, endpointID, query string) hookLog {
	t.Helper()
	var l hookLog
	s.Must(http.StatusOK, "GET", "/v1/webhooks/"+endpointID+"/deliveries"+query, owner, nil, &l)
	return l
}

// TestWebhooksSurviveAnOutage: an endpoint is down for ten minutes while
// two requests change state seven times; the deliveries wait in the
// database, retried with backoff, and when the endpoint is back each
// arrives exactly once, in sequence order per request, carrying the
// request as its event left it.
func TestWebhooksSurviveAnOutage(t *testing.T) {
	t.Parallel()
	for _, engine := range apitest.Engines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			s, hw := startHooked(t, engine)
			techs := onboard(t, s, 1000)
			ops, owner := s.Token(auth.Ops, "alice"), s.Token(auth.Customer, "owner-outage")
			tech := s.Token(auth.Technician, techs[0])
			recv := newHookReceiver(t)
			ep := registerHook(t, s, owner, recv)
			recv.setDown(true)

			var a, b fullRequest
			s.Must(http.StatusCreated, "POST", "/v1/requests", owner, map[string]any{"skill": "router_replace", "lat": 47.3769, "lng": 8.5417}, &a)
			s.Must(http.StatusOK, "POST", "/v1/requests/"+a.ID+"/assign", ops, map[string]string{"technician_id": techs[0]}, nil)
			s.Must(http.StatusOK, "POST", "/v1/jobs/"+a.ID+"/en-route", tech, nil, nil)
			s.Must(http.StatusOK, "POST", "/v1/jobs/"+a.ID+"/arrived", tech, nil, nil)
			s.Must(http.StatusOK, "POST", "/v1/jobs/"+a.ID+"/complete", tech, map[string]string{"outcome": "fixed"}, nil)
			s.Must(http.StatusCreated, "POST", "/v1/requests", owner, map[string]any{"skill": "router_replace", "lat": 47.3769, "lng": 8.5417}, &b)
			s.Must(http.StatusOK, "POST", "/v1/requests/"+b.ID+"/cancel", owner, map[string]string{"reason": "fixed itself"}, nil)

			hw.tick(t, 0) // the sweep wakes the first of each request, which fails; the others wait in line
			for range 20 {
				hw.tick(t, 30*time.Second)
			}
			l := deliveryLog(t, s, owner, ep, "")
			if l.Total != 7 || len(l.Items) != 7 {
				t.Fatalf("log after the outage: %d entries, total %d", len(l.Items), l.Total)
			}
			for _, d := range l.Items {
				if d.State != "pending" || d.NextAt == nil || d.GiveUpAfter == nil {
					t.Fatalf("after 10 minutes down: %+v", d)
				}
				switch d.Seq {
				case 1:
					if d.Attempts < 4 || d.LastStatus == nil || *d.LastStatus != 503 || d.LastError == nil || !strings.Contains(*d.LastError, "503") {
						t.Fatalf("the first in line was not retried: %+v", d)
					}
				default:
					if d.Attempts != 0 {
						t.Fatalf("sent before the one ahead of it: %+v", d)
					}
				}
			}
			if len(recv.taken()) != 0 || recv.callCount() < 8 {
				t.Fatalf("during the outage: %d calls, %d taken", recv.callCount(), len(recv.taken()))
			}

			recv.setDown(false)
			hw.tick(t, 75*time.Minute) // past the longest wait
			l = deliveryLog(t, s, owner, ep, "")
			for _, d := range l.Items {
				if d.State != "delivered" || d.DeliveredAt == nil || d.NextAt != nil || d.LastStatus == nil || *d.LastStatus != 204 {
					t.Fatalf("after the outage: %+v", d)
				}
			}
			got := recv.taken()
			seen := map[string]int{}
			seqs := map[string][]int{}
			bodies := map[string][]hookBody{}
			for _, c := range got {
				seen[c.DeliveryID]++
				seqs[c.Body.Request.ID] = append(seqs[c.Body.Request.ID], c.Body.Seq)
				bodies[c.Body.Request.ID] = append(bodies[c.Body.Request.ID], c.Body)
			}
			if len(got) != 7 || len(seen) != 7 {
				t.Fatalf("%d deliveries taken, %d distinct, want 7 each", len(got), len(seen))
			}
			for _, d := range l.Items {
				if seen[d.ID] != 1 {
					t.Fatalf("delivery %s (%s) taken %d times", d.ID, d.EventType, seen[d.ID])
				}
			}
			want := map[string][]string{
				a.ID: {"created/searching", "assigned/assigned", "en_route/en_route", "on_site/on_site", "completed/completed"},
				b.ID: {"created/searching", "cancelled/cancelled"},
			}
			for id, w := range want {
				if fmt.Sprint(seqs[id]) != fmt.Sprint(seqNumbers(len(w))) {
					t.Fatalf("request %s arrived in the order %v", id, seqs[id])
				}
				for i, body := range bodies[id] {
					if got := body.Type + "/" + body.Request.State; got != w[i] {
						t.Fatalf("request %s, delivery %d: %s, want %s (the request as of its event)", id, i+1, got, w[i])
					}
				}
			}
			// The bodies are the request as each event left it, not as it is now.
			ab := bodies[a.ID]
			if ab[0].Request.TechnicianID != nil || ab[1].Request.TechnicianID == nil || *ab[1].Request.TechnicianID != techs[0] ||
				ab[2].Request.Visits != 0 || ab[3].Request.Visits != 1 || ab[3].Request.Outcome != nil || ab[4].Request.Outcome == nil {
				t.Fatalf("request %s: bodies not as of their events: %+v", a.ID, ab)
			}
			bb := bodies[b.ID]
			if bb[0].Request.CancelReason != nil || bb[1].Request.CancelReason == nil || *bb[1].Request.CancelReason != "fixed itself" {
				t.Fatalf("request %s: bodies not as of their events: %+v", b.ID, bb)
			}

			// The log: newest first, a filter, and pages with the total.
			for i := 1; i < len(l.Items); i++ {
				if l.Items[i].CreatedAt.After(l.Items[i-1].CreatedAt) {
					t.Fatalf("log not newest first: %v after %v", l.Items[i].CreatedAt, l.Items[i-1].CreatedAt)
				}
			}
			if l.Items[0].RequestID != b.ID || l.Items[0].EventType != "cancelled" || l.Items[0].Body.ID != l.Items[0].ID {
				t.Fatalf("newest entry %+v", l.Items[0])
			}
			page := deliveryLog(t, s, owner, ep, "?state=delivered&limit=2&offset=1")
			if page.Total != 7 || len(page.Items) != 2 || page.Items[0].ID != l.Items[1].ID || page.Items[1].ID != l.Items[2].ID {
				t.Fatalf("page %+v", page)
			}
			if p := deliveryLog(t, s, owner, ep, "?state=failed"); p.Total != 0 || len(p.Items) != 0 {
				t.Fatalf("failed %+v", p)
			}
		})
	}
}

func seqNumbers(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i + 1
	}
	return out
}

// TestWebhooksGiveUpAfterADay: an endpoint that never answers keeps its
// deliveries pending for 24 hours, then they fail with the reason; the
// owner redelivers them (failed, then delivered ones), and an attempt
// whose process died is made again once its lease lapses, under the same
// delivery id.
func TestWebhooksGiveUpAfterADay(t *testing.T) {
	t.Parallel()
	for _, engine := range apitest.Engines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			s, hw := startHooked(t, engine)
			onboard(t, s) // the skill
			owner := s.Token(auth.Customer, "owner-gives-up")
			recv := newHookReceiver(t)
			ep := registerHook(t, s, owner, recv)
			recv.setDown(true)
			var req fullRequest
			s.Must(http.StatusCreated, "POST", "/v1/requests", owner, map[string]any{"skill": "router_replace", "lat": 47.3769, "lng": 8.5417}, &req)
			s.Must(http.StatusOK, "POST", "/v1/requests/"+req.ID+"/cancel", owner, map[string]string{"reason": "fixed itself"}, nil)
			start := hw.clk.Now()
			hw.tick(t, 0)
			for hw.clk.Now().Sub(start) < 23*time.Hour+30*time.Minute {
				hw.tick(t, 30*time.Minute)
			}
			l := deliveryLog(t, s, owner, ep, "")
			if l.Total != 2 {
				t.Fatalf("log %+v", l)
			}
			first, second := l.Items[1], l.Items[0]
			if first.Seq != 1 || second.Seq != 2 || first.State != "pending" || second.State != "pending" {
				t.Fatalf("given up before 24 hours: %+v, %+v", first, second)
			}
			if first.Attempts < 20 || first.GiveUpAfter == nil || first.GiveUpAfter.Sub(first.CreatedAt) != 24*time.Hour {
				t.Fatalf("after 23.5 hours: %+v", first)
			}

			for hw.clk.Now().Sub(start) < 25*time.Hour+30*time.Minute {
				hw.tick(t, 15*time.Minute)
			}
			failed := deliveryLog(t, s, owner, ep, "?state=failed")
			if failed.Total != 2 {
				t.Fatalf("after 25 hours: %+v", deliveryLog(t, s, owner, ep, ""))
			}
			for _, d := range failed.Items {
				if d.FailedAt == nil || d.FailedAt.Sub(d.CreatedAt) < 24*time.Hour || d.NextAt != nil || d.GiveUpAfter != nil ||
					d.LastError == nil || !strings.HasPrefix(*d.LastError, "gave up after") || !strings.Contains(*d.LastError, "503") {
					t.Fatalf("failed delivery %+v", d)
				}
			}
			if len(recv.taken()) != 0 {
				t.Fatalf("taken while down: %+v", recv.taken())
			}

			// Redeliver works for failed ones…
			recv.setDown(false)
			var again hookRecord
			s.Must(http.StatusAccepted, "POST", "/v1/webhooks/"+ep+"/deliveries/"+first.ID+"/redeliver", owner, nil, &again)
			if again.ID != first.ID || again.State != "pending" || again.NextAt == nil || again.GiveUpAfter == nil || again.FailedAt != nil {
				t.Fatalf("redelivered %+v", again)
			}
			hw.run(t)
			s.Must(http.StatusAccepted, "POST", "/v1/webhooks/"+ep+"/deliveries/"+second.ID+"/redeliver", owner, nil, nil)
			hw.run(t)
			got := recv.taken()
			if len(got) != 2 || got[0].DeliveryID != first.ID || got[1].DeliveryID != second.ID || got[0].Body.Seq != 1 || got[1].Body.Seq != 2 ||
				got[0].Body.Request.State != "searching" || got[1].Body.Request.State != "cancelled" {
				t.Fatalf("redelivered %+v", got)
			}
			// …and for delivered ones, under the same id.
			s.Must(http.StatusAccepted, "POST", "/v1/webhooks/"+ep+"/deliveries/"+first.ID+"/redeliver", owner, nil, nil)
			hw.run(t)
			if got := recv.taken(); len(got) != 3 || got[2].DeliveryID != first.ID {
				t.Fatalf("redelivered a delivered one: %+v", got)
			}

			// An attempt whose process died mid-call holds a lease that lapses.
			leaseUntil := db.UTC(hw.clk.Now().Add(time.Minute))
			if err := s.App.DB.Exec("UPDATE webhook_deliveries SET state = 'delivering', attempts = attempts + 1, lease_until = ? WHERE id = ?",
				leaseUntil, second.ID).Error; err != nil {
				t.Fatal(err)
			}
			hw.tick(t, 30*time.Second)
			if len(recv.taken()) != 3 {
				t.Fatal("retried while its lease holds")
			}
			r := s.Must(http.StatusConflict, "POST", "/v1/webhooks/"+ep+"/deliveries/"+second.ID+"/redeliver", owner, nil, nil)
			if e := r.Err(t); e.Error.Reason != "delivery_in_progress" {
				t.Fatalf("redeliver during an attempt: %+v", e)
			}
			hw.tick(t, time.Minute)
			got = recv.taken()
			var before hookRecord
			for _, d := range deliveryLog(t, s, owner, ep, "").Items {
				if d.ID == second.ID {
					before = d
				}
			}
			if len(got) != 4 || got[3].DeliveryID != second.ID || got[3].Attempt != before.Attempts || before.State != "delivered" {
				t.Fatalf("after the lease lapsed: %+v, %+v", got, before)
			}
		})
	}
}

// TestWebhookDeliveryBadInput: unknown deliveries, someone else's or
// another endpoint's, and bad filters answer the shared error shape and
// change nothing.
func TestWebhookDeliveryBadInput(t *testing.T) {
	t.Parallel()
	for _, engine := range apitest.Engines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			s, hw := startHooked(t, engine)
			onboard(t, s)
			owner, other := s.Token(auth.Customer, "owner-1"), s.Token(auth.Customer, "owner-2")
			recv, spare, theirs := newHookReceiver(t), newHookReceiver(t), newHookReceiver(t)
			ep, ep2 := registerHook(t, s, owner, recv), registerHook(t, s, owner, spare)
			registerHook(t, s, other, theirs)
			s.Must(http.StatusCreated, "POST", "/v1/requests", owner, map[string]any{"skill": "router_replace", "lat": 47.3769, "lng": 8.5417}, nil)
			hw.tick(t, 0)
			l := deliveryLog(t, s, owner, ep, "")
			if l.Total != 1 || l.Items[0].State != "delivered" || l.Items[0].Attempts != 1 || l.Items[0].Seq != 1 {
				t.Fatalf("log %+v", l)
			}
			d := l.Items[0]
			type row struct {
				ID, State   string
				Attempts    int
				QueuedAt    time.Time
				DeliveredAt *time.Time
			}
			rows := func() []row {
				var out []row
				if err := s.App.DB.Table("webhook_deliveries").Order("id").Find(&out).Error; err != nil {
					t.Fatal(err)
				}
				return out
			}
			before, calls := rows(), recv.callCount()+spare.callCount()+theirs.callCount()
			tech := s.Token(auth.Technician, "t-1")
			for _, tc := range []struct {
				name, method, path, token string
				status                    int
				code, field               string
			}{
				{"unknown delivery", "POST", "/v1/webhooks/" + ep + "/deliveries/no-such-delivery/redeliver", owner, 404, "not_found", ""},
				{"another endpoint's delivery", "POST", "/v1/webhooks/" + ep2 + "/deliveries/" + d.ID + "/redeliver", owner, 404, "not_found", ""},
				{"someone else's endpoint: redeliver", "POST", "/v1/webhooks/" + ep + "/deliveries/" + d.ID + "/redeliver", other, 404, "not_found", ""},
				{"someone else's endpoint: log", "GET", "/v1/webhooks/" + ep + "/deliveries", other, 404, "not_found", ""},
				{"unknown endpoint", "GET", "/v1/webhooks/no-such-endpoint/deliveries", owner, 404, "not_found", ""},
				{"a state that does not exist", "GET", "/v1/webhooks/" + ep + "/deliveries?state=lost", owner, 422, "invalid", "state"},
				{"limit 0", "GET", "/v1/webhooks/" + ep + "/deliveries?limit=0", owner, 422, "invalid", "limit"},
				{"limit not a number", "GET", "/v1/webhooks/" + ep + "/deliveries?limit=ten", owner, 422, "invalid", "limit"},
				{"negative offset", "GET", "/v1/webhooks/" + ep + "/deliveries?offset=-1", owner, 422, "invalid", "offset"},
				{"not an owner", "POST", "/v1/webhooks/" + ep + "/deliveries/" + d.ID + "/redeliver", tech, 403, "forbidden", ""},
			} {
				t.Run(tc.name, func(t *testing.T) {
					r := s.Call(tc.method, tc.path, tc.token, nil)
					if r.Status != tc.status {
						t.Fatalf("status %d, want %d: %s", r.Status, tc.status, r.Body)
					}
					if e := r.Err(t); e.Error.Code != tc.code || e.Error.Field != tc.field {
						t.Fatalf("error %+v, want code %s field %q", e.Error, tc.code, tc.field)
					}
				})
			}
			// A removed endpoint's log and deliveries are gone for its owner too.
			s.Must(http.StatusNoContent, "DELETE", "/v1/webhooks/"+ep2, owner, nil, nil)
			s.Must(http.StatusNotFound, "GET", "/v1/webhooks/"+ep2+"/deliveries", owner, nil, nil)
			hw.run(t)
			after := rows()
			if !reflect.DeepEqual(after, before) {
				t.Fatalf("bad input changed deliveries:\n%+v\n%+v", before, after)
			}
			if n := recv.callCount() + spare.callCount() + theirs.callCount(); n != calls || hw.waiting() != 0 {
				t.Fatalf("bad input sent %d calls, queued %d wake-ups", n-calls, hw.waiting())
			}
		})
	}
}

// TestWebhookAttemptsRace: twenty attempts at one due delivery at once
// send it once.
func TestWebhookAttemptsRace(t *testing.T) {
	t.Parallel()
	for _, engine := range apitest.Engines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			s, _ := startHooked(t, engine)
			onboard(t, s)
			owner := s.Token(auth.Customer, "owner-race")
			recv := newHookReceiver(t)
			ep := registerHook(t, s, owner, recv)
			s.Must(http.StatusCreated, "POST", "/v1/requests", owner, map[string]any{"skill": "router_replace", "lat": 47.3769, "lng": 8.5417}, nil)
			d := deliveryLog(t, s, owner, ep, "").Items[0]
			var wg sync.WaitGroup
			errs := make(chan error, 20)
			for range 20 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs <- s.App.Webhooks.Attempt(context.Background(), d.ID)
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			d = deliveryLog(t, s, owner, ep, "").Items[0]
			if recv.callCount() != 1 || d.State != "delivered" || d.Attempts != 1 {
				t.Fatalf("%d calls; %+v", recv.callCount(), d)
			}
		})
	}
}
