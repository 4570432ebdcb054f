package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"gorm.io/gorm"

	"github.com/onsite/onsite/internal/db"
	"github.com/onsite/onsite/internal/phones"
)

// Message states. A message is final once sent, delivered, undelivered or
// failed; until then PostgreSQL owns it (docs/messages.md): queued (due at
// next_attempt_at) or sending (held by a send attempt until lease_until).
const (
	StateQueued      = "queued"
	StateSending     = "sending"
	StateSent        = "sent"
	StateDelivered   = "delivered"
	StateUndelivered = "undelivered"
	StateFailed      = "failed"
)

// SupersededPrefix starts the error of a message that was not sent because
// its request had moved on (state failed): "superseded: request cancelled".
const SupersededPrefix = "superseded: "

// Final reports whether a message in state will not be sent (again).
func Final(state string) bool { return state != StateQueued && state != StateSending }

// Message is one row of the messages table.
type Message struct {
	ID            string `gorm:"primaryKey"`
	DedupeKey     string
	Kind          Kind
	RequestID     *string
	OfferID       *string
	Recipient     string // technician:<id> or customer:<id>
	ToPhone       string
	Locale        string
	Body          string
	State         string
	ProviderSID   *string `gorm:"column:provider_sid"`
	Error         *string
	Attempts      int
	EventID       string    // the event the message tells of ("" for none)
	EventAt       time.Time // when it happened: the order of a request's messages to one recipient
	TechnicianID  *string   // the technician the message is about
	NextAttemptAt *time.Time
	LeaseUntil    *time.Time
	CreatedAt     time.Time
	UpdatedAt     time.Time
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
	// EventID and EventAt name the event the message tells of; the messages
	// of one request to one recipient leave in the order of EventAt (zero:
	// the time it is stored).
	EventID string
	EventAt time.Time
	// Technician is the technician the message is about, for the check
	// made when it is sent.
	Technician string
	// Secret messages (sign-in codes, confirmation links) are sent but not
	// kept: the table stores a placeholder, and a failed send is not retried
	// (the person asks again).
	Secret bool
}

// withheld is what the table keeps of a secret message.
const withheld = "[withheld: this message carried a code or link]"

// CheckFunc says why a stored message should no longer be sent, given where
// its request stands now ("" to send it). It runs just before each send.
type CheckFunc func(ctx context.Context, m Message) (string, error)

// WakeFunc asks for a send attempt of message id at a time (a task in the
// queue). It is only a wake-up: a lost one is made good by the sweep (Due).
type WakeFunc func(ctx context.Context, id string, attempt int, at time.Time) error

// Notifier stores messages and sends each once, in order per request and
// recipient, within its guards.
type Notifier struct {
	db          *db.DB
	sender      Sender
	callbackURL string // the status callback webhook; empty for none
	guards      Guards
	log         *slog.Logger
	now         func() time.Time
	check       CheckFunc
	wake        WakeFunc
	lease       time.Duration // how long a send attempt holds a message
}

// NewNotifier returns a notifier; callbackURL is where the provider reports
// delivery.
func NewNotifier(d *db.DB, s Sender, callbackURL string, g Guards, log *slog.Logger) *Notifier {
	if g.Countries.IsZero() {
		g.Countries = phones.MustParseCountries(phones.DefaultCountries)
	}
	return &Notifier{db: d, sender: s, callbackURL: callbackURL, guards: g, log: log, now: func() time.Time { return db.UTC(time.Now()) },
		lease: time.Minute}
}

// WithCheck sets the check made before each send; call it before use.
func (n *Notifier) WithCheck(f CheckFunc) { n.check = f }

// WithWake sets how retries are woken; call it before use. Without one,
// only the sweep wakes them.
func (n *Notifier) WithWake(f WakeFunc) { n.wake = f }

// WithClock sets the clock (tests).
func (n *Notifier) WithClock(now func() time.Time) { n.now = func() time.Time { return db.UTC(now()) } }

// Batch is messages just stored, with the texts of the secret ones (which
// exist only here), and the messages the guards withheld.
type Batch struct {
	Messages []Message
	secrets  map[string]string // dedupe key → text
	withheld map[string]string // dedupe key → why, for messages withheld by this store
}

// Withheld returns why the message with the dedupe key was withheld by the
// store that made the batch ("" when it was not).
func (b Batch) Withheld(key string) string { return b.withheld[key] }

