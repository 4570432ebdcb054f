package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/onsite/onsite/dispatch"
	"github.com/onsite/onsite/internal/apitest"
	"github.com/onsite/onsite/internal/app"
	"github.com/onsite/onsite/internal/auth"
	"github.com/onsite/onsite/internal/db"
	"github.com/onsite/onsite/internal/dbtest"
	"github.com/onsite/onsite/internal/redistest"
	"github.com/onsite/onsite/internal/twiliotest"
	"github.com/onsite/onsite/jobs"
	"github.com/onsite/onsite/notify"
)

// TestMessagesUnderFaults is issue 15's fault test: a scripted day through
// the real server and its workers (requests, offers accepted in the app,
// technicians on the way, on site, done; drops; cancellations after
// assignment) while Redis is killed and started empty (twice), PostgreSQL
// cuts the server's connections (twice), the Twilio stand-in answers 500 for
// twelve seconds and then loses the answers of four sends it took (as a
// crash mid-send would: the sender cannot know they went out). Every message the
// event log implies must then be final: sent exactly once (received by the
// stand-in once), or not sent because the request had moved on (and the
// request's end agrees); none left queued or sending, none out of order in
// its lane, none sent more than 3 s after the request had moved on (the
// check before a send and the send itself are a moment apart).
func TestMessagesUnderFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("a minute of a scripted day under faults")
	}
	rs := redistest.StartServer(t)
	tw := twiliotest.Start(t)
	appName := "onsite_fault_" + strings.ReplaceAll(fmt.Sprint(time.Now().UnixNano()), "-", "")
	u, err := url.Parse(dbtest.PostgresSchemaURL(t))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("application_name", appName)
	u.RawQuery = q.Encode()
	s := apitest.Start(t, "postgres", 0, apitest.RedisURL(rs.URL()+"?dial_timeout=300ms&max_retries=1"), apitest.Env("DATABASE_URL", u.String()),
		apitest.Env("TWILIO_ACCOUNT_SID", twiliotest.AccountSID), apitest.Env("TWILIO_AUTH_TOKEN", twiliotest.AuthToken),
		apitest.Env("TWILIO_FROM", twiliotest.From), apitest.Env("ONSITE_PUBLIC_URL", publicURL),
		apitest.Env("ONSITE_OFFER_STRATEGY", "sequential"), apitest.Env("ONSITE_OFFER_TIMEOUT", "20s"),
		apitest.Env("TWILIO_API_URL", tw.URL()), apitest.With(app.WithSweepEvery(2*time.Second)))
	admin, err := db.OpenPostgres(context.Background(), dbtest.PostgresURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.Close() })
	cutPostgres := func() {
		var n int
		if err := admin.Raw(`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = ?`, appName).Scan(&n).Error; err != nil {
			t.Fatal(err)
		}
		t.Logf("%v: PostgreSQL cut %d connections of the server", time.Now().Format("15:04:05.000"), n)
	}

	const requests = 50
	d := newDay(t, s, 8)
	// Each customer gives a contact phone on their request; the SMS guards
	// text only proved phones, so each proves theirs first through the API
	// (a code texted there and typed back), before the faults begin.
	for i := range requests {
		confirmContact(t, s, tw, d.customerToken(i), d.customerPhone(i))
	}
	faults := []struct {
		at   time.Duration
		what string
		do   func()
	}{
		{6 * time.Second, "Redis killed", rs.Stop},
		{10 * time.Second, "Redis started empty", rs.Restart},
		{14 * time.Second, "PostgreSQL connections cut", cutPostgres},
		{15 * time.Second, "PostgreSQL connections cut", cutPostgres},
		{17 * time.Second, "Twilio answers 500", func() { tw.FailWith(http.StatusInternalServerError) }},
		{24 * time.Second, "Redis killed and started empty", rs.Restart},
		{29 * time.Second, "Twilio answers again, but loses the answers of its next 4 sends", func() { tw.LoseAnswers(4); tw.FailWith(0) }},
	}
	start := time.Now()
	nextFault, created := 0, 0
	for !d.over(requests) {
		elapsed := time.Since(start)
		if elapsed > 100*time.Second {
			t.Fatalf("the day did not end within 100 s: %d of %d requests created, %d still open", created, requests, d.open())
		}
		for nextFault < len(faults) && elapsed >= faults[nextFault].at {
			t.Logf("%v: %s", time.Now().Format("15:04:05.000"), faults[nextFault].what)
			faults[nextFault].do()
			nextFault++
		}
		if created < requests && elapsed >= time.Duration(created)*600*time.Millisecond {
			if d.create(created) {
				created++
			}
		}
		d.step()
		time.Sleep(100 * time.Millisecond)
	}
	for ; nextFault < len(faults); nextFault++ {
		faults[nextFault].do() // the day ended early: leave Twilio answering
	}
	t.Logf("day over after %v", time.Since(start).Round(time.Millisecond))
	apitest.Eventually(t, 60*time.Second, "every event's messages stored and every message final", func() bool {
		var owed, open int64
		s.App.DB.Table("events").Where("messages_owed").Count(&owed)
		s.App.DB.Table("messages").Where("state IN ?", []string{notify.StateQueued, notify.StateSending}).Count(&open)
		return owed == 0 && open == 0
	})
	t.Logf("quiet after %v", time.Since(start).Round(time.Millisecond))
	failed, lost := tw.Faults()
	t.Logf("the stand-in answered %d calls with 500 and dropped %d answers", failed, lost)
	if failed == 0 || lost != 4 {
		t.Fatal("the Twilio faults did not happen")
	}
	r := audit(t, s.App.DB, tw)
	t.Logf("expected %d messages (from %d events): received %d, superseded %d (unjustified %d); duplicates %d, missing %d, "+
		"left queued/sending %d, failed %d, received unknown %d, out of order %d, sent stale %d, withheld %d",
		r.expected, r.events, r.received, r.superseded, r.unjustified, r.duplicates, r.missing, r.left, r.failed, r.unknown, r.outOfOrder, r.stale, r.withheld)
	kinds := make([]string, 0, len(r.byKind))
	for k := range r.byKind {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		t.Logf("  %4d %s", r.byKind[k], k)
	}
	if r.received != r.expected-r.superseded || r.duplicates != 0 || r.missing != 0 || r.left != 0 || r.failed != 0 ||
		r.unknown != 0 || r.outOfOrder != 0 || r.stale != 0 || r.unjustified != 0 || r.withheld != 0 {
		for _, p := range r.problems {
			t.Log(p)
		}
		t.Fatal("messages were lost, doubled, left, out of order, stale or withheld")
	}
	if r.received < 100 {
		t.Fatalf("only %d messages received: the day was too short to prove anything", r.received)
	}
}

