package notify_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onsite/onsite/internal/db"
	"github.com/onsite/onsite/internal/dbtest"
	"github.com/onsite/onsite/internal/twiliotest"
	"github.com/onsite/onsite/notify"
)

// clock is a time the test moves.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now().UTC().Truncate(time.Second)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func load(t *testing.T, d *db.DB, key string) notify.Message {
	t.Helper()
	var m notify.Message
	if err := d.Where("dedupe_key = ?", key).First(&m).Error; err != nil {
		t.Fatalf("load %s: %v", key, err)
	}
	return m
}

func out(key string, kind notify.Kind, to string) notify.Outgoing {
	return notify.Outgoing{DedupeKey: key, Kind: kind, Recipient: "customer:c1", To: to, Locale: "en",
		Data: notify.Data{Skill: "wifi_setup", Technician: "Tina", ETA: "15:40"}}
}

func TestDeliverAtMostOncePerEvent(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := &countingSender{}
		n := notify.NewNotifier(d, s, "https://onsite.test/status", guards(), quiet())
		o := []notify.Outgoing{out("ev1:assigned:customer:c1", notify.KindAssigned, "+41791234567")}
		o[0].Locale = "fr"
		var wg sync.WaitGroup
		for range 10 { // a task that runs ten times at once
			wg.Add(1)
			go func() { defer wg.Done(); _ = n.Deliver(ctx, o) }()
		}
		wg.Wait()
		m := load(t, d, "ev1:assigned:customer:c1")
		if len(s.sent) != 1 || !strings.Contains(s.sent[0].Body, "Tina") || s.sent[0].StatusCallback != "https://onsite.test/status?message="+m.ID {
			t.Fatalf("sent %+v", s.sent)
		}
		if m.State != notify.StateSent || m.Attempts != 1 || m.ProviderSID == nil || m.NextAttemptAt != nil || m.LeaseUntil != nil {
			t.Fatalf("message %+v", m)
		}
		// A permanent failure is recorded, not retried.
		s.fails = []error{fmt.Errorf("bad number: %w", notify.ErrPermanent)}
		if err := n.Deliver(ctx, []notify.Outgoing{out("ev3:arrived:customer:c2", notify.KindArrived, "+4100")}); err != nil {
			t.Fatalf("a permanent failure is recorded, not returned: %v", err)
		}
		if m := load(t, d, "ev3:arrived:customer:c2"); m.State != notify.StateFailed || m.Error == nil {
			t.Fatalf("message %+v", m)
		}
		// Delivery reports move a message forward only.
		if got, ok, err := n.RecordStatus(ctx, "SM1", "delivered", "", ""); err != nil || !ok || got.State != notify.StateDelivered {
			t.Fatalf("delivered: %+v %v %v", got, ok, err)
		}
		if got, _, _ := n.RecordStatus(ctx, "SM1", "sent", "", ""); got.State != notify.StateDelivered {
			t.Fatalf("moved backwards to %s", got.State)
		}
		if _, ok, _ := n.RecordStatus(ctx, "SM-unknown", "failed", "30003", ""); ok {
			t.Fatal("unknown sid found")
		}
	})
}