// Deliver stores the messages and sends those that may go now. A message
// the guards hold back is recorded as withheld, never stored for sending. A
// message that cannot go yet stays owned by the database and is sent later;
// only a secret message that failed, or a database error, is returned.
func (n *Notifier) Deliver(ctx context.Context, out []Outgoing) error {
	b, err := n.Store(ctx, out)
	if err != nil {
		return err
	}
	return n.Send(ctx, b)
}

// DeliverNow is Deliver for one message whose sender waits for the outcome
// (a code): when the guards hold it back the error is a *WithheldError.
func (n *Notifier) DeliverNow(ctx context.Context, o Outgoing) error {
	b, err := n.Store(ctx, []Outgoing{o})
	if err != nil {
		return err
	}
	if reason := b.Withheld(o.DedupeKey); reason != "" {
		return &WithheldError{Reason: reason}
	}
	return n.Send(ctx, b)
}

// Store stores the messages: a message whose dedupe key exists already is
// the same message and is not stored again. The guards screen each message
// the first time it is stored (countries, proved phones, daily caps counted
// in the insert's transaction): one they hold back is recorded in
// sms_withheld instead and never enters the messages table, so no retry,
// sweep or later run of the task can send it, and a later run does not
// consider it again.
func (n *Notifier) Store(ctx context.Context, out []Outgoing) (Batch, error) {
	now := n.now()
	b := Batch{secrets: map[string]string{}, withheld: map[string]string{}}
	if len(out) == 0 {
		return b, nil
	}
	keys := make([]string, 0, len(out))
	all := make([]string, len(out))
	for i, o := range out {
		all[i] = o.DedupeKey
	}
	done, err := n.withheldBefore(ctx, all)
	if err != nil {
		return b, err
	}
	before, err := n.inMessages(ctx, all)
	if err != nil {
		return b, err
	}
	open, err := n.openBodies(ctx, out, before)
	if err != nil {
		return b, err
	}
	for _, o := range out {
		if done[o.DedupeKey] {
			continue
		}
		body, err := Render(o.Kind, o.Locale, o.Data)
		if err != nil {
			return b, err
		}
		stored := body
		switch {
		case o.Secret:
			b.secrets[o.DedupeKey], stored = body, withheld
		case !before[o.DedupeKey]:
			stored = distinct(open[o.To], body)
			open[o.To] = append(open[o.To], stored)
		}
		m := Message{ID: db.NewID(), DedupeKey: o.DedupeKey, Kind: o.Kind, Recipient: o.Recipient, ToPhone: o.To,
			Locale: o.Locale, Body: stored, State: StateQueued, EventID: o.EventID, EventAt: db.UTC(o.EventAt),
			NextAttemptAt: &now, CreatedAt: now, UpdatedAt: now}
		if o.EventAt.IsZero() {
			m.EventAt = now
		}
		if o.RequestID != "" {
			m.RequestID = &o.RequestID
		}
		if o.OfferID != "" {
			m.OfferID = &o.OfferID
		}
		if o.Technician != "" {
			m.TechnicianID = &o.Technician
		}
		if !before[o.DedupeKey] { // stored before: screened and counted then
			reason, err := n.keep(ctx, o, m, now)
			if err != nil {
				return b, err
			}
			if reason != "" {
				b.withheld[o.DedupeKey] = reason
				continue
			}
		}
		keys = append(keys, o.DedupeKey)
	}
	if len(keys) == 0 {
		return b, nil
	}
	if err := n.db.WithContext(ctx).Where("dedupe_key IN ?", keys).Find(&b.Messages).Error; err != nil {
		return b, fmt.Errorf("load stored messages: %w", err)
	}
	return b, nil
}

// openBodies returns, by phone, the texts of the messages not final yet to
// the phones of the messages in out that are not stored yet.
func (n *Notifier) openBodies(ctx context.Context, out []Outgoing, before map[string]bool) (map[string][]string, error) {
	open := map[string][]string{}
	var to []string
	for _, o := range out {
		if !o.Secret && !before[o.DedupeKey] {
			to = append(to, o.To)
		}
	}
	if len(to) == 0 {
		return open, nil
	}
	var rows []struct{ ToPhone, Body string }
	if err := n.db.WithContext(ctx).Model(&Message{}).Select("to_phone", "body").
		Where("state IN ? AND to_phone IN ?", []string{StateQueued, StateSending}, to).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("load open messages: %w", err)
	}
	for _, r := range rows {
		open[r.ToPhone] = append(open[r.ToPhone], r.Body)
	}
	return open, nil
}

