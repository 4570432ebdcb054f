package notify

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/onsite/onsite/internal/db"
	"github.com/onsite/onsite/internal/phones"
)

// Guards keep Onsite's texts from being turned against people: no text
// leaves for a country outside Countries, a customer's texts go only to
// phones the customer proved, and texts a day are capped per phone and per
// account (counted in the database, so every process shares the count and
// a restart forgets nothing). A cap of 0 is no cap.
type Guards struct {
	Countries     phones.Countries
	PerPhoneDay   int
	PerAccountDay int
}

// Why a text was withheld (sms_withheld.reason).
const (
	WithheldCountry     = "country_not_allowed"
	WithheldUnconfirmed = "contact_unconfirmed"
	WithheldPhoneCap    = "cap_phone"
	WithheldAccountCap  = "cap_account"
	WithheldOptedOut    = "opted_out" // the phone replied STOP
)

// WithheldError is a text the guards held back, and why.
type WithheldError struct{ Reason string }

func (e *WithheldError) Error() string { return "text withheld: " + e.Reason }

// withheldRow is one row of sms_withheld.
type withheldRow struct {
	ID        string `gorm:"primaryKey"`
	DedupeKey string
	Kind      Kind
	RequestID *string
	Recipient string
	ToPhone   string
	Reason    string
	CreatedAt time.Time
}

func (withheldRow) TableName() string { return "sms_withheld" }

// withheldBefore returns which of the dedupe keys were withheld before: a
// task that runs again does not reconsider them (a phone confirmed meanwhile
// gets the texts from then on, not the ones held back before).
func (n *Notifier) withheldBefore(ctx context.Context, keys []string) (map[string]bool, error) {
	var found []string
	if err := n.db.WithContext(ctx).Model(&withheldRow{}).Where("dedupe_key IN ?", keys).Pluck("dedupe_key", &found).Error; err != nil {
		return nil, fmt.Errorf("load withheld messages: %w", err)
	}
	done := make(map[string]bool, len(found))
	for _, k := range found {
		done[k] = true
	}
	return done, nil
}

// errOverCap rolls back a message that would go past a cap.
type errOverCap struct{ reason string }

func (e errOverCap) Error() string { return "over the cap: " + e.reason }

// keep stores m for sending unless a guard holds o back; it returns the
// reason when one does (and records it in sms_withheld instead). A message
// stored before (a concurrent run) is left as it is and counts nothing
// again.
func (n *Notifier) keep(ctx context.Context, o Outgoing, m Message, now time.Time) (string, error) {
	reason, err := n.screen(ctx, o)
	if err != nil {
		return "", err
	}
	if reason == "" {
		err = n.db.Tx(ctx, func(tx *gorm.DB) error {
			res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&m)
			if res.Error != nil {
				return fmt.Errorf("store message %s: %w", o.DedupeKey, res.Error)
			}
			if res.RowsAffected == 0 {
				return nil // stored before: counted then
			}
			return n.count(tx, o, now)
		})
		var over errOverCap
		if !errors.As(err, &over) {
			return "", err
		}
		reason = over.reason
	}
	w := withheldRow{ID: db.NewID(), DedupeKey: o.DedupeKey, Kind: o.Kind, Recipient: o.Recipient, ToPhone: o.To, Reason: reason, CreatedAt: now}
	if o.RequestID != "" {
		w.RequestID = &o.RequestID
	}
	if err := n.recordWithheld(ctx, w); err != nil {
		return "", err
	}
	n.log.WarnContext(ctx, "sms withheld", "kind", o.Kind, "to", o.To, "account", o.Account, "reason", reason)
	return reason, nil
}

// recordWithheld keeps w (once per dedupe key).
func (n *Notifier) recordWithheld(ctx context.Context, w withheldRow) error {
	if err := n.db.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&w).Error; err != nil {
		return fmt.Errorf("record withheld message %s: %w", w.DedupeKey, err)
	}
	return nil
}

// WithheldPrefix starts the error of a stored message that the guards
// stopped just before it was sent (state failed): "withheld:
// country_not_allowed".
const WithheldPrefix = "withheld: "

// screenAtSend is the guards' last look at a stored message, just before
// each send attempt (also the sweep's and every retry's): its phone must
// still be in an allowed country and must not have replied STOP since. Messages are screened in full when they
// are stored; this catches rows stored before a narrower
// ONSITE_SMS_COUNTRIES, or before the guards existed. The withheld text is
// recorded like one held back when stored.
func (n *Notifier) screenAtSend(ctx context.Context, m Message) (string, error) {
	reason := WithheldCountry
	if n.guards.Countries.Allows(m.ToPhone) {
		out, err := n.optedOut(ctx, m.ToPhone) // a STOP after it was stored
		if err != nil || !out {
			return "", err
		}
		reason = WithheldOptedOut
	}
	w := withheldRow{ID: db.NewID(), DedupeKey: m.DedupeKey, Kind: m.Kind, RequestID: m.RequestID, Recipient: m.Recipient,
		ToPhone: m.ToPhone, Reason: reason, CreatedAt: n.now()}
	if err := n.recordWithheld(ctx, w); err != nil {
		return "", err
	}
	n.log.WarnContext(ctx, "sms withheld before sending", "message", m.ID, "kind", m.Kind, "to", m.ToPhone, "reason", reason)
	return reason, nil
}