// TestRetriesAreKeptInTheDatabase: a passing failure leaves the message
// queued with a due time (and asks for a wake-up then); an attempt before
// then does nothing; after ten attempts it fails for good with the reason.
func TestRetriesAreKeptInTheDatabase(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		c := newClock()
		busy := fmt.Errorf("429: %w", notify.ErrNotAccepted)
		s := &countingSender{fails: []error{busy, busy}}
		n := notify.NewNotifier(d, s, "", guards(), quiet())
		n.WithClock(c.Now)
		var wakes []time.Time
		n.WithWake(func(_ context.Context, _ string, _ int, at time.Time) error { wakes = append(wakes, at); return nil })
		if err := n.Deliver(ctx, []notify.Outgoing{out("ev2:en_route:customer:c1", notify.KindEnRoute, "+41791234567")}); err != nil {
			t.Fatalf("a passing failure is the database's to retry, not the caller's: %v", err)
		}
		m := load(t, d, "ev2:en_route:customer:c1")
		if m.State != notify.StateQueued || m.NextAttemptAt == nil || !m.NextAttemptAt.Equal(c.Now().Add(time.Second)) ||
			len(wakes) != 1 || !wakes[0].Equal(*m.NextAttemptAt) || m.Error == nil {
			t.Fatalf("after a passing failure: %+v, wakes %v", m, wakes)
		}
		if err := n.SendMessage(ctx, m.ID); err != nil || len(s.sent) != 0 {
			t.Fatalf("sent before it was due: %v, %d", err, len(s.sent))
		}
		c.Add(time.Second)
		if err := n.SendMessage(ctx, m.ID); err != nil {
			t.Fatal(err)
		}
		if m := load(t, d, m.DedupeKey); m.State != notify.StateQueued || !m.NextAttemptAt.Equal(c.Now().Add(2*time.Second)) {
			t.Fatalf("second failure waits 2 s: %+v", m)
		}
		c.Add(2 * time.Second)
		if err := n.SendMessage(ctx, m.ID); err != nil || len(s.sent) != 1 {
			t.Fatalf("third attempt: %v, %d sent", err, len(s.sent))
		}
		if m := load(t, d, m.DedupeKey); m.State != notify.StateSent || m.Attempts != 3 || m.Error != nil {
			t.Fatalf("sent on the third attempt: %+v", m)
		}

		// Failing every time: ten attempts, then failed with the reason.
		s.fails = make([]error, 20)
		for i := range s.fails {
			s.fails[i] = busy
		}
		if err := n.Deliver(ctx, []notify.Outgoing{out("ev4:en_route:customer:c1", notify.KindEnRoute, "+41791234567")}); err != nil {
			t.Fatal(err)
		}
		m = load(t, d, "ev4:en_route:customer:c1")
		for range 12 {
			c.Add(5 * time.Minute)
			if err := n.SendMessage(ctx, m.ID); err != nil {
				t.Fatal(err)
			}
		}
		m = load(t, d, m.DedupeKey)
		if m.State != notify.StateFailed || m.Attempts != 10 || m.Error == nil || !strings.Contains(*m.Error, "gave up after 10 attempts") {
			t.Fatalf("after ten failures: %+v %s", m, *m.Error)
		}
	})
}

