package signin_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/onsite/onsite/internal/auth"
	"github.com/onsite/onsite/internal/db"
	"github.com/onsite/onsite/internal/dbtest"
	"github.com/onsite/onsite/internal/errs"
	"github.com/onsite/onsite/internal/phones"
	"github.com/onsite/onsite/internal/ratelimit"
	"github.com/onsite/onsite/notify"
	"github.com/onsite/onsite/signin"
)

// inbox is a notify.Sender that keeps what it was asked to send (the
// notifier and its database are real).
type inbox struct {
	mu   sync.Mutex
	sent []notify.SMS
}

func (b *inbox) Send(_ context.Context, m notify.SMS) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sent = append(b.sent, m)
	return fmt.Sprint("SM", len(b.sent)), nil
}

var sixDigits = regexp.MustCompile(`\b(\d{6})\b`)

func (b *inbox) lastCode(t *testing.T) string {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.sent) == 0 {
		t.Fatal("nothing sent")
	}
	m := sixDigits.FindStringSubmatch(b.sent[len(b.sent)-1].Body)
	if m == nil {
		t.Fatalf("no code in %q", b.sent[len(b.sent)-1].Body)
	}
	return m[1]
}

func newService(t *testing.T, d *db.DB) (*signin.Service, *inbox) {
	t.Helper()
	opt, err := redis.ParseURL(dbtest.RedisURL(dbtest.RedisDBSignin))
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { _ = rdb.Close() })
	countries := phones.MustParseCountries(phones.DefaultCountries)
	box := &inbox{}
	n := notify.NewNotifier(d, box, "", notify.Guards{Countries: countries, PerPhoneDay: 20, PerAccountDay: 50},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	prefix := fmt.Sprintf("t%d:", time.Now().UnixNano()) // keys of this test only
	secret := []byte("test-secret-test-secret-test-secret!")
	return signin.NewService(d, auth.NewIssuer(secret), n, ratelimit.NewWindow(rdb, prefix, 10*time.Minute), secret, countries, time.Now), box
}

func code(err error) errs.Code { return errs.CodeOf(err) }

// TestConfirmContact: the code confirms the phone for that customer only;
// wrong guesses stop at 5, even in parallel; a new code starts again.
func TestConfirmContact(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s, box := newService(t, d)
		const phone = "+41791110001"
		c, err := s.SendContactCode(ctx, "carla", phone)
		if err != nil || c.Confirmed || c.ExpiresIn != 600 {
			t.Fatalf("send: %+v %v", c, err)
		}
		right := box.lastCode(t)
		wrong := "000000"
		if right == wrong {
			wrong = "111111"
		}
		if _, err := s.ConfirmContact(ctx, "dora", phone, right); code(err) != errs.Invalid {
			t.Fatalf("another customer: %v", err)
		}
		var wg sync.WaitGroup
		for range 20 {
			wg.Add(1)
			go func() { defer wg.Done(); _, _ = s.ConfirmContact(ctx, "carla", phone, wrong) }()
		}
		wg.Wait()
		var attempts int
		d.Table("contact_phones").Where("customer_id = ? AND phone = ?", "carla", phone).Select("attempts").Scan(&attempts)
		if attempts != signin.MaxAttempts {
			t.Fatalf("%d attempts counted, want %d", attempts, signin.MaxAttempts)
		}
		if _, err := s.ConfirmContact(ctx, "carla", phone, right); code(err) != errs.RateLimited {
			t.Fatalf("the right code after 5 wrong: %v", err)
		}
		if _, err := s.SendContactCode(ctx, "carla", phone); err != nil {
			t.Fatal(err)
		}
		c, err = s.ConfirmContact(ctx, "carla", phone, box.lastCode(t))
		if err != nil || !c.Confirmed || c.ConfirmedAt == nil {
			t.Fatalf("confirm: %+v %v", c, err)
		}
		// proved: asking again texts nothing, confirming again is fine
		before := len(box.sent)
		if c, err := s.SendContactCode(ctx, "carla", phone); err != nil || !c.Confirmed || len(box.sent) != before {
			t.Fatalf("again: %+v %v, %d texts", c, err, len(box.sent)-before)
		}
		list, err := s.Contacts(ctx, "carla")
		if err != nil || len(list) != 1 || list[0].Phone != phone || !list[0].Confirmed {
			t.Fatalf("contacts %+v %v", list, err)
		}
		// an expired code confirms nothing
		if _, err := s.SendContactCode(ctx, "carla", "+41791110002"); err != nil {
			t.Fatal(err)
		}
		late := box.lastCode(t)
		d.Exec("UPDATE contact_phones SET expires_at = ? WHERE phone = ?", time.Now().Add(-time.Minute).UTC(), "+41791110002")
		if _, err := s.ConfirmContact(ctx, "carla", "+41791110002", late); code(err) != errs.Invalid {
			t.Fatalf("expired code: %v", err)
		}
		// codes are limited per phone
		for range 2 {
			if _, err := s.SendContactCode(ctx, "carla", "+41791110002"); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.SendContactCode(ctx, "carla", "+41791110002"); code(err) != errs.RateLimited {
			t.Fatalf("fourth code in 10 minutes: %v", err)
		}
		// and only go to the countries Onsite texts
		if _, err := s.SendContactCode(ctx, "carla", "+447700900123"); code(err) != errs.Invalid {
			t.Fatalf("abroad: %v", err)
		}
	})
}