// day drives the script through the API: customers open requests,
// technicians accept what they are offered and move their jobs on, some
// drop a job once, some customers cancel once their request is assigned.
type day struct {
	t        *testing.T
	s        *apitest.Server
	client   *http.Client
	rng      *rand.Rand
	techs    []string
	tokens   map[string]string    // technician → token
	jobs     map[string]*dayJob   // technician → the job they hold
	requests map[string]string    // request → its customer's token
	cancel   map[string]time.Time // request → when its customer cancels it
	done     map[string]bool      // requests cancelled (by the script) or completed
	dropped  map[string]bool      // requests dropped once
}

type dayJob struct {
	request string
	step    string // the next call: en-route, arrived, complete (or drop)
	at      time.Time
}

func newDay(t *testing.T, s *apitest.Server, technicians int) *day {
	t.Helper()
	d := &day{t: t, s: s, client: &http.Client{Timeout: 10 * time.Second}, rng: rand.New(rand.NewPCG(15, 8)), tokens: map[string]string{}, jobs: map[string]*dayJob{},
		requests: map[string]string{}, cancel: map[string]time.Time{}, done: map[string]bool{}, dropped: map[string]bool{}}
	ops := s.Token(auth.Ops, "alice")
	s.Must(http.StatusCreated, "POST", "/v1/skills", ops, map[string]string{"code": "router_replace", "name": "Replace a router"}, nil)
	for i := range technicians {
		var tech technician
		s.Must(http.StatusCreated, "POST", "/v1/technicians", ops, map[string]any{"name": fmt.Sprintf("Tech%d", i), "phone": fmt.Sprintf("+417955510%02d", i)}, &tech)
		s.Must(http.StatusOK, "PUT", "/v1/technicians/"+tech.ID+"/certifications/router_replace", ops, map[string]any{"expires_at": time.Now().Add(48 * time.Hour)}, nil)
		tok := s.Token(auth.Technician, tech.ID)
		s.Must(http.StatusOK, "PUT", "/v1/me/duty", tok, map[string]string{"status": "available"}, nil)
		s.Must(http.StatusOK, "POST", "/v1/me/location", tok, map[string]any{"lat": 47.3769, "lng": 8.5417 + float64(500+300*i)/75500}, nil)
		d.techs = append(d.techs, tech.ID)
		d.tokens[tech.ID] = tok
	}
	apitest.Eventually(t, 10*time.Second, "the positions to be written", func() bool {
		var n int64
		s.App.DB.Table("technicians").Where("cell IS NOT NULL").Count(&n)
		return n == int64(technicians)
	})
	return d
}

