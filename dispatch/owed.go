package dispatch

import (
	"context"
	"fmt"
	"time"

	"github.com/onsite/onsite/internal/db"
)

// An event someone is to be told about (notifiable) is written with
// messages_owed set, in the transaction of the change. It stays owed until
// the worker has stored the event's messages: the queued task is a wake-up,
// and the sweep wakes the worker again for events that stay owed
// (docs/messages.md).

// MessagesStored records that the messages of an event are stored: the
// event no longer owes any. Storing them again later is harmless.
func (s *Service) MessagesStored(ctx context.Context, eventID string) error {
	if err := s.db.WithContext(ctx).Model(&Event{}).Where("id = ? AND messages_owed", eventID).
		Update("messages_owed", false).Error; err != nil {
		return fmt.Errorf("mark messages of event %s stored: %w", eventID, err)
	}
	return nil
}

// OwedEvents returns up to limit events, oldest first, that happened before
// before and still owe their messages.
func (s *Service) OwedEvents(ctx context.Context, before time.Time, limit int) ([]TaskPayload, error) {
	var evs []Event
	if err := s.db.WithContext(ctx).Select("id", "request_id").Where("messages_owed AND at < ?", db.UTC(before)).
		Order("at").Limit(limit).Find(&evs).Error; err != nil {
		return nil, fmt.Errorf("find events that owe messages: %w", err)
	}
	out := make([]TaskPayload, len(evs))
	for i, e := range evs {
		out[i] = TaskPayload{EventID: e.ID, RequestID: e.RequestID}
	}
	return out, nil
}

// DueReminders returns the windowed appointments whose reminders fell due
// before before and are still to come: assigned (or on the way) at least an
// hour before the window (as the reminder task is queued), the window not
// started. The caller sends what was not sent yet; reminders are keyed per
// request and technician.
func (s *Service) DueReminders(ctx context.Context, before time.Time, limit int) ([]Request, error) {
	now := s.now()
	var rs []Request
	if err := s.db.WithContext(ctx).Select("id", "technician_id", "window_start", "assigned_at").
		Where("mode = ? AND state IN ? AND technician_id IS NOT NULL AND window_start > ? AND window_start <= ?",
			Window, []State{Assigned, EnRoute}, now, db.UTC(before.Add(reminderBefore))).
		Order("window_start").Limit(limit).Find(&rs).Error; err != nil {
		return nil, fmt.Errorf("find due reminders: %w", err)
	}
	out := rs[:0]
	for _, r := range rs {
		if r.AssignedAt != nil && r.WindowStart.Add(-reminderBefore).After(*r.AssignedAt) {
			out = append(out, r)
		}
	}
	return out, nil
}

// Standing is where a request stands now, for a message about it that is
// about to be sent.
type Standing struct {
	State      State
	Technician string     // the request's technician, "" when none
	Offer      OfferState // the state of the offer asked about, "" when none
}

// Standing returns where request requestID stands now and, when offerID is
// not empty, the state of that offer.
func (s *Service) Standing(ctx context.Context, requestID, offerID string) (Standing, error) {
	q := s.db.WithContext(ctx)
	r, err := load(q.Select("id", "state", "technician_id"), requestID)
	if err != nil {
		return Standing{}, err
	}
	st := Standing{State: r.State}
	if r.TechnicianID != nil {
		st.Technician = *r.TechnicianID
	}
	if offerID != "" {
		o, err := loadOffer(q.Select("id", "state"), offerID)
		if err != nil {
			return Standing{}, err
		}
		st.Offer = o.State
	}
	return st, nil
}