// screen applies the guards that need no counting: the country, and a
// proved phone for a customer's texts.
func (n *Notifier) screen(ctx context.Context, o Outgoing) (string, error) {
	if !n.guards.Countries.Allows(o.To) {
		return WithheldCountry, nil
	}
	if out, err := n.optedOut(ctx, o.To); err != nil || out {
		if out {
			return WithheldOptedOut, nil
		}
		return "", err
	}
	if o.Account == "" || o.Kind == KindContactCode {
		return "", nil
	}
	ok, err := n.proved(ctx, o.Account, o.To)
	if err != nil || ok {
		return "", err
	}
	return WithheldUnconfirmed, nil
}

// proved reports whether customer may be texted at phone: it is their
// sign-in phone (or the owner phone ops gave their machine key), or a
// contact phone they confirmed with a code.
func (n *Notifier) proved(ctx context.Context, customer, phone string) (bool, error) {
	var rows []int
	err := n.db.WithContext(ctx).Raw(`SELECT 1 FROM customers WHERE id = ? AND phone = ?
		UNION ALL SELECT 1 FROM contact_phones WHERE customer_id = ? AND phone = ? AND confirmed_at IS NOT NULL`,
		customer, phone, customer, phone).Scan(&rows).Error
	if err != nil {
		return false, fmt.Errorf("check the phone of %s: %w", customer, err)
	}
	return len(rows) > 0, nil
}

// count raises the day's counts of o's phone and account, or fails with
// errOverCap (rolling the message back) when one is at its cap.
func (n *Notifier) count(tx *gorm.DB, o Outgoing, now time.Time) error {
	day := now.UTC().Format(time.DateOnly)
	if n.guards.PerPhoneDay > 0 && !strings.HasPrefix(o.Recipient, "technician:") {
		if err := countUp(tx, "phone:"+o.To, day, n.guards.PerPhoneDay, WithheldPhoneCap); err != nil {
			return err
		}
	}
	if n.guards.PerAccountDay > 0 && o.Account != "" {
		if err := countUp(tx, "account:"+o.Account, day, n.guards.PerAccountDay, WithheldAccountCap); err != nil {
			return err
		}
	}
	return nil
}

// countUp adds one to scope's count of day unless it has reached limit; the
// conditional upsert holds the cap under concurrency on both engines.
func countUp(tx *gorm.DB, scope, day string, limit int, reason string) error {
	var sent []int
	err := tx.Raw(`INSERT INTO sms_counts (scope, day, sent) VALUES (?, ?, 1)
		ON CONFLICT (scope, day) DO UPDATE SET sent = sms_counts.sent + 1 WHERE sms_counts.sent < ?
		RETURNING sent`, scope, day, limit).Scan(&sent).Error
	if err != nil {
		return fmt.Errorf("count texts of %s: %w", scope, err)
	}
	if len(sent) == 0 {
		return errOverCap{reason: reason}
	}
	return nil
}

// withheldKept is how long withheld texts are kept for the record.
const withheldKept = 30 * 24 * time.Hour

// Cleanup deletes the counts of past days and the records of texts withheld
// more than 30 days ago; the periodic housekeeping calls it.
func (n *Notifier) Cleanup(ctx context.Context) (int64, error) {
	now := n.now()
	res := n.db.WithContext(ctx).Exec("DELETE FROM sms_counts WHERE day < ?", now.Add(-24*time.Hour).UTC().Format(time.DateOnly))
	if res.Error != nil {
		return 0, fmt.Errorf("delete old text counts: %w", res.Error)
	}
	deleted := res.RowsAffected
	res = n.db.WithContext(ctx).Where("created_at < ?", now.Add(-withheldKept)).Delete(&withheldRow{})
	if res.Error != nil {
		return deleted, fmt.Errorf("delete old withheld texts: %w", res.Error)
	}
	deleted += res.RowsAffected
	res = n.db.WithContext(ctx).Where("received_at < ?", now.Add(-inboundKept)).Delete(&inboundSMS{})
	if res.Error != nil {
		return deleted, fmt.Errorf("delete old inbound sms: %w", res.Error)
	}
	return deleted + res.RowsAffected, nil
}
