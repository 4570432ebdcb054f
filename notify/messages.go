package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/onsite/onsite/internal/db"
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
	Recipient string
	To        string
	Locale    string
	Data      Data
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
// recipient.
type Notifier struct {
	db          *db.DB
	sender      Sender
	callbackURL string // the status callback webhook; empty for none
	log         *slog.Logger
	now         func() time.Time
	check       CheckFunc
	wake        WakeFunc
	lease       time.Duration // how long a send attempt holds a message
}

// NewNotifier returns a notifier; callbackURL is where the provider reports
// delivery.
func NewNotifier(d *db.DB, s Sender, callbackURL string, log *slog.Logger) *Notifier {
	return &Notifier{db: d, sender: s, callbackURL: callbackURL, log: log, now: func() time.Time { return db.UTC(time.Now()) },
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
// exist only here).
type Batch struct {
	Messages []Message
	secrets  map[string]string // dedupe key → text
}

// Deliver stores the messages and sends those that may go now. A message
// that cannot go yet stays owned by the database and is sent later; only a
// secret message that failed, or a database error, is returned.
func (n *Notifier) Deliver(ctx context.Context, out []Outgoing) error {
	b, err := n.Store(ctx, out)
	if err != nil {
		return err
	}
	return n.Send(ctx, b)
}

// Store stores the messages: a message whose dedupe key exists already is
// the same message and is not stored again.
func (n *Notifier) Store(ctx context.Context, out []Outgoing) (Batch, error) {
	now := n.now()
	b := Batch{secrets: map[string]string{}}
	keys := make([]string, 0, len(out))
	for _, o := range out {
		body, err := Render(o.Kind, o.Locale, o.Data)
		if err != nil {
			return b, err
		}
		stored := body
		if o.Secret {
			b.secrets[o.DedupeKey], stored = body, withheld
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
		if err := n.db.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&m).Error; err != nil {
			return b, fmt.Errorf("store message %s: %w", o.DedupeKey, err)
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
