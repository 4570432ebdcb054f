package dispatch

import (
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/onsite/onsite/dispatch/match"
	"github.com/onsite/onsite/technicians"
)

// OfferState is where an offer is.
type OfferState string

// Offer states.
const (
	OfferPending   OfferState = "pending"
	OfferAccepted  OfferState = "accepted"
	OfferDeclined  OfferState = "declined"
	OfferExpired   OfferState = "expired"
	OfferWithdrawn OfferState = "withdrawn"
)

// Offer is one request offered to one technician.
type Offer struct {
	ID           string     `json:"id" gorm:"primaryKey"`
	RequestID    string     `json:"request_id"`
	TechnicianID string     `json:"technician_id"`
	Rank         int        `json:"rank"`
	Round        int        `json:"round"`
	EtaSeconds   int        `json:"eta_seconds"`
	DistanceM    int        `json:"distance_m"`
	Score        float64    `json:"score"`
	Reason       string     `json:"-"`
	State        OfferState `json:"state"`
	CreatedAt    time.Time  `json:"created_at"`
	ExpiresAt    time.Time  `json:"expires_at"`
	AnsweredAt   *time.Time `json:"answered_at"`
}

// Assignment binds a technician to a request; at most one is live (EndedAt
// nil) per request, held by a unique partial index (invariant 1).
type Assignment struct {
	ID           string `gorm:"primaryKey"`
	RequestID    string
	TechnicianID string
	OfferID      *string
	StartedAt    time.Time
	EndedAt      *time.Time
	EndReason    *string
}

// withdrawPending withdraws every pending offer of a request.
func (s *Service) withdrawPending(tx *gorm.DB, requestID, why string, now time.Time) error {
	var pending []Offer
	if err := tx.Where("request_id = ? AND state = ?", requestID, OfferPending).Find(&pending).Error; err != nil {
		return fmt.Errorf("find pending offers of %s: %w", requestID, err)
	}
	for _, o := range pending {
		res := tx.Model(&Offer{}).Where("id = ? AND state = ?", o.ID, OfferPending).
			Updates(map[string]any{"state": OfferWithdrawn, "answered_at": now})
		if res.Error != nil {
			return fmt.Errorf("withdraw offer %s: %w", o.ID, res.Error)
		}
		if res.RowsAffected == 1 {
			if err := technicians.Changed(tx, o.TechnicianID); err != nil {
				return err
			}
			if err := appendEvent(tx, requestID, "offer_withdrawn", System,
				map[string]any{"offer_id": o.ID, "technician_id": o.TechnicianID, "why": why}, now); err != nil {
				return err
			}
		}
	}
	return nil
}

// endAssignment closes the live assignment and gives the technician's
// capacity back.
func endAssignment(tx *gorm.DB, requestID, techID, reason string, now time.Time) error {
	res := tx.Model(&Assignment{}).Where("request_id = ? AND ended_at IS NULL", requestID).
		Updates(map[string]any{"ended_at": now, "end_reason": reason})
	if res.Error != nil {
		return fmt.Errorf("end assignment of %s: %w", requestID, res.Error)
	}
	if res.RowsAffected == 0 {
		return nil
	}
	return technicians.Release(tx, techID, now)
}

// matchSoon writes a matching round for a searching request to the outbox.
// With the batch strategy the next batch round is that round (it flags
// at-risk requests too), so no task is needed.
func (s *Service) matchSoon(tx *gorm.DB, requestID string, now time.Time) error {
	if s.cfg.OfferStrategy == match.Batch {
		return nil
	}
	return enqueue(tx, TaskMatch, QueueCritical, TaskPayload{RequestID: requestID}, now, now)
}

// afterStateChange writes the tasks a request's new state implies.
func (s *Service) afterStateChange(tx *gorm.DB, r *Request, now time.Time) error {
	switch r.State {
	case Searching:
		if err := s.matchSoon(tx, r.ID, now); err != nil {
			return err
		}
		if r.GiveUpAt != nil {
			return enqueue(tx, TaskDeadline, QueueDefault, TaskPayload{RequestID: r.ID}, *r.GiveUpAt, now)
		}
	case Scheduled:
		at := r.WindowStart.Add(-s.cfg.WindowLead)
		return enqueue(tx, TaskStartSearch, QueueDefault, TaskPayload{RequestID: r.ID}, at, now)
	}
	return nil
}