// TestUnknownOutcomeAsksTwilio: a send whose answer is lost (Twilio took
// it), or that got a server error (Twilio did not), leaves the message
// "sending"; the next attempt asks Twilio through ListMessage and records
// the first as sent, and sends the second again: each reaches Twilio once.
func TestUnknownOutcomeAsksTwilio(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		c := newClock()
		tw := twiliotest.Start(t)
		s, err := notify.NewTwilioSender(notify.TwilioConfig{AccountSID: twiliotest.AccountSID, AuthToken: twiliotest.AuthToken,
			From: twiliotest.From, APIURL: tw.URL()})
		if err != nil {
			t.Fatal(err)
		}
		n := notify.NewNotifier(d, s, "https://onsite.test/status", guards(), quiet())
		n.WithClock(c.Now)

		tw.LoseAnswers(1)
		if err := n.Deliver(ctx, []notify.Outgoing{out("lost:assigned:customer:c1", notify.KindAssigned, "+41791234567")}); err != nil {
			t.Fatal(err)
		}
		lost := load(t, d, "lost:assigned:customer:c1")
		if lost.State != notify.StateSending || lost.LeaseUntil == nil || len(tw.Messages()) != 1 {
			t.Fatalf("after a lost answer: %+v, twilio has %d", lost, len(tw.Messages()))
		}
		tw.FailWith(http.StatusInternalServerError)
		if err := n.Deliver(ctx, []notify.Outgoing{out("fivehundred:assigned:customer:c1", notify.KindArrived, "+41791234567")}); err != nil {
			t.Fatal(err)
		}
		// While Twilio still fails, asking it fails too: still unknown.
		c.Add(time.Second)
		for _, k := range []string{"lost:assigned:customer:c1", "fivehundred:assigned:customer:c1"} {
			if err := n.SendMessage(ctx, load(t, d, k).ID); err != nil {
				t.Fatal(err)
			}
			if m := load(t, d, k); m.State != notify.StateSending || !strings.Contains(*m.Error, "ask the provider") {
				t.Fatalf("%s while Twilio fails: %+v %s", k, m, *m.Error)
			}
		}
		tw.FailWith(0)
		c.Add(2 * time.Second)
		for _, k := range []string{"lost:assigned:customer:c1", "fivehundred:assigned:customer:c1"} {
			if err := n.SendMessage(ctx, load(t, d, k).ID); err != nil {
				t.Fatal(err)
			}
		}
		got := tw.Received()
		if len(got) != 2 {
			t.Fatalf("twilio got %d messages, want 2", len(got))
		}
		for i, k := range []string{"lost:assigned:customer:c1", "fivehundred:assigned:customer:c1"} {
			m := load(t, d, k)
			if m.State != notify.StateSent || m.ProviderSID == nil || *m.ProviderSID != got[i].SID {
				t.Fatalf("%s: %+v, twilio sid %s", k, m, got[i].SID)
			}
		}

		// A status callback naming the message settles a lost answer too.
		tw.LoseAnswers(1)
		if err := n.Deliver(ctx, []notify.Outgoing{out("callback:completed:customer:c1", notify.KindCompleted, "+41791234567")}); err != nil {
			t.Fatal(err)
		}
		m := load(t, d, "callback:completed:customer:c1")
		sid := tw.Received()[2].SID
		if got, ok, err := n.RecordStatus(ctx, sid, "delivered", "", m.ID); err != nil || !ok || got.State != notify.StateDelivered {
			t.Fatalf("callback: %+v %v %v", got, ok, err)
		}
		if m := load(t, d, m.DedupeKey); m.State != notify.StateDelivered || m.ProviderSID == nil || *m.ProviderSID != sid {
			t.Fatalf("after the callback: %+v", m)
		}
	})
}

// TestLanes: the messages of one request to one recipient leave in event
// order whatever order they were stored in, one waiting while an earlier one
// is not final; a superseded one is recorded, not sent; another recipient's
// messages do not wait.
func TestLanes(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		c := newClock()
		s := &countingSender{}
		n := notify.NewNotifier(d, s, "", guards(), quiet())
		n.WithClock(c.Now)
		n.WithCheck(func(_ context.Context, m notify.Message) (string, error) {
			if m.Kind == notify.KindEnRoute {
				return "request on_site", nil
			}
			return "", nil
		})
		base := c.Now().Add(-time.Minute)
		msg := func(ev string, at int, kind notify.Kind, recipient string) notify.Outgoing {
			o := out(ev+":"+string(kind)+":"+recipient, kind, "+4179"+recipient)
			o.RequestID, o.Recipient, o.EventID, o.EventAt = "r1", recipient, ev, base.Add(time.Duration(at)*time.Second)
			return o
		}
		sentBodies := func() []string {
			var b []string
			for _, m := range s.sent {
				b = append(b, m.Body)
			}
			return b
		}
		// The arrival is stored first and goes out: nothing earlier is
		// stored. (In the server the earlier events would still owe their
		// messages, and it would wait: TestMessagesWaitForEarlierEvents in
		// jobs.)
		if err := n.Deliver(ctx, []notify.Outgoing{msg("e3", 3, notify.KindArrived, "customer:c1")}); err != nil {
			t.Fatal(err)
		}
		if got := sentBodies(); len(got) != 1 || !strings.Contains(got[0], "arrived") {
			t.Fatalf("sent %q", got)
		}
		// Then the assignment, whose send fails once, and the en route
		// (superseded).
		s.fails = []error{fmt.Errorf("429: %w", notify.ErrNotAccepted)}
		if err := n.Deliver(ctx, []notify.Outgoing{msg("e1", 1, notify.KindAssigned, "customer:c1"), msg("e2", 2, notify.KindEnRoute, "customer:c1")}); err != nil {
			t.Fatal(err)
		}
		if len(s.sent) != 1 {
			t.Fatalf("sent %q", sentBodies())
		}
		if m := load(t, d, "e2:en_route:customer:c1"); m.State != notify.StateQueued || m.Attempts != 0 {
			t.Fatalf("e2 did not wait for e1: %+v", m)
		}
		if m := load(t, d, "e1:assigned:customer:c1"); m.State != notify.StateQueued {
			t.Fatalf("e1 after its failure: %+v", m)
		}
		// Another recipient's lane does not wait.
		if err := n.Deliver(ctx, []notify.Outgoing{msg("e4", 4, notify.KindAssigned, "technician:t1")}); err != nil {
			t.Fatal(err)
		}
		if len(s.sent) != 2 {
			t.Fatalf("the technician's message waited: %d sent", len(s.sent))
		}
		c.Add(time.Second)
		if err := n.SendMessage(ctx, load(t, d, "e2:en_route:customer:c1").ID); err != nil {
			t.Fatal(err)
		}
		if m := load(t, d, "e1:assigned:customer:c1"); m.State != notify.StateSent {
			t.Fatalf("e1 not sent when its lane moved: %+v", m)
		}
		m := load(t, d, "e2:en_route:customer:c1")
		if m.State != notify.StateFailed || m.Error == nil || *m.Error != notify.SupersededPrefix+"request on_site" {
			t.Fatalf("e2: %+v", m)
		}
		if len(s.sent) != 3 {
			t.Fatalf("%d sent, want 3: %q", len(s.sent), sentBodies())
		}
	})
}

