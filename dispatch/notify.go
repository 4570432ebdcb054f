package dispatch

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/onsite/onsite/dispatch/match"
	"github.com/onsite/onsite/internal/db"
	"github.com/onsite/onsite/internal/errs"
	"github.com/onsite/onsite/technicians"
)

// Task kinds for people-facing messages.
const (
	TaskRemind = "notify:remind" // a windowed appointment is near
)

// notifiable are the event types someone is told about by SMS.
var notifiable = map[string]bool{
	"created": true, // a device's request, to its owner for confirmation
	"offered": true, "assigned": true, "en_route": true, "on_site": true,
	"completed": true, "cancelled": true, "unfulfilled": true, "running_late": true,
	// The field's exceptions (field.go); their texts are notify's to write.
	// (a hand-back is told by the "searching" event that follows it)
	"customer_not_home": true, "customer_home": true, "no_show": true, "rescheduled": true,
	"confirmation_expired": true,
}

// tells reports whether an event of type typ with data owes messages: the
// notifiable types, a request searching again after it had a technician
// (a hand-back or an unassignment: the customer and the technician are told),
// and the escalation step that texts the customer.
func tells(typ string, data map[string]any) bool {
	switch typ {
	case "searching":
		from, _ := data["from"].(State)
		return from == Assigned || from == EnRoute || from == OnSite
	case "escalated": // the last step tells the customer
		step, _ := data["step"].(string)
		return step == match.StepCustomerTold.String()
	}
	return notifiable[typ]
}

// reminderBefore is how long before a time window the reminders go out.
const reminderBefore = time.Hour

// Contact is how to reach a person.
type Contact struct {
	ID     string
	Name   string
	Phone  string // empty when unknown
	Locale string
}

// EventFacts is what a message about an event needs, in plain values.
type EventFacts struct {
	Event      Event
	Data       map[string]any
	Request    Request
	Customer   Contact
	Technician *Contact // the technician the event is about (offer) or assigned
	Offer      *Offer
	Skill      SkillNames // the request's skill by its display names: texts never show the code
	Zone       string     // the request's time zone ("" for the deployment's)
	// Previous is the technician the request had before this assignment
	// (an "assigned" event after a drop or a reassignment), else nil.
	Previous *Contact
}

// SkillNames is a skill's display name, and its names by locale.
type SkillNames struct {
	Name     string
	ByLocale map[string]string
}

// In is the skill's name in locale, or its display name.
func (n SkillNames) In(locale string) string {
	if v := n.ByLocale[locale]; v != "" {
		return v
	}
	return n.Name
}

// LoadZone is an IANA time zone by name ("Local" and "" are not names).
func LoadZone(name string) (*time.Location, error) {
	if name == "" || name == "Local" || len(name) > 64 {
		return nil, fmt.Errorf("time zone %q: not an IANA zone name", name)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("time zone %q: %w", name, err)
	}
	return loc, nil
}

// FactsForEvent gathers what the messages about one event need.
func (s *Service) FactsForEvent(ctx context.Context, eventID string) (EventFacts, error) {
	q := s.db.WithContext(ctx)
	var f EventFacts
	if err := q.Where("id = ?", eventID).First(&f.Event).Error; err != nil {
		if db.IsNotFound(err) {
			return f, errNotFound("event", eventID)
		}
		return f, fmt.Errorf("load event %s: %w", eventID, err)
	}
	_ = json.Unmarshal([]byte(f.Event.Data), &f.Data)
	r, err := load(q, f.Event.RequestID)
	if err != nil {
		return f, err
	}
	f.Request = r
	if f.Skill, err = skillNames(q, r.SkillCode); err != nil {
		return f, err
	}
	if r.TimeZone != nil {
		f.Zone = *r.TimeZone
	}
	if f.Customer, err = customerContact(q, r.CustomerID); err != nil {
		return f, err
	}
	f.Customer = withRequestContact(f.Customer, r)
	// The technician the event names (it happened to them, even once the
	// request let them go: handed back, rescheduled), else the request's:
	// an event is told as it happened, not as things stand now.
	techID, _ := f.Data["technician_id"].(string)
	if techID == "" && r.TechnicianID != nil {
		techID = *r.TechnicianID
	}
	if prev, _ := f.Data["previous_technician_id"].(string); prev != "" {
		c, err := technicianContact(q, prev)
		if err != nil {
			return f, err
		}
		f.Previous = &c
	}
	if f.Event.Type == "offered" {
		offerID, _ := f.Data["offer_id"].(string)
		o, err := loadOffer(q, offerID)
		if err != nil {
			return f, err
		}
		f.Offer, techID = &o, o.TechnicianID
	}
	if techID != "" {
		c, err := technicianContact(q, techID)
		if err != nil {
			return f, err
		}
		f.Technician = &c
	}
	return f, nil
}

