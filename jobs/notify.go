package jobs

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/onsite/onsite/dispatch"
	"github.com/onsite/onsite/notify"
)

// Messages turns dispatch facts into messages and hands them to the
// notifier; it decides who is told what.
type Messages struct {
	dispatch  *dispatch.Service
	notifier  *notify.Notifier
	loc       *time.Location // clock times in messages
	linkKey   []byte         // signs confirmation links
	publicURL string
}

// NewMessages returns the message shell; linkKey signs the links it puts in
// messages under publicURL.
func NewMessages(d *dispatch.Service, n *notify.Notifier, loc *time.Location, linkKey []byte, publicURL string) *Messages {
	if loc == nil {
		loc = time.UTC
	}
	return &Messages{dispatch: d, notifier: n, loc: loc, linkKey: linkKey, publicURL: publicURL}
}

// kindOf maps event types to what the customer is told.
var kindOf = map[string]notify.Kind{
	"assigned": notify.KindAssigned, "en_route": notify.KindEnRoute, "on_site": notify.KindArrived,
	"completed": notify.KindCompleted, "cancelled": notify.KindCancelled, "unfulfilled": notify.KindUnfulfilled,
}

// cancelledBy says who cancelled, by the role of the event's actor.
var cancelledBy = map[string]notify.Reason{
	"customer": notify.ReasonCancelledByCustomer, "ops": notify.ReasonCancelledByOps, "machine": notify.ReasonCancelledByDevice,
}

func firstName(name string) string {
	if f := strings.Fields(name); len(f) > 0 {
		return f[0]
	}
	return name
}

func (m *Messages) clock(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.In(m.loc).Format("15:04")
}

// ForEvent sends the messages an event implies. A second run sends nothing
// new: each message's key is its event, kind and recipient.
func (m *Messages) ForEvent(ctx context.Context, eventID string) error {
	f, err := m.dispatch.FactsForEvent(ctx, eventID)
	if err != nil {
		return err
	}
	r := f.Request
	var out []notify.Outgoing
	if f.Event.Type == "offered" && f.Technician != nil && f.Offer != nil {
		o := f.Offer
		out = append(out, notify.Outgoing{
			DedupeKey: fmt.Sprintf("%s:%s:technician:%s", eventID, notify.KindOffer, f.Technician.ID), Kind: notify.KindOffer,
			RequestID: r.ID, OfferID: o.ID, Recipient: "technician:" + f.Technician.ID, To: f.Technician.Phone, Locale: f.Technician.Locale,
			Data: notify.Data{Skill: r.SkillCode, DistanceKm: fmt.Sprintf("%.1f", float64(o.DistanceM)/1000),
				EtaMinutes: (o.EtaSeconds + 59) / 60, ExpiresAt: m.clock(&o.ExpiresAt)},
		})
	}
	if f.Event.Type == "created" && r.State == dispatch.PendingConfirmation && f.Customer.Phone != "" {
		out = append(out, notify.Outgoing{
			DedupeKey: fmt.Sprintf("%s:%s:customer:%s", eventID, notify.KindConfirm, f.Customer.ID), Kind: notify.KindConfirm, RequestID: r.ID,
			Recipient: "customer:" + f.Customer.ID, To: f.Customer.Phone, Locale: f.Customer.Locale, Account: f.Customer.ID,
			Data:   notify.Data{Skill: r.SkillCode, Link: dispatch.ConfirmLink(m.linkKey, m.publicURL, r.ID, time.Now())},
			Secret: true,
		})
	}
	if kind, ok := kindOf[f.Event.Type]; ok && f.Customer.Phone != "" {
		d := notify.Data{Skill: r.SkillCode, ETA: m.clock(r.EtaAt)}
		if f.Technician != nil {
			d.Technician = firstName(f.Technician.Name)
		}
		if kind == notify.KindCancelled {
			// Who cancelled, in fixed words: the reason the caller typed
			// stays in the event and never reaches a text.
			d.Reason = cancelledBy[f.Event.ActorRole]
		}
		out = append(out, notify.Outgoing{
			DedupeKey: fmt.Sprintf("%s:%s:customer:%s", eventID, kind, f.Customer.ID), Kind: kind, RequestID: r.ID,
			Recipient: "customer:" + f.Customer.ID, To: f.Customer.Phone, Locale: f.Customer.Locale, Account: f.Customer.ID, Data: d,
		})
	}
	return m.notifier.Deliver(ctx, out)
}

// Remind sends the reminders of a windowed appointment, once.
func (m *Messages) Remind(ctx context.Context, requestID string) error {
	f, ok, err := m.dispatch.Reminder(ctx, requestID)
	if err != nil || !ok {
		return err
	}
	r := f.Request
	window := m.clock(r.WindowStart) + "–" + m.clock(r.WindowEnd)
	out := []notify.Outgoing{{
		DedupeKey: fmt.Sprintf("remind:%s:technician:%s", r.ID, f.Technician.ID), Kind: notify.KindReminderTech, RequestID: r.ID,
		Recipient: "technician:" + f.Technician.ID, To: f.Technician.Phone, Locale: f.Technician.Locale,
		Data: notify.Data{Skill: r.SkillCode, Window: window},
	}}
	if f.Customer.Phone != "" {
		out = append(out, notify.Outgoing{
			DedupeKey: fmt.Sprintf("remind:%s:customer:%s", r.ID, f.Customer.ID), Kind: notify.KindReminder, RequestID: r.ID,
			Recipient: "customer:" + f.Customer.ID, To: f.Customer.Phone, Locale: f.Customer.Locale, Account: f.Customer.ID,
			Data: notify.Data{Skill: r.SkillCode, Technician: firstName(f.Technician.Name), Window: window},
		})
	}
	return m.notifier.Deliver(ctx, out)
}
