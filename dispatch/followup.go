package dispatch

import (
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/onsite/onsite/internal/db"
)

// openFollowUp opens the follow-up of a visit that closed not_fixed or
// needs_parts, inside the transaction that closed it: a new request for
// the same customer (and device), skill and place, linked by follow_up_of,
// preferring the technician who came. It waits for the customer's choice
// (pending_confirmation): as soon as possible, or a time window, answered
// through POST /v1/requests/{id}/confirm by the customer or by ops on their
// behalf; its promise runs from that answer, as a device's request's does.
// A second visit is rarely wanted "now" when parts must be ordered, and
// only the customer knows when they are home.
func (s *Service) openFollowUp(tx *gorm.DB, first *Request, techID string, step JobStep, now time.Time) error {
	f := Request{
		ID: db.NewID(), CustomerID: first.CustomerID, CreatedBy: first.CreatedBy,
		SkillCode: first.SkillCode, Lat: first.Lat, Lng: first.Lng, Cell: first.Cell, Region: first.Region,
		Address: first.Address, Notes: first.Notes, Photos: first.Photos,
		DeviceID: first.DeviceID, FaultCode: first.FaultCode, ContactPhone: first.ContactPhone, ContactLocale: first.ContactLocale,
		Mode: ASAP, State: PendingConfirmation, FollowUpOf: &first.ID, PreferredTechnicianID: &techID,
		CreatedAt: now, UpdatedAt: now,
	}
	if first.DeviceID != nil {
		f.Faults = 1
	}
	if err := tx.Create(&f).Error; err != nil {
		if db.IsDuplicate(err) {
			return fmt.Errorf("follow-up of %s exists already: %w", first.ID, err)
		}
		return fmt.Errorf("create follow-up of %s: %w", first.ID, err)
	}
	var w writes
	created := map[string]any{"skill": f.SkillCode, "mode": f.Mode, "cell": f.Cell.String(),
		"follow_up_of": first.ID, "outcome": step.Outcome, "preferred_technician_id": techID}
	opened := map[string]any{"follow_up_id": f.ID, "outcome": step.Outcome}
	if step.Reason != "" {
		created["reason"], opened["reason"] = step.Reason, step.Reason
	}
	// Neither event texts anyone yet: the words of a follow-up's text
	// belong to notify (the device owner's confirmation text does not fit).
	if err := w.eventTelling(f.ID, "created", Actor{Role: "technician", ID: techID}, created, false, now); err != nil {
		return err
	}
	if err := w.eventTelling(first.ID, "follow_up_opened", Actor{Role: "technician", ID: techID}, opened, false, now); err != nil {
		return err
	}
	s.timersOf(&w, &f, now)
	if err := w.flush(tx, now); err != nil {
		return err
	}
	return notifyRequest(tx, f)
}
