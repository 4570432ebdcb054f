package jobs_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/onsite/onsite/dispatch"
	"github.com/onsite/onsite/internal/apitest"
	"github.com/onsite/onsite/internal/db"
	"github.com/onsite/onsite/internal/dbtest"
	"github.com/onsite/onsite/internal/phones"
	"github.com/onsite/onsite/internal/twiliotest"
	"github.com/onsite/onsite/jobs"
	"github.com/onsite/onsite/notify"
	"github.com/onsite/onsite/technicians"
)

// TestMessagesSurviveRedisStop stops Redis in the middle of a run: messages
// for changes committed while it was down go out once it is back, and no
// message goes out twice.
func TestMessagesSurviveRedisStop(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		rp := startRedis(t, freePort(t))
		_, svc := newServices(t, d)
		tw := twiliotest.Start(t)
		sender := twilioSender(t, tw)
		notifier := notify.NewNotifier(d, sender, "https://onsite.test/v1/webhooks/twilio/status", guards(), quiet())
		rc := redis.NewClient(&redis.Options{Addr: rp.addr(), MaxRetries: 1, DialTimeout: 200 * time.Millisecond})
		t.Cleanup(func() { _ = rc.Close() })
		w := jobs.NewWorker(d, rc, svc, "", quiet())
		w.WithMessages(jobs.NewMessages(svc, notifier, nil, []byte("key"), "https://onsite.test"))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- w.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })

		open := func(i int) string {
			proveContact(t, d, fmt.Sprint("c", i), fmt.Sprintf("+4179111000%d", i))
			lat, lng := 47.3769, 8.5417
			out, err := svc.Create(context.Background(), dispatch.Caller{Role: "customer", Subject: fmt.Sprint("c", i)}, "",
				dispatch.NewRequest{Skill: "wifi_setup", Lat: &lat, Lng: &lng, Phone: fmt.Sprintf("+4179111000%d", i)})
			if err != nil {
				t.Fatal(err)
			}
			return out.Request.ID
		}
		count := func(what string) int {
			n := 0
			for _, m := range tw.Messages() {
				if strings.Contains(m.Get("Body"), what) {
					n++
				}
			}
			return n
		}
		var first []string
		for i := range 3 {
			first = append(first, open(i))
		}
		apitest.Eventually(t, 15*time.Second, "3 offer SMS", func() bool { return count("Reply YES") == 3 })

		rp.stop()
		ops := dispatch.Caller{Role: "ops", Subject: "alice"}
		for _, id := range first {
			if _, err := svc.Cancel(context.Background(), ops, id, dispatch.CancelInput{Reason: "customer called"}); err != nil {
				t.Fatal(err)
			}
		}
		for i := 3; i < 5; i++ {
			open(i)
		}
		time.Sleep(300 * time.Millisecond)
		if n := count("was cancelled"); n != 0 {
			t.Fatalf("%d messages went out while Redis was down", n)
		}
		rp.start()
		apitest.Eventually(t, 30*time.Second, "the cancellations and the new offers after Redis came back", func() bool {
			return count("was cancelled") == 3 && count("Reply YES") == 5
		})
		// Each stored message (one per event and recipient) reached Twilio
		// exactly once.
		var stored int64
		d.Table("messages").Count(&stored)
		if got := len(tw.Messages()); int64(got) != stored || stored != 8 {
			t.Fatalf("Twilio got %d messages for %d stored, want 8", got, stored)
		}
		// Twilio may have answered a moment before the message is marked
		// sent: wait for the marks, by polling.
		apitest.Eventually(t, 10*time.Second, "every stored message marked sent", func() bool {
			var queued int64
			d.Table("messages").Where("state <> ?", notify.StateSent).Count(&queued)
			return queued == 0
		})
	})
}