// ok reports a call that did what it asked; a passing failure (5xx, a
// dropped connection) is tried again on the next step, a refusal (the job
// moved on) is given up.
func (d *day) call(method, path, token string, body, out any) (ok, retry bool) {
	r, err := d.try(method, path, token, body)
	if err != nil || r.Status >= 500 || r.Status == http.StatusTooManyRequests {
		return false, true
	}
	if r.Status >= 300 {
		return false, false
	}
	if out != nil {
		if err := json.Unmarshal(r.Body, out); err != nil {
			d.t.Fatalf("%s %s: %v", method, path, err)
		}
	}
	return true, false
}

// try is one call that returns connection errors rather than failing.
func (d *day) try(method, path, token string, body any) (apitest.Response, error) {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return apitest.Response{}, err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, d.s.URL+path, rd)
	if err != nil {
		return apitest.Response{}, err
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := d.client.Do(req)
	if err != nil {
		return apitest.Response{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return apitest.Response{}, err
	}
	return apitest.Response{Status: resp.StatusCode, Header: resp.Header, Body: raw}, nil
}

// customerToken is the token of the customer of request i.
func (d *day) customerToken(i int) string {
	return d.s.Token(auth.Customer, fmt.Sprintf("cust%03d", i))
}

// customerPhone is the contact phone the customer of request i gives on it.
func (d *day) customerPhone(i int) string { return fmt.Sprintf("+417911120%02d", i) }

// create opens request i (a customer of its own, in one of four languages).
func (d *day) create(i int) bool {
	tok := d.customerToken(i)
	var r request
	ok, _ := d.call("POST", "/v1/requests", tok, map[string]any{"skill": "router_replace", "lat": 47.3769, "lng": 8.5417,
		"address": fmt.Sprintf("Seestrasse %d", i+1), "phone": d.customerPhone(i), "locale": notify.Locales[i%4]}, &r)
	if ok {
		d.requests[r.ID] = tok
	}
	return ok
}

// step moves everyone on once.
func (d *day) step() {
	now := time.Now()
	for id, at := range d.cancel {
		if now.Before(at) {
			continue
		}
		ok, retry := d.call("POST", "/v1/requests/"+id+"/cancel", d.requests[id], map[string]string{"reason": "changed plans"}, nil)
		if ok {
			d.done[id] = true
		}
		if ok || !retry {
			delete(d.cancel, id)
		}
	}
	for _, tech := range d.techs {
		tok := d.tokens[tech]
		j := d.jobs[tech]
		if j == nil {
			var offers struct {
				Items []offer `json:"items"`
			}
			if ok, _ := d.call("GET", "/v1/me/offers", tok, nil, &offers); !ok || len(offers.Items) == 0 {
				continue
			}
			o := offers.Items[0]
			if ok, _ := d.call("POST", "/v1/offers/"+o.ID+"/accept", tok, nil, nil); !ok {
				continue
			}
			d.jobs[tech] = &dayJob{request: o.RequestID, step: "en-route", at: now.Add(d.pause())}
			if _, seen := d.cancel[o.RequestID]; !seen && !d.dropped[o.RequestID] && d.rng.IntN(8) == 0 {
				d.cancel[o.RequestID] = now.Add(d.pause() / 2)
			}
			continue
		}
		if now.Before(j.at) {
			continue
		}
		step, body := j.step, any(nil)
		switch {
		case step == "complete":
			body = map[string]string{"outcome": "fixed"}
		case step == "arrived" && !d.dropped[j.request] && d.rng.IntN(8) == 0:
			step, body = "drop", map[string]string{"reason": "flat tyre"}
		}
		ok, retry := d.call("POST", "/v1/jobs/"+j.request+"/"+step, tok, body, nil)
		switch {
		case !ok && retry:
			continue
		case !ok: // cancelled meanwhile
			delete(d.jobs, tech)
		case step == "drop":
			d.dropped[j.request] = true
			delete(d.jobs, tech)
		case step == "complete":
			d.done[j.request] = true
			delete(d.jobs, tech)
		default:
			j.step = map[string]string{"en-route": "arrived", "arrived": "complete"}[step]
			j.at = now.Add(d.pause())
		}
	}
}

func (d *day) pause() time.Duration {
	return 500*time.Millisecond + time.Duration(d.rng.IntN(1500))*time.Millisecond
}

// over reports that all requests were created and have ended.
func (d *day) over(requests int) bool { return len(d.requests) == requests && d.open() == 0 }

// open counts the requests that have not ended, as the database says.
func (d *day) open() int {
	var n int64
	if err := d.s.App.DB.Table("requests").Where("state NOT IN ?", []string{"completed", "cancelled"}).Count(&n).Error; err != nil {
		return -1
	}
	return int(n)
}

// report is what the audit found.
type report struct {
	events, expected, received, superseded, unjustified, duplicates, missing, left, failed, unknown, outOfOrder, stale, withheld int
	problems                                                                                                                     []string
	byKind                                                                                                                       map[string]int // "<kind> <state or reason>" → messages
}

type auditEvent struct {
	ID, RequestID, Type, ActorRole string
	Data                           string
	At                             time.Time
	data                           map[string]any
}

// audit compares the event log, the messages table and what the stand-in
// received.
func audit(t *testing.T, d *db.DB, tw *twiliotest.Server) report {
	t.Helper()
	r := report{byKind: map[string]int{}}
	problem := func(format string, args ...any) { r.problems = append(r.problems, fmt.Sprintf(format, args...)) }
	var evs []auditEvent
	if err := d.Raw(`SELECT id, request_id, type, actor_role, data, at FROM events ORDER BY at, id`).Scan(&evs).Error; err != nil {
		t.Fatal(err)
	}
	var reqs []struct{ ID, CustomerID, State string }
	if err := d.Raw(`SELECT id, customer_id, state FROM requests`).Scan(&reqs).Error; err != nil {
		t.Fatal(err)
	}
	var offers []struct{ ID, TechnicianID, State string }
	if err := d.Raw(`SELECT id, technician_id, state FROM offers`).Scan(&offers).Error; err != nil {
		t.Fatal(err)
	}
	var msgs []notify.Message
	if err := d.Find(&msgs).Error; err != nil {
		t.Fatal(err)
	}
	// The contact codes texted before the day are no request's messages
	// and not the event log's: left out of the count.
	setup := map[string]bool{}
	ofRequests := msgs[:0]
	for _, m := range msgs {
		if m.RequestID == nil && m.Kind == notify.KindContactCode {
			setup[m.ID] = true
			continue
		}
		ofRequests = append(ofRequests, m)
	}
	msgs = ofRequests
	// The guards (proved phones, countries, caps) must have held back
	// nothing of the day: each such text would also be missing.
	var withheld []struct{ DedupeKey, Reason string }
	if err := d.Raw(`SELECT dedupe_key, reason FROM sms_withheld`).Scan(&withheld).Error; err != nil {
		t.Fatal(err)
	}
	for _, w := range withheld {
		problem("message %s withheld by the guards: %s", w.DedupeKey, w.Reason)
		r.withheld++
	}
	customer, final := map[string]string{}, map[string]dispatch.State{}
	for _, q := range reqs {
		customer[q.ID], final[q.ID] = q.CustomerID, dispatch.State(q.State)
	}
	offerTech, offerState := map[string]string{}, map[string]dispatch.OfferState{}
	for _, o := range offers {
		offerTech[o.ID], offerState[o.ID] = o.TechnicianID, dispatch.OfferState(o.State)
	}
	byRequest := map[string][]*auditEvent{}
	for i := range evs {
		e := &evs[i]
		_ = json.Unmarshal([]byte(e.Data), &e.data)
		byRequest[e.RequestID] = append(byRequest[e.RequestID], e)
	}

	// Expected: what the event log implies (who is told what, jobs/notify.go).
	kindOf := map[string]notify.Kind{"assigned": notify.KindAssigned, "en_route": notify.KindEnRoute, "on_site": notify.KindArrived,
		"completed": notify.KindCompleted, "cancelled": notify.KindCancelled, "unfulfilled": notify.KindUnfulfilled,
		"running_late": notify.KindLate}
	expected := map[string]bool{}
	tech := map[string]string{} // request → its technician, as the events go
	for _, e := range evs {
		toCustomer := func(kind notify.Kind) {
			expected[fmt.Sprintf("%s:%s:customer:%s", e.ID, kind, customer[e.RequestID])] = true
		}
		toTechnician := func(kind notify.Kind, id string) { expected[fmt.Sprintf("%s:%s:technician:%s", e.ID, kind, id)] = true }
		from, _ := e.data["from"].(string)
		named, _ := e.data["technician_id"].(string)
		switch kind, ok := kindOf[e.Type]; {
		case e.Type == "offered":
			offerID, _ := e.data["offer_id"].(string)
			toTechnician(notify.KindOffer, offerTech[offerID])
		case e.Type == "assigned":
			if _, changed := e.data["previous_technician_id"]; changed {
				toCustomer(notify.KindChanged)
			} else {
				toCustomer(notify.KindAssigned)
			}
			if byHand, _ := e.data["by_hand"].(bool); byHand {
				toTechnician(notify.KindJobGiven, named)
			}
			tech[e.RequestID] = named
		case e.Type == "searching" && (from == "assigned" || from == "en_route"):
			if e.data["why"] != "reassigned by ops" {
				toCustomer(notify.KindSearching)
			}
			if e.ActorRole != "technician" {
				toTechnician(notify.KindJobTaken, named)
			}
		case e.Type == "cancelled":
			toCustomer(notify.KindCancelled)
			if from == "assigned" || from == "en_route" {
				toTechnician(notify.KindJobCancelled, tech[e.RequestID])
			}
		case ok:
			toCustomer(kind)
		default:
			continue
		}
		r.events++
	}
	r.expected = len(expected)
	stored := map[string]notify.Message{}
	for _, m := range msgs {
		stored[m.DedupeKey] = m
		if !expected[m.DedupeKey] {
			problem("message %s (%s) was not expected from the event log", m.ID, m.DedupeKey)
			r.unknown++
		}
	}
	for key := range expected {
		if _, ok := stored[key]; !ok {
			problem("no message for %s", key)
			r.missing++
		}
	}

	// Received: the stand-in's messages, by the message id in their
	// status callback.
	got := tw.Received()
	receivedAt := map[string]time.Time{}
	index := map[string]int{}
	for i, m := range got {
		cb, err := url.Parse(m.Form.Get("StatusCallback"))
		id := ""
		if err == nil {
			id = cb.Query().Get("message")
		}
		if setup[id] {
			continue
		}
		if _, seen := receivedAt[id]; seen {
			problem("message %s received twice: %q", id, m.Form.Get("Body"))
			r.duplicates++
			continue
		}
		receivedAt[id], index[id] = m.At, i
	}
	r.received = len(receivedAt)
	lanes := map[string][]notify.Message{}
	for _, m := range msgs {
		_, received := receivedAt[m.ID]
		why := ""
		if m.Error != nil {
			why = *m.Error
		}
		if m.State == notify.StateFailed {
			r.byKind[string(m.Kind)+" "+why]++
		} else {
			r.byKind[string(m.Kind)+" "+m.State]++
		}
		switch {
		case !notify.Final(m.State):
			problem("message %s left %s", m.ID, m.State)
			r.left++
		case m.State == notify.StateFailed && strings.HasPrefix(why, notify.SupersededPrefix):
			r.superseded++
			if received {
				problem("superseded message %s was received", m.ID)
				r.unknown++
			}
			// The request ended where the message is no longer true.
			st := dispatch.Standing{State: final[*m.RequestID]}
			if m.OfferID != nil {
				st.Offer = offerState[*m.OfferID]
			}
			if jobs.Superseded(m.Kind, "", st) == "" {
				problem("message %s (%s) superseded (%s) but its request ended %s", m.ID, m.Kind, why, st.State)
				r.unjustified++
			}
		case m.State == notify.StateFailed:
			problem("message %s failed: %s", m.ID, why)
			r.failed++
		case !received:
			problem("message %s is %s but the stand-in never got it", m.ID, m.State)
			r.unknown++
		default:
			lane := *m.RequestID + "|" + m.Recipient
			lanes[lane] = append(lanes[lane], m)
			if at, ok := supersededAt(m, byRequest[*m.RequestID]); ok && receivedAt[m.ID].After(at.Add(3*time.Second)) {
				problem("message %s (%s) received %v after its request moved on", m.ID, m.Kind, receivedAt[m.ID].Sub(at))
				r.stale++
			}
		}
	}
	for _, id := range keysOfReceived(receivedAt, msgs) {
		problem("the stand-in got a message the table does not have: %s", id)
		r.unknown++
	}
	for lane, ms := range lanes {
		sort.Slice(ms, func(i, j int) bool {
			if !ms[i].EventAt.Equal(ms[j].EventAt) {
				return ms[i].EventAt.Before(ms[j].EventAt)
			}
			return ms[i].EventID < ms[j].EventID
		})
		for i := 1; i < len(ms); i++ {
			if index[ms[i].ID] < index[ms[i-1].ID] {
				problem("lane %s: %s (%s) arrived before %s (%s)", lane, ms[i].ID, ms[i].Kind, ms[i-1].ID, ms[i-1].Kind)
				r.outOfOrder++
			}
		}
	}
	return r
}

// supersededAt replays a request's events after the message's and returns
// when the request first stood where the message was no longer true.
func supersededAt(m notify.Message, evs []*auditEvent) (time.Time, bool) {
	var st dispatch.Standing
	tech := ""
	if m.TechnicianID != nil {
		tech = *m.TechnicianID
	}
	for _, e := range evs {
		offerID, _ := e.data["offer_id"].(string)
		if m.OfferID != nil && offerID == *m.OfferID && e.Type != "offered" {
			st.Offer = dispatch.OfferState("answered")
		} else if m.OfferID != nil && offerID == *m.OfferID {
			st.Offer = dispatch.OfferPending
		}
		if to, ok := e.data["to"].(string); ok {
			st.State = dispatch.State(to)
			switch st.State {
			case dispatch.Assigned:
				st.Technician, _ = e.data["technician_id"].(string)
			case dispatch.Searching:
				st.Technician = ""
			}
		}
		after := e.At.After(m.EventAt) || (e.At.Equal(m.EventAt) && e.ID > m.EventID)
		if after && jobs.Superseded(m.Kind, tech, st) != "" {
			return e.At, true
		}
	}
	return time.Time{}, false
}

func keysOfReceived(received map[string]time.Time, msgs []notify.Message) []string {
	known := map[string]bool{}
	for _, m := range msgs {
		known[m.ID] = true
	}
	var out []string
	for id := range received {
		if !known[id] {
			out = append(out, id)
		}
	}
	return out
}
