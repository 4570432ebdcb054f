package jobs

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/onsite/onsite/dispatch"
	"github.com/onsite/onsite/internal/errs"
	"github.com/onsite/onsite/notify"
	"github.com/onsite/onsite/technicians"
)

// Messages turns dispatch facts into messages and hands them to the
// notifier; it decides who is told what.
type Messages struct {
	dispatch  *dispatch.Service
	notifier  *notify.Notifier
	loc       *time.Location // clock times in messages, unless a request has its own zone
	linkKey   []byte         // signs the links it puts in messages
	publicURL string
	zones     sync.Map // zone name → *time.Location
}

// NewMessages returns the message shell; linkKey signs the links it puts in
// messages under publicURL.
func NewMessages(d *dispatch.Service, n *notify.Notifier, loc *time.Location, linkKey []byte, publicURL string) *Messages {
	if loc == nil {
		loc = time.UTC
	}
	return &Messages{dispatch: d, notifier: n, loc: loc, linkKey: linkKey, publicURL: publicURL}
}

// cancelledBy says who cancelled, by the role of the event's actor: to the
// customer, and to the technician who no longer needs to go.
var cancelledBy = map[string][2]notify.Reason{
	"customer": {notify.ReasonCancelledByCustomer, notify.ReasonJobCustomerCancelled},
	"ops":      {notify.ReasonCancelledByOps, notify.ReasonJobOpsCancelled},
	"machine":  {notify.ReasonCancelledByDevice, notify.ReasonJobDeviceCancelled},
}

// Why an unassignment happened (dispatch's "why"), as told to the
// technician it was taken from.
const (
	whyReassigned   = "reassigned by ops"
	whyRedispatched = "redispatched by ops"
)

// decimal writes x with one decimal, with a decimal comma in German,
// French and Italian.
func decimal(x float64, locale string) string {
	s := fmt.Sprintf("%.1f", x)
	if locale == "de" || locale == "fr" || locale == "it" {
		s = strings.Replace(s, ".", ",", 1)
	}
	return s
}

func firstName(name string) string {
	if f := strings.Fields(name); len(f) > 0 {
		return f[0]
	}
	return name
}

// zone is where a request's clock times are written: its own time zone, or
// the deployment's.
func (m *Messages) zone(name string) *time.Location {
	if name == "" {
		return m.loc
	}
	if loc, ok := m.zones.Load(name); ok {
		return loc.(*time.Location)
	}
	loc, err := dispatch.LoadZone(name)
	if err != nil {
		return m.loc // checked when the request was created; a zone gone from tzdata falls back
	}
	m.zones.Store(name, loc)
	return loc
}

// clockFor writes the times of a text about f to someone in locale.
func (m *Messages) clockFor(f dispatch.EventFacts, locale string) clock {
	ref := f.Event.At
	if ref.IsZero() {
		ref = time.Now()
	}
	return clock{loc: m.zone(f.Zone), ref: ref, locale: locale}
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

// eventTime reads a time the event's data recorded (nil when absent).
func eventTime(data map[string]any, key string) *time.Time {
	s, _ := data[key].(string)
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return nil
	}
	return &t
}