// TestReminders: assigning a windowed appointment schedules its reminders an
// hour before the window; they reach the technician and the customer once.
func TestReminders(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		techs, svc := newServices(t, d)
		tw := twiliotest.Start(t)
		sender := twilioSender(t, tw)
		msgs := jobs.NewMessages(svc, notify.NewNotifier(d, sender, "", guards(), quiet()), nil, []byte("k"), "https://onsite.test")
		proveContact(t, d, "c1", "+41791117777")
		if name, err := svc.SkillName(ctx, "wifi_setup", "en"); err != nil || name != "Wi-Fi" {
			t.Fatalf("skill name %q %v", name, err)
		}
		if _, err := svc.SkillName(ctx, "nope", "en"); err == nil {
			t.Fatal("a skill that does not exist has a name")
		}
		lat, lng := 47.3769, 8.5417
		start := time.Now().Add(3 * time.Hour).Truncate(time.Minute)
		out, err := svc.Create(ctx, dispatch.Caller{Role: "customer", Subject: "c1"}, "", dispatch.NewRequest{Skill: "wifi_setup", Lat: &lat, Lng: &lng,
			Address: "Seestrasse 5", Phone: "+41791117777", Locale: "it", Window: &dispatch.TimeWindow{Start: start, End: start.Add(2 * time.Hour)}})
		if err != nil {
			t.Fatal(err)
		}
		list, _ := techs.List(ctx, technicians.Filter{})
		if _, err := svc.AssignByHand(ctx, dispatch.Caller{Role: "ops", Subject: "alice"}, out.Request.ID, dispatch.AssignInput{TechnicianID: list[0].ID}); err != nil {
			t.Fatal(err)
		}
		var at time.Time
		if err := d.Table("outbox").Where("kind = ?", dispatch.TaskRemind).Select("process_at").Scan(&at).Error; err != nil || !at.Equal(start.Add(-time.Hour).UTC()) {
			t.Fatalf("reminder task at %v (%v), want %v", at, err, start.Add(-time.Hour))
		}
		// The reminder waits for the messages of the events before it (the
		// assignment's): the worker stores them.
		for range 2 { // the task may run twice
			if err := msgs.Remind(ctx, out.Request.ID); err != nil {
				t.Fatal(err)
			}
		}
		if n := len(tw.Messages()); n != 0 {
			t.Fatalf("%d messages went before the assignment's was stored", n)
		}
		owed, err := svc.OwedEvents(ctx, time.Now().Add(time.Second), 10)
		if err != nil || len(owed) != 1 { // assigned (a request created searching texts nobody)
			t.Fatalf("owed events: %+v %v", owed, err)
		}
		for _, p := range owed {
			if err := msgs.ForEvent(ctx, p.EventID); err != nil {
				t.Fatal(err)
			}
		}
		cust := tw.To("+41791117777")
		tech := tw.To(list[0].Phone)
		// (the window's end carries its date when it falls on the next day)
		window := "tra le " + start.UTC().Format("15:04") + " e le "
		if len(cust) != 2 || !strings.Contains(cust[0], "verrà") || !strings.Contains(cust[0], window) || strings.Contains(cust[0], "verso le") ||
			!strings.Contains(cust[0], "Segui dal vivo: https://onsite.test/track/") ||
			!strings.Contains(cust[1], "Promemoria") || !strings.Contains(cust[1], window) ||
			len(tech) != 2 || !strings.HasPrefix(tech[0], "Dispatch gave you a job: Wi-Fi ") || !strings.Contains(tech[0], " between ") ||
			!strings.Contains(tech[1], "your Wi-Fi job") || strings.Contains(strings.Join(tech, " "), "Seestrasse") ||
			strings.Contains(strings.Join(append(cust, tech...), " "), "wifi_setup") {
			t.Fatalf("assignment and reminders: customer %q, technician %q", cust, tech)
		}
		// a cancelled appointment is not reminded of
		if _, err := svc.Cancel(ctx, dispatch.Caller{Role: "customer", Subject: "c1"}, out.Request.ID, dispatch.CancelInput{Reason: "away"}); err != nil {
			t.Fatal(err)
		}
		d.Exec("DELETE FROM messages")
		if err := msgs.Remind(ctx, out.Request.ID); err != nil {
			t.Fatal(err)
		}
		if n := len(tw.Messages()); n != 4 {
			t.Fatalf("%d messages after the cancellation's reminder, want still 4", n)
		}
	})
}

// TestMessagesWaitForEarlierEvents: a request's messages leave in event
// order even when the worker handles its events out of order: a message
// waits while an earlier event of its request still owes its messages.
func TestMessagesWaitForEarlierEvents(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		techs, svc := newServices(t, d)
		tw := twiliotest.Start(t)
		notifier := notify.NewNotifier(d, twilioSender(t, tw), "", guards(), quiet())
		notifier.WithCheck(jobs.Check(svc))
		msgs := jobs.NewMessages(svc, notifier, nil, []byte("k"), "https://onsite.test")
		proveContact(t, d, "c1", "+41791117777")
		lat, lng := 47.3769, 8.5417
		out, err := svc.Create(ctx, dispatch.Caller{Role: "customer", Subject: "c1"}, "", dispatch.NewRequest{Skill: "wifi_setup", Lat: &lat, Lng: &lng,
			Phone: "+41791117777", Locale: "en"})
		if err != nil {
			t.Fatal(err)
		}
		list, _ := techs.List(ctx, technicians.Filter{})
		if _, err := svc.AssignByHand(ctx, dispatch.Caller{Role: "ops", Subject: "alice"}, out.Request.ID, dispatch.AssignInput{TechnicianID: list[0].ID}); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Depart(ctx, list[0].ID, out.Request.ID); err != nil {
			t.Fatal(err)
		}
		owed, err := svc.OwedEvents(ctx, time.Now().Add(time.Second), 10)
		if err != nil || len(owed) != 2 { // assigned, en_route (a request created searching texts nobody)
			t.Fatalf("owed: %+v %v", owed, err)
		}
		// The en route event is handled first: its message waits.
		if err := msgs.ForEvent(ctx, owed[1].EventID); err != nil {
			t.Fatal(err)
		}
		if n := len(tw.Messages()); n != 0 {
			t.Fatalf("%d sent while the assignment's message was owed", n)
		}
		if err := msgs.ForEvent(ctx, owed[0].EventID); err != nil {
			t.Fatal(err)
		}
		got := tw.To("+41791117777")
		if len(got) != 2 || !strings.Contains(got[0], "Tina will take care of") || !strings.Contains(got[1], "Tina has set off") {
			t.Fatalf("sent %q", got)
		}
		if left, _ := svc.OwedEvents(ctx, time.Now().Add(time.Second), 10); len(left) != 0 {
			t.Fatalf("still owed: %+v", left)
		}
	})
}

