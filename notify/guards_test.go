package notify_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/onsite/onsite/internal/db"
	"github.com/onsite/onsite/internal/dbtest"
	"github.com/onsite/onsite/internal/phones"
	"github.com/onsite/onsite/notify"
)

// TestGuards: what the guards let through and what they hold back, and why,
// on both engines: the country allow-list, a customer's texts only to
// proved phones, and the caps per phone and per account.
func TestGuards(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		now := time.Now().UTC()
		for _, stmt := range []string{
			`INSERT INTO customers (id, name, phone, locale, created_at) VALUES ('carla', '', '+41790000001', 'en', ?)`,
			`INSERT INTO customers (id, name, locale, created_at) VALUES ('dora', '', 'en', ?)`,
			`INSERT INTO contact_phones (customer_id, phone, confirmed_at, created_at, updated_at) VALUES ('carla', '+41790000002', ?, ?, ?)`,
			`INSERT INTO contact_phones (customer_id, phone, code_hash, expires_at, created_at, updated_at) VALUES ('carla', '+41790000003', 'h', ?, ?, ?)`,
		} {
			args := []any{now}
			for len(args) < countMarks(stmt) {
				args = append(args, now)
			}
			if err := d.Exec(stmt, args...).Error; err != nil {
				t.Fatal(err)
			}
		}
		g := guards()
		g.PerPhoneDay, g.PerAccountDay = 3, 5
		s := &countingSender{}
		n := notify.NewNotifier(d, s, "", g, quiet())
		ctx := context.Background()
		seq := 0
		text := func(to, account, recipient string, kind notify.Kind) notify.Outgoing {
			seq++
			return notify.Outgoing{DedupeKey: fmt.Sprint("k", seq), Kind: kind, Recipient: recipient, To: to, Locale: "en", Account: account,
				Data: notify.Data{Skill: "wifi_setup", Code: "123456"}}
		}
		customer := func(to, account string) notify.Outgoing {
			return text(to, account, "customer:"+account, notify.KindCompleted)
		}
		tests := []struct {
			name     string
			out      notify.Outgoing
			withheld string // "" when sent
		}{
			{"the sign-in phone", customer("+41790000001", "carla"), ""},
			{"a confirmed contact phone", customer("+41790000002", "carla"), ""},
			{"a contact phone with a code pending", customer("+41790000003", "carla"), notify.WithheldUnconfirmed},
			{"a phone nobody proved", customer("+41790000009", "carla"), notify.WithheldUnconfirmed},
			{"another customer's proved phone", customer("+41790000001", "dora"), notify.WithheldUnconfirmed},
			{"the contact code itself", text("+41790000009", "dora", "customer:dora", notify.KindContactCode), ""},
			{"a sign-in code", text("+41790000008", "", "customer:+41790000008", notify.KindOTP), ""},
			{"outside the countries", customer("+447700900123", "carla"), notify.WithheldCountry},
			{"a sign-in code outside the countries", text("+12025550123", "", "customer:+12025550123", notify.KindOTP), notify.WithheldCountry},
			{"a technician outside the countries", text("+447700900124", "", "technician:t1", notify.KindOffer), notify.WithheldCountry},
			{"the sign-in phone again", customer("+41790000001", "carla"), ""},
			{"the sign-in phone a third time", customer("+41790000001", "carla"), ""},
			{"the sign-in phone past its cap of 3", customer("+41790000001", "carla"), notify.WithheldPhoneCap},
			{"the account's 5th text", customer("+41790000002", "carla"), ""},
			{"the account past its cap of 5", customer("+41790000002", "carla"), notify.WithheldAccountCap},
			{"a technician is not capped (1)", text("+41790000005", "", "technician:t1", notify.KindOffer), ""},
			{"a technician is not capped (2)", text("+41790000005", "", "technician:t1", notify.KindOffer), ""},
			{"a technician is not capped (3)", text("+41790000005", "", "technician:t1", notify.KindOffer), ""},
			{"a technician is not capped (4)", text("+41790000005", "", "technician:t1", notify.KindOffer), ""},
		}
		for _, tc := range tests {
			before := len(s.sent)
			err := n.DeliverNow(ctx, tc.out)
			var w *notify.WithheldError
			switch {
			case tc.withheld == "" && err != nil:
				t.Fatalf("%s: %v", tc.name, err)
			case tc.withheld != "" && (!errors.As(err, &w) || w.Reason != tc.withheld):
				t.Fatalf("%s: %v, want withheld %s", tc.name, err, tc.withheld)
			}
			sent := len(s.sent) - before
			if (tc.withheld == "") != (sent == 1) {
				t.Fatalf("%s: %d sent", tc.name, sent)
			}
			var reasons []string
			d.Table("sms_withheld").Where("dedupe_key = ?", tc.out.DedupeKey).Pluck("reason", &reasons)
			if tc.withheld != "" && (len(reasons) != 1 || reasons[0] != tc.withheld) {
				t.Fatalf("%s: recorded %v", tc.name, reasons)
			}
			// the same text again: nothing more is sent or recorded
			if err := n.Deliver(ctx, []notify.Outgoing{tc.out}); err != nil {
				t.Fatalf("%s again: %v", tc.name, err)
			}
			if len(s.sent)-before != sent {
				t.Fatalf("%s again: sent once more", tc.name)
			}
		}
		var withheld, messages int64
		d.Table("sms_withheld").Count(&withheld)
		d.Table("messages").Count(&messages)
		if withheld != 8 || messages != int64(len(s.sent)) || len(s.sent) != 11 {
			t.Fatalf("%d withheld, %d messages, %d sent", withheld, messages, len(s.sent))
		}
	})
}