// Reminder is what the reminders of a windowed appointment need; ok is false
// when the appointment no longer needs one (cancelled, unassigned, past).
func (s *Service) Reminder(ctx context.Context, requestID string) (f EventFacts, ok bool, err error) {
	q := s.db.WithContext(ctx)
	r, err := load(q, requestID)
	if err != nil {
		return f, false, err
	}
	if r.Mode != Window || r.TechnicianID == nil || (r.State != Assigned && r.State != EnRoute) {
		return f, false, nil
	}
	f.Request = r
	if f.Skill, err = skillNames(q, r.SkillCode); err != nil {
		return f, false, err
	}
	if r.TimeZone != nil {
		f.Zone = *r.TimeZone
	}
	if f.Customer, err = customerContact(q, r.CustomerID); err != nil {
		return f, false, err
	}
	f.Customer = withRequestContact(f.Customer, r)
	c, err := technicianContact(q, *r.TechnicianID)
	if err != nil {
		return f, false, err
	}
	f.Technician = &c
	return f, true, nil
}

// SkillName is a skill's display name in locale, for a text that names the
// skill outside an event's facts (an SMS answer): texts never show the code.
func (s *Service) SkillName(ctx context.Context, code, locale string) (string, error) {
	n, err := skillNames(s.db.WithContext(ctx), code)
	return n.In(locale), err
}

// skillNames is a skill's display names, as ops named it.
func skillNames(q *gorm.DB, code string) (SkillNames, error) {
	var sk technicians.Skill
	if err := q.Select("code", "name", "names").Where("code = ?", code).Limit(1).Find(&sk).Error; err != nil {
		return SkillNames{}, fmt.Errorf("load skill %s: %w", code, err)
	}
	if sk.Name == "" {
		return SkillNames{}, fmt.Errorf("skill %s has no name", code)
	}
	return SkillNames{Name: sk.Name, ByLocale: sk.Names}, nil
}

func customerContact(q *gorm.DB, id string) (Contact, error) {
	var c struct {
		ID     string
		Name   string
		Phone  *string
		Locale string
	}
	if err := q.Table("customers").Where("id = ?", id).First(&c).Error; err != nil {
		return Contact{}, fmt.Errorf("load customer %s: %w", id, err)
	}
	out := Contact{ID: c.ID, Name: c.Name, Locale: c.Locale}
	if c.Phone != nil {
		out.Phone = *c.Phone
	}
	return out, nil
}

// withRequestContact prefers the phone and locale the request gave.
func withRequestContact(c Contact, r Request) Contact {
	if r.ContactPhone != nil {
		c.Phone = *r.ContactPhone
	}
	if r.ContactLocale != nil {
		c.Locale = *r.ContactLocale
	}
	return c
}

func technicianContact(q *gorm.DB, id string) (Contact, error) {
	var t technicians.Technician
	if err := q.Select("id", "name", "phone", "locale").Where("id = ?", id).First(&t).Error; err != nil {
		return Contact{}, fmt.Errorf("load technician %s: %w", id, err)
	}
	return Contact{ID: t.ID, Name: t.Name, Phone: t.Phone, Locale: t.Locale}, nil
}

// AnswerNewestOffer answers a technician's newest pending offer by SMS: the
// same atomic accept or decline as the app, so a race with the app has one
// winner. It returns the offer answered.
func (s *Service) AnswerNewestOffer(ctx context.Context, techID string, accept bool) (Offer, error) {
	var o Offer
	err := s.db.WithContext(ctx).Where("technician_id = ? AND state = ?", techID, OfferPending).
		Order("created_at DESC").First(&o).Error
	if db.IsNotFound(err) {
		return Offer{}, errs.NotFoundf("no open offer")
	}
	if err != nil {
		return Offer{}, fmt.Errorf("newest offer of %s: %w", techID, err)
	}
	if accept {
		_, err = s.Accept(ctx, techID, o.ID)
	} else {
		_, err = s.Decline(ctx, techID, o.ID)
	}
	return o, err
}

// OfferMessageFailed falls back when an offer's SMS could not be delivered:
// the offer ends as if unanswered (expired, so the technician is not asked
// again at once: they never saw it) and the job goes to the next candidate,
// with an event for ops.
func (s *Service) OfferMessageFailed(ctx context.Context, offerID, why string) error {
	now := s.now()
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		o, err := loadOffer(tx, offerID)
		if err != nil {
			return err
		}
		if _, err := lockRequest(tx, o.RequestID); err != nil {
			return err
		}
		res := tx.Model(&Offer{}).Where("id = ? AND state = ?", o.ID, OfferPending).
			Updates(map[string]any{"state": OfferExpired, "answered_at": now})
		if res.Error != nil {
			return fmt.Errorf("close offer: %w", res.Error)
		}
		if res.RowsAffected == 0 {
			return nil // answered meanwhile: nothing failed that matters
		}
		if err := appendEvent(tx, o.RequestID, "offer_sms_failed", System,
			map[string]any{"offer_id": o.ID, "technician_id": o.TechnicianID, "why": why}, now); err != nil {
			return err
		}
		if n, err := pendingOffers(tx, o.RequestID); err != nil || n > 0 {
			return err
		}
		return s.matchSoon(tx, o.RequestID, now)
	})
	return wrap("offer message failed "+offerID, err)
}