// TestSweepWakesLostMessageWork: Redis loses every wake-up twice, once
// after the relay handed the events over and once while a send's outcome is
// unknown (Twilio answering 500); the sweep queues the work again from
// PostgreSQL and the customer gets each message once.
func TestSweepWakesLostMessageWork(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		rp := startRedis(t, freePort(t))
		techs, svc := newServices(t, d)
		tw := twiliotest.Start(t)
		rc := redis.NewClient(&redis.Options{Addr: rp.addr(), MaxRetries: 1, DialTimeout: 200 * time.Millisecond})
		t.Cleanup(func() { _ = rc.Close() })
		notifier := notify.NewNotifier(d, twilioSender(t, tw), "", guards(), quiet())
		notifier.WithCheck(jobs.Check(svc))
		notifier.WithWake(jobs.NewWaker(rc, "").Message)
		msgs := jobs.NewMessages(svc, notifier, nil, []byte("k"), "https://onsite.test")
		proveContact(t, d, "c1", "+41791117777")

		lat, lng := 47.3769, 8.5417
		out, err := svc.Create(ctx, dispatch.Caller{Role: "customer", Subject: "c1"}, "", dispatch.NewRequest{Skill: "wifi_setup", Lat: &lat, Lng: &lng,
			Phone: "+41791117777", Locale: "en"})
		if err != nil {
			t.Fatal(err)
		}
		list, _ := techs.List(ctx, technicians.Filter{})
		if _, err := svc.AssignByHand(ctx, dispatch.Caller{Role: "ops", Subject: "alice"}, out.Request.ID, dispatch.AssignInput{TechnicianID: list[0].ID}); err != nil {
			t.Fatal(err)
		}
		relay := jobs.NewRelay(d, asynq.NewClientFromRedisClient(rc), "", quiet())
		if _, err := relay.Once(ctx); err != nil {
			t.Fatal(err)
		}
		if err := rc.FlushAll(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		tw.FailWith(http.StatusInternalServerError)
		w := jobs.NewWorker(d, rc, svc, "", quiet())
		w.WithMessages(msgs)
		w.SweepEvery(time.Second)
		wctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- w.Run(wctx) }()
		t.Cleanup(func() { cancel(); <-done })

		var m notify.Message
		apitest.Eventually(t, 20*time.Second, "the assignment's message stored by the sweep's wake-up and tried", func() bool {
			return d.Where("kind = ? AND state = ?", notify.KindAssigned, notify.StateSending).First(&m).Error == nil
		})
		if err := rc.FlushAll(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		tw.FailWith(0)
		apitest.Eventually(t, 30*time.Second, "the message sent", func() bool {
			return d.Where("id = ?", m.ID).First(&m).Error == nil && m.State == notify.StateSent
		})
		if got := tw.To("+41791117777"); len(got) != 1 || !strings.Contains(got[0], "Tina will take care of") {
			t.Fatalf("the customer got %q", got)
		}
		if left, _ := svc.OwedEvents(ctx, time.Now().Add(time.Second), 10); len(left) != 0 {
			t.Fatalf("still owed: %+v", left)
		}
	})
}

// twilioSender is the real twilio-go sender pointed at the stand-in.
func twilioSender(t *testing.T, tw *twiliotest.Server) *notify.TwilioSender {
	t.Helper()
	s, err := notify.NewTwilioSender(notify.TwilioConfig{AccountSID: twiliotest.AccountSID, AuthToken: twiliotest.AuthToken,
		From: twiliotest.From, APIURL: tw.URL()})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// guards are the default guards of a deployment.
func guards() notify.Guards {
	return notify.Guards{Countries: phones.MustParseCountries(phones.DefaultCountries), PerPhoneDay: 20, PerAccountDay: 50}
}

// proveContact makes phone a confirmed contact phone of customer, as the
// confirmation flow does (tested over HTTP in internal/app).
func proveContact(t *testing.T, d *db.DB, customer, phone string) {
	t.Helper()
	now := time.Now().UTC()
	if err := d.Exec(`INSERT INTO contact_phones (customer_id, phone, confirmed_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?)`,
		customer, phone, now, now, now).Error; err != nil {
		t.Fatal(err)
	}
}