func countMarks(s string) (n int) {
	for _, r := range s {
		if r == '?' {
			n++
		}
	}
	return n
}

// TestCapUnderConcurrency: 30 texts to one phone at once under a cap of 5:
// exactly 5 go out, the 25 others are recorded as over the cap.
func TestCapUnderConcurrency(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := &countingSender{}
		n := notify.NewNotifier(d, s, "", notify.Guards{Countries: phones.MustParseCountries("CH"), PerPhoneDay: 5}, quiet())
		var wg sync.WaitGroup
		for i := range 30 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				o := notify.Outgoing{DedupeKey: fmt.Sprint("c", i), Kind: notify.KindOTP, Recipient: "customer:+41790000001", To: "+41790000001",
					Locale: "en", Data: notify.Data{Code: "123456"}, Secret: true}
				if err := n.DeliverNow(context.Background(), o); err != nil && !errors.As(err, new(*notify.WithheldError)) {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		var capped int64
		d.Table("sms_withheld").Where("reason = ?", notify.WithheldPhoneCap).Count(&capped)
		if len(s.sent) != 5 || capped != 25 {
			t.Fatalf("%d sent, %d capped; want 5 and 25", len(s.sent), capped)
		}
		// the next day's counts start again; yesterday's are cleaned up
		if err := d.Exec("UPDATE sms_counts SET day = '2000-01-01'").Error; err != nil {
			t.Fatal(err)
		}
		if err := n.DeliverNow(context.Background(), notify.Outgoing{DedupeKey: "next-day", Kind: notify.KindOTP, Recipient: "customer:+41790000001",
			To: "+41790000001", Locale: "en", Data: notify.Data{Code: "1"}, Secret: true}); err != nil {
			t.Fatalf("next day: %v", err)
		}
		if deleted, err := n.Cleanup(context.Background()); err != nil || deleted != 1 {
			t.Fatalf("cleanup: %d %v", deleted, err)
		}
	})
}