// TestLaneWaitsForItsHead: while a lane's first message waits for a retry,
// the next ones wait too, and the sweep's Due lists only the head.
func TestLaneWaitsForItsHead(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		c := newClock()
		busy := fmt.Errorf("429: %w", notify.ErrNotAccepted)
		s := &countingSender{fails: []error{busy}}
		n := notify.NewNotifier(d, s, "", guards(), quiet())
		n.WithClock(c.Now)
		var o []notify.Outgoing
		for i, kind := range []notify.Kind{notify.KindAssigned, notify.KindArrived, notify.KindCompleted} {
			m := out(fmt.Sprintf("e%d:%s:customer:c1", i, kind), kind, "+41791234567")
			m.RequestID, m.EventID, m.EventAt = "r1", fmt.Sprintf("e%d", i), c.Now().Add(time.Duration(i-10)*time.Second)
			o = append(o, m)
		}
		if err := n.Deliver(ctx, o); err != nil {
			t.Fatal(err)
		}
		if len(s.sent) != 0 {
			t.Fatalf("sent %d behind a failed head", len(s.sent))
		}
		head := load(t, d, "e0:assigned:customer:c1")
		due, err := n.Due(ctx, c.Now().Add(time.Hour), 10)
		if err != nil || len(due) != 1 || due[0].ID != head.ID {
			t.Fatalf("due: %+v %v", due, err)
		}
		c.Add(time.Second)
		if err := n.SendMessage(ctx, load(t, d, "e2:completed:customer:c1").ID); err != nil {
			t.Fatal(err)
		}
		if len(s.sent) != 3 || !strings.Contains(s.sent[0].Body, "will take care of") || !strings.Contains(s.sent[2].Body, "done") {
			t.Fatalf("sent %+v", s.sent)
		}
		if due, err := n.Due(ctx, c.Now().Add(time.Hour), 10); err != nil || len(due) != 0 {
			t.Fatalf("due after: %+v %v", due, err)
		}
	})
}

