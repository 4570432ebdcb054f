package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"gorm.io/gorm"

	"github.com/onsite/onsite/internal/db"
)

// Message states.
const (
	StateQueued      = "queued"
	StateSending     = "sending"
	StateSent        = "sent"
	StateDelivered   = "delivered"
	StateUndelivered = "undelivered"
	StateFailed      = "failed"
)

// maxAttempts bounds retries of a send that keeps failing for passing reasons.
const maxAttempts = 8

// Message is one row of the messages table.
type Message struct {
	ID          string `gorm:"primaryKey"`
	DedupeKey   string
	Kind        Kind
	RequestID   *string
	OfferID     *string
	Recipient   string // technician:<id> or customer:<id>
	ToPhone     string
	Locale      string
	Body        string
	State       string
	ProviderSID *string `gorm:"column:provider_sid"`
	Error       *string
	Attempts    int
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Outgoing is a message to send, before it is stored.
type Outgoing struct {
	DedupeKey string // the event (or schedule) it belongs to, its kind and recipient
	Kind      Kind
	RequestID string
	OfferID   string
	// Recipient is technician:<id> or customer:<id> (a sign-in code:
	// <role>:<phone>). Texts to technicians, whose phones ops onboarded, are
	// not capped; every other text counts against its phone's daily cap.
	Recipient string
	To        string
	Locale    string
	Data      Data
	// Account is the customer a text is for or about. It counts against the
	// account's daily cap, and goes only to a phone the account has proved:
	// its sign-in phone or a confirmed contact phone (a contact code, which
	// is how a phone gets proved, is the one exception). Empty for texts to
	// technicians and for sign-in codes.
	Account string
	// Secret messages (sign-in codes, confirmation links) are sent but not
	// kept: the table stores a placeholder, and a failed send is not retried
	// (the person asks again).
	Secret bool
}

// withheld is what the table keeps of a secret message.
const withheld = "[withheld: this message carried a code or link]"

// Notifier stores messages and sends them at most once each, within its
// guards.
type Notifier struct {
	db          *db.DB
	sender      Sender
	callbackURL string // the status callback webhook; empty for none
	guards      Guards
	log         *slog.Logger
	now         func() time.Time
}

// NewNotifier returns a notifier; callbackURL is where the provider reports
// delivery.
func NewNotifier(d *db.DB, s Sender, callbackURL string, g Guards, log *slog.Logger) *Notifier {
	return &Notifier{db: d, sender: s, callbackURL: callbackURL, guards: g, log: log, now: func() time.Time { return db.UTC(time.Now()) }}
}

// Deliver stores the messages (a message whose dedupe key exists already is
// the same message and is not stored again) and sends every one still
// queued. A message the guards hold back is recorded as withheld, not
// stored for sending. A passing failure is returned so the task is retried;
// a permanent one is recorded.
func (n *Notifier) Deliver(ctx context.Context, out []Outgoing) error {
	_, err := n.deliver(ctx, out)
	return err
}

// DeliverNow is Deliver for one message whose sender waits for the outcome
// (a code): when the guards hold it back the error is a *WithheldError.
func (n *Notifier) DeliverNow(ctx context.Context, o Outgoing) error {
	held, err := n.deliver(ctx, []Outgoing{o})
	if err != nil {
		return err
	}
	if reason, ok := held[o.DedupeKey]; ok {
		return &WithheldError{Reason: reason}
	}
	return nil
}

// deliver stores and sends; it returns the reasons of the messages it
// withheld in this run, by dedupe key.
func (n *Notifier) deliver(ctx context.Context, out []Outgoing) (map[string]string, error) {
	now := n.now()
	keys := make([]string, 0, len(out))
	secrets := map[string]string{} // dedupe key → the text to send, for secret messages
	held := map[string]string{}
	if len(out) == 0 {
		return held, nil
	}
	done, err := n.withheldBefore(ctx, out)
	if err != nil {
		return nil, err
	}
	for _, o := range out {
		if done[o.DedupeKey] {
			continue
		}
		body, err := Render(o.Kind, o.Locale, o.Data)
		if err != nil {
			return nil, err
		}
		stored := body
		if o.Secret {
			secrets[o.DedupeKey], stored = body, withheld
		}
		m := Message{ID: db.NewID(), DedupeKey: o.DedupeKey, Kind: o.Kind, Recipient: o.Recipient, ToPhone: o.To,
			Locale: o.Locale, Body: stored, State: StateQueued, CreatedAt: now, UpdatedAt: now}
		if o.RequestID != "" {
			m.RequestID = &o.RequestID
		}
		if o.OfferID != "" {
			m.OfferID = &o.OfferID
		}
		reason, err := n.store(ctx, o, m, now)
		if err != nil {
			return nil, err
		}
		if reason != "" {
			held[o.DedupeKey] = reason
			continue
		}
		keys = append(keys, o.DedupeKey)
	}
	if len(keys) == 0 {
		return held, nil
	}
	var queued []Message
	if err := n.db.WithContext(ctx).Where("dedupe_key IN ? AND state = ?", keys, StateQueued).Find(&queued).Error; err != nil {
		return nil, fmt.Errorf("load queued messages: %w", err)
	}
	var errs []error
	for _, m := range queued {
		text, secret := secrets[m.DedupeKey]
		if m.Body == withheld && !secret {
			// A retry of a secret message: its text was never kept.
			n.fail(ctx, m, "secret message not retried")
			continue
		}
		if !secret {
			text = m.Body
		}
		if err := n.send(ctx, m, text, secret); err != nil {
			errs = append(errs, err)
		}
	}
	return held, errors.Join(errs...)
}

// send claims a queued message (so two runs of one task cannot both send
// it), sends it and records the outcome. A process dying between the send
// and the record leaves the message "sending": never sent twice.
func (n *Notifier) send(ctx context.Context, m Message, text string, secret bool) error {
	res := n.db.WithContext(ctx).Model(&Message{}).Where("id = ? AND state = ?", m.ID, StateQueued).
		Updates(map[string]any{"state": StateSending, "attempts": gorm.Expr("attempts + 1"), "updated_at": n.now()})
	if res.Error != nil {
		return fmt.Errorf("claim message %s: %w", m.ID, res.Error)
	}
	if res.RowsAffected == 0 {
		return nil // another run has it
	}
	sid, err := n.sender.Send(ctx, SMS{To: m.ToPhone, Body: text, StatusCallback: n.callbackURL})
	update := map[string]any{"updated_at": n.now()}
	switch {
	case err == nil:
		update["state"], update["provider_sid"], update["error"] = StateSent, sid, nil
	case errors.Is(err, ErrPermanent) || m.Attempts+1 >= maxAttempts || secret:
		update["state"], update["error"] = StateFailed, err.Error()
		n.log.WarnContext(ctx, "sms failed for good", "message", m.ID, "kind", m.Kind, "to", m.ToPhone, "err", err)
	default:
		update["state"], update["error"] = StateQueued, err.Error()
	}
	// The record must land even if the task's context is ending.
	if uerr := n.db.WithContext(context.WithoutCancel(ctx)).Model(&Message{}).Where("id = ?", m.ID).Updates(update).Error; uerr != nil {
		return fmt.Errorf("record send of %s: %w", m.ID, uerr)
	}
	if update["state"] == StateQueued {
		return fmt.Errorf("send %s (attempt %d): %w", m.ID, m.Attempts+1, err)
	}
	return nil
}

// fail records a message that will not be sent.
func (n *Notifier) fail(ctx context.Context, m Message, why string) {
	if err := n.db.WithContext(ctx).Model(&Message{}).Where("id = ? AND state = ?", m.ID, StateQueued).
		Updates(map[string]any{"state": StateFailed, "error": why, "updated_at": n.now()}).Error; err != nil {
		n.log.WarnContext(ctx, "record failed message", "message", m.ID, "err", err)
	}
}

// statusOrder keeps a late callback from moving a message backwards.
var statusOrder = map[string]int{StateQueued: 0, StateSending: 1, StateSent: 2, StateDelivered: 3, StateUndelivered: 3, StateFailed: 3}

// RecordStatus stores a delivery report from the provider and returns the
// message (ok false when the sid is unknown).
func (n *Notifier) RecordStatus(ctx context.Context, sid, status, errorCode string) (Message, bool, error) {
	var m Message
	err := n.db.WithContext(ctx).Where("provider_sid = ?", sid).First(&m).Error
	if db.IsNotFound(err) {
		return Message{}, false, nil
	}
	if err != nil {
		return Message{}, false, fmt.Errorf("find message %s: %w", sid, err)
	}
	state := status
	switch status {
	case "accepted", "queued", "sending", "scheduled":
		state = StateSent
	case StateSent, StateDelivered, StateUndelivered, StateFailed:
	default:
		return m, true, nil // statuses Onsite does not track (read, …)
	}
	if statusOrder[state] <= statusOrder[m.State] && state != StateUndelivered && state != StateFailed {
		return m, true, nil
	}
	upd := map[string]any{"state": state, "updated_at": n.now()}
	if errorCode != "" {
		upd["error"] = "provider error " + errorCode
	}
	if err := n.db.WithContext(ctx).Model(&Message{}).Where("id = ?", m.ID).Updates(upd).Error; err != nil {
		return m, true, fmt.Errorf("record status of %s: %w", sid, err)
	}
	m.State = state
	return m, true, nil
}