// TestGuardsInTheDurablePath: the guards hold inside the durable delivery
// (docs/messages.md): a withheld or capped text never becomes a message, so
// it holds no lane up, no retry or sweep finds it, and a later run of its
// task neither sends nor counts it again (the sweep counts it as stored); a
// message already stored for a country since taken off the list is stopped
// at its next attempt and recorded, not sent.
func TestGuardsInTheDurablePath(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		now := time.Now().UTC()
		if err := d.Exec(`INSERT INTO customers (id, name, phone, locale, created_at) VALUES ('carla', '', '+41790000001', 'en', ?)`, now).Error; err != nil {
			t.Fatal(err)
		}
		c := newClock()
		s := &countingSender{}
		g := guards()
		g.PerPhoneDay = 2
		n := notify.NewNotifier(d, s, "", g, quiet())
		n.WithClock(c.Now)
		lane := func(i int, to string) notify.Outgoing {
			o := out(fmt.Sprint("ev", i, ":completed:customer:carla"), notify.KindCompleted, to)
			o.Recipient, o.Account, o.RequestID = "customer:carla", "carla", "r1"
			o.EventID, o.EventAt = fmt.Sprint("ev", i), c.Now().Add(time.Duration(i)*time.Millisecond)
			return o
		}
		texts := []notify.Outgoing{
			lane(1, "+41790000009"), // a phone carla never proved: withheld
			lane(2, "+41790000001"), // her sign-in phone: sent, though behind a withheld text
			lane(3, "+41790000001"), // not accepted: queued for a retry
			lane(4, "+41790000001"), // past the cap of 2 (the queued one counted): withheld
		}
		s.fails = nil
		if err := n.Deliver(ctx, texts[:2]); err != nil {
			t.Fatal(err)
		}
		s.fails = []error{fmt.Errorf("busy: %w", notify.ErrNotAccepted)}
		if err := n.Deliver(ctx, texts[2:]); err != nil {
			t.Fatal(err)
		}
		if len(s.sent) != 1 || s.sent[0].To != "+41790000001" {
			t.Fatalf("sent %+v", s.sent)
		}
		var reasons []string
		d.Table("sms_withheld").Order("dedupe_key").Pluck("reason", &reasons)
		if len(reasons) != 2 || reasons[0] != notify.WithheldUnconfirmed || reasons[1] != notify.WithheldPhoneCap {
			t.Fatalf("withheld %v", reasons)
		}
		for _, k := range []string{texts[0].DedupeKey, texts[3].DedupeKey} {
			var n int64
			d.Model(&notify.Message{}).Where("dedupe_key = ?", k).Count(&n)
			if n != 0 {
				t.Fatalf("withheld %s is a message", k)
			}
		}
		// The sweep, later: only the queued message is due; a withheld
		// text counts as stored.
		c.Add(time.Minute)
		due, err := n.Due(ctx, c.Now(), 10)
		if err != nil || len(due) != 1 || due[0].ID != load(t, d, texts[2].DedupeKey).ID {
			t.Fatalf("due %+v %v", due, err)
		}
		stored, err := n.Stored(ctx, []string{texts[0].DedupeKey, texts[3].DedupeKey, "nothing"})
		if err != nil || !stored[texts[0].DedupeKey] || !stored[texts[3].DedupeKey] || stored["nothing"] {
			t.Fatalf("stored %v %v", stored, err)
		}
		if err := n.SendMessage(ctx, due[0].ID); err != nil {
			t.Fatal(err)
		}
		// Every task run again: nothing more is sent or counted.
		if err := n.Deliver(ctx, texts); err != nil {
			t.Fatal(err)
		}
		if len(s.sent) != 2 {
			t.Fatalf("%d sent, want 2", len(s.sent))
		}
		var counted []int
		d.Table("sms_counts").Where("scope = ?", "phone:+41790000001").Pluck("sent", &counted)
		if len(counted) != 1 || counted[0] != 2 {
			t.Fatalf("counted %v, want [2]", counted)
		}
		if due, _ := n.Due(ctx, c.Now().Add(time.Hour), 10); len(due) != 0 {
			t.Fatalf("still due: %+v", due)
		}

		// A message stored while GB was allowed, then GB taken off the list
		// (a restart with a narrower ONSITE_SMS_COUNTRIES): its retry is
		// stopped by the guards and recorded.
		wide := guards()
		wide.Countries = phones.MustParseCountries("CH,GB")
		before := notify.NewNotifier(d, s, "", wide, quiet())
		before.WithClock(c.Now)
		s.fails = []error{fmt.Errorf("busy: %w", notify.ErrNotAccepted)}
		gb := out("gb:assigned:customer:c9", notify.KindAssigned, "+447700900123")
		if err := before.Deliver(ctx, []notify.Outgoing{gb}); err != nil {
			t.Fatal(err)
		}
		c.Add(time.Minute)
		if err := n.SendMessage(ctx, load(t, d, gb.DedupeKey).ID); err != nil {
			t.Fatal(err)
		}
		m := load(t, d, gb.DedupeKey)
		if m.State != notify.StateFailed || m.Error == nil || *m.Error != notify.WithheldPrefix+notify.WithheldCountry || len(s.sent) != 2 {
			t.Fatalf("after the narrower list: %+v (%d sent)", m, len(s.sent))
		}
		var held int64
		d.Table("sms_withheld").Where("dedupe_key = ? AND reason = ?", gb.DedupeKey, notify.WithheldCountry).Count(&held)
		if held != 1 {
			t.Fatal("the stopped message was not recorded as withheld")
		}
	})
}