// eventMessages are the messages an event implies, told from the event's own
// facts (its technician, the ETA it recorded), not from where the request
// stands when they are written.
func (m *Messages) eventMessages(f dispatch.EventFacts) []notify.Outgoing {
	r, e := f.Request, f.Event
	var out []notify.Outgoing
	toCustomer := func(kind notify.Kind, d notify.Data) {
		if f.Customer.Phone == "" {
			return
		}
		d.Skill = f.Skill.In(f.Customer.Locale)
		out = append(out, notify.Outgoing{
			DedupeKey: fmt.Sprintf("%s:%s:customer:%s", e.ID, kind, f.Customer.ID), Kind: kind, RequestID: r.ID,
			Recipient: "customer:" + f.Customer.ID, To: f.Customer.Phone, Locale: f.Customer.Locale, Account: f.Customer.ID, Data: d,
			Technician: eventTechnician(f),
		})
	}
	toTechnician := func(kind notify.Kind, t *dispatch.Contact, d notify.Data) {
		if t == nil || t.Phone == "" {
			return
		}
		d.Skill = f.Skill.In(t.Locale)
		o := notify.Outgoing{
			DedupeKey: fmt.Sprintf("%s:%s:technician:%s", e.ID, kind, t.ID), Kind: kind, RequestID: r.ID,
			Recipient: "technician:" + t.ID, To: t.Phone, Locale: t.Locale, Data: d, Technician: t.ID,
		}
		if f.Offer != nil {
			o.OfferID = f.Offer.ID
		}
		out = append(out, o)
	}
	cc := m.clockFor(f, f.Customer.Locale)
	customer := func() notify.Data { // what every customer text about the event knows
		d := notify.Data{}
		d.Day, d.WindowFrom, d.WindowTo = cc.window(r)
		if f.Technician != nil {
			d.Technician = firstName(f.Technician.Name)
		}
		return d
	}
	tc := func(t *dispatch.Contact) clock { return m.clockFor(f, t.Locale) }
	from, _ := f.Data["from"].(string)
	switch e.Type {
	case "offered":
		if f.Technician != nil && f.Offer != nil {
			o, c := f.Offer, tc(f.Technician)
			d := notify.Data{DistanceKm: decimal(float64(o.DistanceM)/1000, f.Technician.Locale),
				EtaMinutes: (o.EtaSeconds + 59) / 60, ExpiresAt: c.at(&o.ExpiresAt)}
			d.Day, d.WindowFrom, d.WindowTo = c.window(r)
			toTechnician(notify.KindOffer, f.Technician, d)
		}
	case "created":
		if intake, _ := f.Data["intake"].(bool); intake {
			d := customer()
			d.Link = dispatch.TrackLink(m.linkKey, m.publicURL, r, time.Now()).URL
			toCustomer(notify.KindTaken, d)
			break
		}
		if r.State == dispatch.PendingConfirmation && f.Customer.Phone != "" {
			out = append(out, notify.Outgoing{
				DedupeKey: fmt.Sprintf("%s:%s:customer:%s", e.ID, notify.KindConfirm, f.Customer.ID), Kind: notify.KindConfirm, RequestID: r.ID,
				Recipient: "customer:" + f.Customer.ID, To: f.Customer.Phone, Locale: f.Customer.Locale, Account: f.Customer.ID,
				Data:   notify.Data{Skill: f.Skill.In(f.Customer.Locale), Link: dispatch.ConfirmLink(m.linkKey, m.publicURL, r.ID, time.Now())},
				Secret: true,
			})
		}
	case "assigned":
		d := customer()
		d.ETA = cc.at(eventTime(f.Data, "eta_at"))
		d.Link = dispatch.TrackLink(m.linkKey, m.publicURL, r, time.Now()).URL
		kind := notify.KindAssigned
		if f.Previous != nil {
			kind, d.Previous = notify.KindChanged, firstName(f.Previous.Name)
		}
		toCustomer(kind, d)
		if byHand, _ := f.Data["by_hand"].(bool); byHand && f.Technician != nil {
			d := notify.Data{}
			d.Day, d.WindowFrom, d.WindowTo = tc(f.Technician).window(r)
			toTechnician(notify.KindJobGiven, f.Technician, d)
		}
	case "searching":
		if from != string(dispatch.Assigned) && from != string(dispatch.EnRoute) && from != string(dispatch.OnSite) {
			break // a search starting: nothing to tell
		}
		why, _ := f.Data["why"].(string)
		if why != whyReassigned {
			// A reassignment by hand is told once, as the change of
			// technician; a drop or a redispatch leaves the customer waiting.
			toCustomer(notify.KindSearching, customer())
		}
		if e.ActorRole != "technician" && f.Technician != nil {
			d := notify.Data{}
			d.Day, d.WindowFrom, d.WindowTo = tc(f.Technician).window(r)
			switch why {
			case whyReassigned:
				d.Reason = notify.ReasonJobReassigned
			case whyRedispatched:
				d.Reason = notify.ReasonJobRedispatched
			}
			toTechnician(notify.KindJobTaken, f.Technician, d)
		}
	case "escalated":
		if step, _ := f.Data["step"].(string); step == "customer_told" {
			d := customer()
			d.ETA = cc.at(eventTime(f.Data, "eta_at"))
			toCustomer(notify.KindStill, d)
		}
	case "customer_not_home":
		d := customer()
		d.ETA = cc.at(eventTime(f.Data, "wait_until"))
		toCustomer(notify.KindNotHome, d)
	case "customer_home":
		if by, _ := f.Data["by"].(string); by != "technician" { // they know: they opened the door with them
			toTechnician(notify.KindCustomerHome, f.Technician, notify.Data{})
		}
	case "no_show":
		toCustomer(notify.KindNoShow, customer())
	case "rescheduled":
		d := customer()
		d.Technician = ""
		toCustomer(notify.KindRescheduled, d)
		if f.Technician != nil {
			toTechnician(notify.KindJobCancelled, f.Technician, notify.Data{Reason: notify.ReasonJobRescheduled})
		}
	case "confirmation_expired":
		toCustomer(notify.KindConfirmGone, customer())
	case "running_late":
		d := customer()
		d.ETA = cc.at(eventTime(f.Data, "eta_at"))
		toCustomer(notify.KindLate, d)
	case "en_route":
		d := customer()
		d.ETA = cc.at(r.EtaAt)
		toCustomer(notify.KindEnRoute, d)
	case "on_site":
		toCustomer(notify.KindArrived, customer())
	case "completed":
		d := customer()
		d.Link = dispatch.RateLink(m.linkKey, m.publicURL, r.ID, time.Now())
		if outcome, _ := f.Data["outcome"].(string); outcome != "" && outcome != "fixed" {
			d.Unresolved = true
		}
		toCustomer(notify.KindCompleted, d)
	case "cancelled":
		by := cancelledBy[e.ActorRole]
		d := customer()
		d.Reason = by[0] // who cancelled, in fixed words: the reason typed stays in the event
		toCustomer(notify.KindCancelled, d)
		if (from == string(dispatch.Assigned) || from == string(dispatch.EnRoute)) && f.Technician != nil {
			d := notify.Data{Reason: by[1]}
			d.Day, d.WindowFrom, d.WindowTo = tc(f.Technician).window(r)
			toTechnician(notify.KindJobCancelled, f.Technician, d)
		}
	case "unfulfilled":
		toCustomer(notify.KindUnfulfilled, customer())
	}
	for i := range out {
		out[i].EventID, out[i].EventAt = e.ID, e.At
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
	return m.notifier.Deliver(ctx, m.reminderMessages(f, time.Now()))
}

// reminderMessages are the reminders of a windowed appointment, sent at now.
func (m *Messages) reminderMessages(f dispatch.EventFacts, now time.Time) []notify.Outgoing {
	r := f.Request
	f.Event.At = now
	tech := m.clockFor(f, f.Technician.Locale)
	day, from, to := tech.window(r)
	out := []notify.Outgoing{{
		DedupeKey: ReminderKey(r.ID, f.Technician.ID), Kind: notify.KindReminderTech, RequestID: r.ID,
		Recipient: "technician:" + f.Technician.ID, To: f.Technician.Phone, Locale: f.Technician.Locale,
		Data: notify.Data{Skill: f.Skill.In(f.Technician.Locale), Day: day, WindowFrom: from, WindowTo: to}, Technician: f.Technician.ID,
	}}
	if f.Customer.Phone != "" {
		day, from, to := m.clockFor(f, f.Customer.Locale).window(r)
		out = append(out, notify.Outgoing{
			DedupeKey: fmt.Sprintf("remind:%s:customer:%s", r.ID, f.Customer.ID), Kind: notify.KindReminder, RequestID: r.ID,
			Recipient: "customer:" + f.Customer.ID, To: f.Customer.Phone, Locale: f.Customer.Locale, Account: f.Customer.ID,
			Data:       notify.Data{Skill: f.Skill.In(f.Customer.Locale), Technician: firstName(f.Technician.Name), Day: day, WindowFrom: from, WindowTo: to},
			Technician: f.Technician.ID,
		})
	}
	return out
}

// dutyKinds are the texts for each reason Onsite takes a technician off duty.
var dutyKinds = map[string]struct {
	kind   notify.Kind
	reason notify.Reason
}{
	technicians.DutyShiftEnded: {notify.KindOffDuty, notify.ReasonShiftEnded},
	technicians.DutyNoPosition: {notify.KindOffDuty, notify.ReasonNoPosition},
	technicians.DutySuspended:  {notify.KindSuspended, notify.ReasonNone},
}

// DutyNotices texts the technicians Onsite took off duty, once each time,
// unless they are back on duty already; it returns how many it stored.
func (m *Messages) DutyNotices(ctx context.Context, techs *technicians.Service) (int, error) {
	owed, err := techs.DutyNotices(ctx, 500)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, o := range owed {
		k, known := dutyKinds[o.Reason]
		if o.Current && known && o.Phone != "" {
			err := m.notifier.Deliver(ctx, []notify.Outgoing{{
				DedupeKey: fmt.Sprintf("duty:%s:%d", o.TechnicianID, o.At.UnixMicro()), Kind: k.kind,
				Recipient: "technician:" + o.TechnicianID, To: o.Phone, Locale: o.Locale, Data: notify.Data{Reason: k.reason},
				Technician: o.TechnicianID, EventAt: o.At,
			}})
			if err != nil {
				return n, fmt.Errorf("off-duty text to %s: %w", o.TechnicianID, err)
			}
			n++
		}
		if err := techs.DutyNoticeDone(ctx, o.TechnicianID, o.At); err != nil {
			return n, err
		}
	}
	return n, nil
}