// TestLostLeaseWithoutFinder: a crash mid-send leaves the message
// "sending"; once its lease ends the next attempt sends it (a sender that
// cannot be asked, such as the log sender, is sent to again).
func TestLostLeaseWithoutFinder(t *testing.T) {
	t.Parallel()
	d := dbtest.SQLite(t)
	ctx := context.Background()
	c := newClock()
	s := &countingSender{fails: []error{errors.New("connection reset")}}
	n := notify.NewNotifier(d, s, "", guards(), quiet())
	n.WithClock(c.Now)
	if err := n.Deliver(ctx, []notify.Outgoing{out("ev:arrived:customer:c1", notify.KindArrived, "+41791234567")}); err != nil {
		t.Fatal(err)
	}
	m := load(t, d, "ev:arrived:customer:c1")
	if m.State != notify.StateSending || len(s.sent) != 0 {
		t.Fatalf("after no answer: %+v", m)
	}
	if due, _ := n.Due(ctx, c.Now(), 10); len(due) != 0 {
		t.Fatalf("due while leased: %+v", due)
	}
	c.Add(time.Second)
	if err := n.SendMessage(ctx, m.ID); err != nil || len(s.sent) != 1 {
		t.Fatalf("after the lease: %v, %d sent", err, len(s.sent))
	}
	if m := load(t, d, m.DedupeKey); m.State != notify.StateSent || m.Attempts != 2 {
		t.Fatalf("message %+v", m)
	}
}

// TestAlikeTextsAskTwilioApart: two messages to one phone that would read
// alike (texts carry no caller words, so two offers to a technician can)
// are stored with different texts, so asking Twilio after unknown outcomes
// tells them apart: the first (a 500: Twilio never had it) is sent again,
// the second (its answer lost: Twilio has it) is recorded sent; each
// reaches Twilio once.
func TestAlikeTextsAskTwilioApart(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		c := newClock()
		tw := twiliotest.Start(t)
		s, err := notify.NewTwilioSender(notify.TwilioConfig{AccountSID: twiliotest.AccountSID, AuthToken: twiliotest.AuthToken,
			From: twiliotest.From, APIURL: tw.URL()})
		if err != nil {
			t.Fatal(err)
		}
		n := notify.NewNotifier(d, s, "https://onsite.test/status", guards(), quiet())
		n.WithClock(c.Now)
		offer := func(key string) notify.Outgoing {
			return notify.Outgoing{DedupeKey: key, Kind: notify.KindOffer, Recipient: "technician:t1", To: "+41795550001", Locale: "en",
				Data: notify.Data{Skill: "router_replace", DistanceKm: "1.7", EtaMinutes: 6, ExpiresAt: "18:17"}}
		}
		tw.FailWith(http.StatusInternalServerError)
		if err := n.Deliver(ctx, []notify.Outgoing{offer("ev1:offer:technician:t1")}); err != nil {
			t.Fatal(err)
		}
		tw.FailWith(0)
		tw.LoseAnswers(1)
		if err := n.Deliver(ctx, []notify.Outgoing{offer("ev2:offer:technician:t1")}); err != nil {
			t.Fatal(err)
		}
		first, second := load(t, d, "ev1:offer:technician:t1"), load(t, d, "ev2:offer:technician:t1")
		if first.State != notify.StateSending || second.State != notify.StateSending || len(tw.Messages()) != 1 {
			t.Fatalf("before asking: %s, %s; twilio has %d", first.State, second.State, len(tw.Messages()))
		}
		if second.Body != first.Body+" (2)" {
			t.Fatalf("alike texts: %q and %q", first.Body, second.Body)
		}
		c.Add(time.Second)
		for _, m := range []notify.Message{first, second} {
			if err := n.SendMessage(ctx, m.ID); err != nil {
				t.Fatal(err)
			}
		}
		got := map[string]int{}
		for _, r := range tw.Received() {
			got[strings.TrimPrefix(r.Form.Get("StatusCallback"), "https://onsite.test/status?message=")]++
		}
		first, second = load(t, d, first.DedupeKey), load(t, d, second.DedupeKey)
		if first.State != notify.StateSent || second.State != notify.StateSent || got[first.ID] != 1 || got[second.ID] != 1 || len(got) != 2 {
			t.Fatalf("after asking: %s, %s; twilio got %v", first.State, second.State, got)
		}
	})
}
