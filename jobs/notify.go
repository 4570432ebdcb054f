package jobs

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/onsite/onsite/dispatch"
	"github.com/onsite/onsite/internal/errs"
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

// window is a windowed request's window in clock times, or two empty
// strings for an ASAP request.
func (m *Messages) window(r dispatch.Request) (from, to string) {
	if r.Mode != dispatch.Window || r.WindowStart == nil || r.WindowEnd == nil {
		return "", ""
	}
	return m.clock(r.WindowStart), m.clock(r.WindowEnd)
}

// ForEvent stores the messages an event implies, records that the event
// owes none any more, and sends what may go now. A second run stores and
// sends nothing new: each message's key is its event, kind and recipient.
func (m *Messages) ForEvent(ctx context.Context, eventID string) error {
	f, err := m.dispatch.FactsForEvent(ctx, eventID)
	if errs.CodeOf(err) == errs.NotFound {
		// What the event was about is gone: nothing to tell.
		return m.dispatch.MessagesStored(ctx, eventID)
	}
	if err != nil {
		return err
	}
	b, err := m.notifier.Store(ctx, m.eventMessages(f))
	if err != nil {
		return err
	}
	if err := m.dispatch.MessagesStored(ctx, eventID); err != nil {
		return err
	}
	if len(b.Messages) == 0 {
		// Messages of later events may have waited for this one's.
		return m.notifier.SendRequest(ctx, f.Request.ID)
	}
	return m.notifier.Send(ctx, b)
}

// eventMessages are the messages an event implies.
func (m *Messages) eventMessages(f dispatch.EventFacts) []notify.Outgoing {
	r, eventID := f.Request, f.Event.ID
	var out []notify.Outgoing
	if f.Event.Type == "offered" && f.Technician != nil && f.Offer != nil {
		o := f.Offer
		out = append(out, notify.Outgoing{
			DedupeKey: fmt.Sprintf("%s:%s:technician:%s", eventID, notify.KindOffer, f.Technician.ID), Kind: notify.KindOffer,
			RequestID: r.ID, OfferID: o.ID, Recipient: "technician:" + f.Technician.ID, To: f.Technician.Phone, Locale: f.Technician.Locale,
			Data: notify.Data{Skill: f.SkillName, DistanceKm: fmt.Sprintf("%.1f", float64(o.DistanceM)/1000),
				EtaMinutes: (o.EtaSeconds + 59) / 60, ExpiresAt: m.clock(&o.ExpiresAt)},
			Technician: f.Technician.ID,
		})
	}
	if f.Event.Type == "created" && r.State == dispatch.PendingConfirmation && f.Customer.Phone != "" {
		out = append(out, notify.Outgoing{
			DedupeKey: fmt.Sprintf("%s:%s:customer:%s", eventID, notify.KindConfirm, f.Customer.ID), Kind: notify.KindConfirm, RequestID: r.ID,
			Recipient: "customer:" + f.Customer.ID, To: f.Customer.Phone, Locale: f.Customer.Locale, Account: f.Customer.ID,
			Data:   notify.Data{Skill: f.SkillName, Link: dispatch.ConfirmLink(m.linkKey, m.publicURL, r.ID, time.Now())},
			Secret: true,
		})
	}
	if kind, ok := kindOf[f.Event.Type]; ok && f.Customer.Phone != "" {
		d := notify.Data{Skill: f.SkillName, ETA: m.clock(r.EtaAt)}
		// A windowed appointment is described by its window, never by an
		// ETA of now plus the drive.
		d.WindowFrom, d.WindowTo = m.window(r)
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
			Technician: eventTechnician(f),
		})
	}
	for i := range out {
		out[i].EventID, out[i].EventAt = eventID, f.Event.At
	}
	return out
}

// eventTechnician is the technician an event is about: the one it names, or
// the one who acted, or else the request's.
func eventTechnician(f dispatch.EventFacts) string {
	if id, ok := f.Data["technician_id"].(string); ok && id != "" {
		return id
	}
	if f.Event.ActorRole == "technician" {
		return f.Event.ActorID
	}
	if f.Technician != nil {
		return f.Technician.ID
	}
	return ""
}

// ReminderKey is the dedupe key of the technician's reminder of a windowed
// appointment (the sweep looks for it).
func ReminderKey(requestID, technicianID string) string {
	return fmt.Sprintf("remind:%s:technician:%s", requestID, technicianID)
}

// Remind sends the reminders of a windowed appointment, once.
func (m *Messages) Remind(ctx context.Context, requestID string) error {
	f, ok, err := m.dispatch.Reminder(ctx, requestID)
	if err != nil || !ok {
		return err
	}
	return m.notifier.Deliver(ctx, m.reminderMessages(f))
}

// reminderMessages are the reminders of a windowed appointment.
func (m *Messages) reminderMessages(f dispatch.EventFacts) []notify.Outgoing {
	r := f.Request
	from, to := m.window(r)
	out := []notify.Outgoing{{
		DedupeKey: ReminderKey(r.ID, f.Technician.ID), Kind: notify.KindReminderTech, RequestID: r.ID,
		Recipient: "technician:" + f.Technician.ID, To: f.Technician.Phone, Locale: f.Technician.Locale,
		Data: notify.Data{Skill: f.SkillName, WindowFrom: from, WindowTo: to}, Technician: f.Technician.ID,
	}}
	if f.Customer.Phone != "" {
		out = append(out, notify.Outgoing{
			DedupeKey: fmt.Sprintf("remind:%s:customer:%s", r.ID, f.Customer.ID), Kind: notify.KindReminder, RequestID: r.ID,
			Recipient: "customer:" + f.Customer.ID, To: f.Customer.Phone, Locale: f.Customer.Locale, Account: f.Customer.ID,
			Data:       notify.Data{Skill: f.SkillName, Technician: firstName(f.Technician.Name), WindowFrom: from, WindowTo: to},
			Technician: f.Technician.ID,
		})
	}
	return out
}