// distinct makes body differ from the texts not final yet to the same phone
// (open) by a number at its end: "… (2)". An attempt whose outcome is
// unknown asks the provider for a message with its text (reconcile), so two
// messages to one phone that may both be unresolved must not read alike.
// Texts hold no caller words, so two offers to a technician (same skill,
// distance, ETA and expiry) or two texts of one kind to a customer can.
func distinct(open []string, body string) string {
	candidate := body
	for k := 2; slices.Contains(open, candidate); k++ {
		candidate = fmt.Sprintf("%s (%d)", body, k)
	}
	return candidate
}

// Send sends what may go now of a batch just stored: its secret messages at
// once (their text exists only in this process), then, in order, every
// message of the batch's requests whose turn it is.
func (n *Notifier) Send(ctx context.Context, b Batch) error {
	var errsSeen []error
	requests := map[string]bool{}
	for _, m := range b.Messages {
		text, secret := b.secrets[m.DedupeKey]
		switch {
		case secret:
			state, err := n.attempt(ctx, m, text)
			if err == nil && state == StateFailed {
				err = fmt.Errorf("secret message %s could not be sent", m.ID)
			}
			if err != nil {
				errsSeen = append(errsSeen, err)
			}
			if m.RequestID != nil {
				requests[*m.RequestID] = true // what waited for it
			}
		case m.RequestID != nil:
			requests[*m.RequestID] = true
		default:
			if _, err := n.attempt(ctx, m, ""); err != nil {
				errsSeen = append(errsSeen, err)
			}
		}
	}
	for id := range requests {
		if err := n.SendRequest(ctx, id); err != nil {
			errsSeen = append(errsSeen, err)
		}
	}
	return errors.Join(errsSeen...)
}

// statusOrder keeps a late callback from moving a message backwards.
var statusOrder = map[string]int{StateQueued: 0, StateSending: 1, StateSent: 2, StateDelivered: 3, StateUndelivered: 3, StateFailed: 3}

// RecordStatus stores a delivery report from the provider and returns the
// message (ok false when neither the sid nor the message id is known).
// messageID comes from the status callback's URL: it finds a message whose
// send answer was lost (still "sending", no sid), which the report then
// settles.
func (n *Notifier) RecordStatus(ctx context.Context, sid, status, errorCode, messageID string) (Message, bool, error) {
	state := status
	switch status {
	case "accepted", "queued", "sending", "scheduled":
		state = StateSent
	case StateSent, StateDelivered, StateUndelivered, StateFailed:
	default:
		state = "" // statuses Onsite does not track (read, …)
	}
	var m Message
	err := n.db.WithContext(ctx).Where("provider_sid = ?", sid).First(&m).Error
	if db.IsNotFound(err) && messageID != "" && state != "" {
		m, err = n.adopt(ctx, messageID, sid, state)
	}
	if db.IsNotFound(err) {
		return Message{}, false, nil
	}
	if err != nil {
		return Message{}, false, fmt.Errorf("find message %s: %w", sid, err)
	}
	if state == "" {
		return m, true, nil
	}
	if statusOrder[state] <= statusOrder[m.State] && state != StateUndelivered && state != StateFailed {
		return m, true, nil
	}
	upd := map[string]any{"state": state, "updated_at": n.now(), "next_attempt_at": nil, "lease_until": nil}
	if errorCode != "" {
		upd["error"] = "provider error " + errorCode
	}
	if err := n.db.WithContext(ctx).Model(&Message{}).Where("id = ?", m.ID).Updates(upd).Error; err != nil {
		return m, true, fmt.Errorf("record status of %s: %w", sid, err)
	}
	m.State = state
	return m, true, nil
}

// adopt records sid on message id when its send's answer was lost (it is
// still "sending" without a sid): the provider has it, so it is sent.
func (n *Notifier) adopt(ctx context.Context, id, sid, state string) (Message, error) {
	res := n.db.WithContext(ctx).Model(&Message{}).Where("id = ? AND state = ? AND provider_sid IS NULL", id, StateSending).
		Updates(map[string]any{"provider_sid": sid, "state": StateSent, "lease_until": nil, "updated_at": n.now()})
	if res.Error != nil {
		return Message{}, fmt.Errorf("record sid of message %s: %w", id, res.Error)
	}
	if res.RowsAffected == 0 {
		return Message{}, gorm.ErrRecordNotFound
	}
	var m Message
	if err := n.db.WithContext(ctx).Where("id = ?", id).First(&m).Error; err != nil {
		return Message{}, fmt.Errorf("load message %s: %w", id, err)
	}
	return m, nil
}
