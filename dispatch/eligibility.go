package dispatch

import (
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/onsite/onsite/dispatch/match"
	"github.com/onsite/onsite/internal/errs"
)

// Every door that gives a technician a job applies the same hard rules
// (DESIGN.md, Eligibility): matching and the batch round through the live
// index, and the doors below (offer acceptance in the app and by SMS, ops'
// hand assignment and reassignment) through eligibleAtDoor, which reads the
// technician from the database inside the door's own transaction. The rules
// are match.Eligible's, the pure core's, in both.

// ReasonNotEligible is the conflict reason of a door that refuses a
// technician the rules do not allow; the message carries the core's reason.
const ReasonNotEligible = "not_eligible"

// eligibleAtDoor is why techID may not take r now (match.ReasonOK when they
// may), judged on the technician's row, current certifications, shifts,
// breaks, bookings and position as tx sees them, built into a candidate exactly as the live index
// builds it. The offer rules are left out: at a door the technician answers
// their own offer or is named by ops, so holding an offer (this one or
// another) and past answers to this request do not refuse them.
func (s *Service) eligibleAtDoor(tx *gorm.DB, r Request, techID string, now time.Time) (string, error) {
	cands, err := readCandidates(tx, now, []string{techID}, s.cfg.TimeZone)
	if err != nil {
		return "", fmt.Errorf("eligibility of %s for %s: %w", techID, r.ID, err)
	}
	if len(cands) == 0 {
		return "", errNotFound("technician", techID)
	}
	c := cands[0]
	c.Excluded, c.Deciding, c.DecidingUntil = false, false, time.Time{}
	return match.EligibleWith(s.jobOf(r), c, s.cfg.ETA, now), nil
}

// notEligible is a door's refusal in the shared error shape.
func notEligible(techID string, r Request, why string) error {
	return errs.ConflictReason(ReasonNotEligible, "technician %s may not take request %s: %s", techID, r.ID, why)
}

// mustBeEligible refuses techID for r unless the rules allow it.
func (s *Service) mustBeEligible(tx *gorm.DB, r Request, techID string, now time.Time) error {
	why, err := s.eligibleAtDoor(tx, r, techID, now)
	if err != nil {
		return err
	}
	if why != match.ReasonOK {
		return notEligible(techID, r, why)
	}
	return nil
}
