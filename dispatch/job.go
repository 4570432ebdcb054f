package dispatch

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/onsite/onsite/dispatch/lifecycle"
	"github.com/onsite/onsite/dispatch/match"
	"github.com/onsite/onsite/geo"
	"github.com/onsite/onsite/internal/db"
	"github.com/onsite/onsite/internal/errs"
	"github.com/onsite/onsite/technicians"
)

// bind assigns r to a technician inside tx: the request moves to assigned
// (conditional on its state), a live assignment row is created (unique per
// request), the technician's capacity is reserved, and every other pending
// offer is withdrawn.
func (s *Service) bind(tx *gorm.DB, r *Request, techID string, offerID *string, actor Actor, data map[string]any, force bool, now time.Time) error {
	if err := technicians.Reserve(tx, techID, now, force); err != nil {
		if errors.Is(err, technicians.ErrNoCapacity) {
			return errs.ConflictReason("technician_unavailable", "technician %s is off duty, suspended or at capacity", techID)
		}
		return err
	}
	a := Assignment{ID: db.NewID(), RequestID: r.ID, TechnicianID: techID, OfferID: offerID, StartedAt: now}
	if err := tx.Create(&a).Error; err != nil {
		if db.IsDuplicate(err) {
			return errs.ConflictReason("offer_taken", "this job was just taken by someone else")
		}
		return fmt.Errorf("create assignment: %w", err)
	}
	set := map[string]any{"technician_id": techID, "at_risk": false}
	if eta, ok := s.etaFor(tx, techID, r.Place(), now); ok {
		set["eta_at"] = eta
		data["eta_at"] = eta
	}
	data["technician_id"] = techID
	if err := transition(tx, r, Assign, actor, set, data, now); err != nil {
		if e, ok := errs.As(err); ok && e.Reason == "changed_concurrently" {
			return errs.ConflictReason("offer_taken", "this job was just taken by someone else")
		}
		return err
	}
	if r.Mode == Window && r.WindowStart != nil && r.WindowStart.Add(-reminderBefore).After(now) {
		if err := enqueue(tx, TaskRemind, QueueDefault, TaskPayload{RequestID: r.ID}, r.WindowStart.Add(-reminderBefore), now); err != nil {
			return err
		}
	}
	return s.withdrawPending(tx, r.ID, "assigned to "+techID, now)
}

// etaFor predicts when a technician reaches place from their last position.
func (s *Service) etaFor(tx *gorm.DB, techID string, place geo.Point, now time.Time) (time.Time, bool) {
	var t technicians.Technician
	if err := tx.Select("id", "lat", "lng", "travel_mode", "speed_kmh").Where("id = ?", techID).First(&t).Error; err != nil {
		return time.Time{}, false
	}
	pos, ok := t.Position()
	if !ok {
		return time.Time{}, false
	}
	return db.UTC(now.Add(s.cfg.ETA.Estimate(pos, place, geo.Traveller{Mode: t.TravelMode, SpeedKmh: t.SpeedKmh}))), true
}

// Outcomes of a completed job.
var outcomes = map[string]bool{"fixed": true, "not_fixed": true, "needs_parts": true}

// JobStep is a technician moving their job on.
type JobStep struct {
	Outcome string `json:"outcome"`
	Reason  string `json:"reason"`
}

// Depart, Arrive, Complete and Drop are the technician's job steps.
func (s *Service) Depart(ctx context.Context, techID, requestID string) (Request, error) {
	return s.jobStep(ctx, techID, requestID, Depart, JobStep{})
}

// Arrive marks the technician on site.
func (s *Service) Arrive(ctx context.Context, techID, requestID string) (Request, error) {
	return s.jobStep(ctx, techID, requestID, Arrive, JobStep{})
}

// Complete closes the job with an outcome: fixed, not_fixed or needs_parts.
func (s *Service) Complete(ctx context.Context, techID, requestID string, step JobStep) (Request, error) {
	if !outcomes[step.Outcome] {
		return Request{}, errs.InvalidField("outcome", "outcome must be fixed, not_fixed or needs_parts")
	}
	step.Reason = strings.TrimSpace(step.Reason)
	if len(step.Reason) > 500 {
		return Request{}, errs.InvalidField("reason", "reason is longer than 500 characters")
	}
	return s.jobStep(ctx, techID, requestID, Complete, step)
}

// Drop gives the job back: it is searched again without this technician.
func (s *Service) Drop(ctx context.Context, techID, requestID string, step JobStep) (Request, error) {
	step.Reason = strings.TrimSpace(step.Reason)
	if step.Reason == "" || len(step.Reason) > 500 {
		return Request{}, errs.InvalidField("reason", "reason is required (at most 500 characters)")
	}
	return s.jobStep(ctx, techID, requestID, Drop, step)
}

func (s *Service) jobStep(ctx context.Context, techID, requestID string, a Action, step JobStep) (Request, error) {
	actor := Actor{Role: "technician", ID: techID}
	return s.change(ctx, requestID, string(a)+" job", func(tx *gorm.DB, r *Request, now time.Time) error {
		if r.TechnicianID == nil || *r.TechnicianID != techID || !r.State.Live() {
			return errNotFound("job", requestID)
		}
		set := map[string]any{}
		data := map[string]any{}
		switch a {
		case Arrive:
			set["visits"] = gorm.Expr("visits + 1")
			if err := s.checkArrival(tx, r, techID, set, data); err != nil {
				return err
			}
		case Complete:
			set["outcome"] = step.Outcome
			data["outcome"] = step.Outcome
			if step.Reason != "" {
				data["reason"] = step.Reason
			}
		case Drop:
			set["technician_id"] = nil
			set["eta_at"] = nil
			data["reason"] = step.Reason
			data["technician_id"] = techID
			s.fairChance(r, set, now)
		}
		if err := transition(tx, r, a, actor, set, data, now); err != nil {
			return err
		}
		switch a {
		case Complete:
			if err := endAssignment(tx, r.ID, techID, "completed", now); err != nil {
				return err
			}
			if step.Outcome == "not_fixed" || step.Outcome == "needs_parts" {
				return s.openFollowUp(tx, r, techID, step, now)
			}
			return nil
		case Drop:
			if err := endAssignment(tx, r.ID, techID, "dropped", now); err != nil {
				return err
			}
			return s.afterStateChange(tx, r, now)
		}
		return nil
	})
}

// checkArrival measures the technician's latest position against the site.
// An arrival farther than the arrival radius, or with no position, is still
// recorded (the technician may be right and the position stale), but it is
// flagged in the request and its on_site event for ops to look at, and the
// KPIs never count it on time.
func (s *Service) checkArrival(tx *gorm.DB, r *Request, techID string, set, data map[string]any) error {
	var t technicians.Technician
	if err := tx.Select("id", "lat", "lng").Where("id = ?", techID).First(&t).Error; err != nil {
		return fmt.Errorf("position of %s: %w", techID, err)
	}
	pos, ok := t.Position()
	if !ok {
		set["arrival_flagged"], set["arrival_distance_m"] = true, nil
		data["arrival_flagged"], data["arrival_why"] = true, "no known position"
		return nil
	}
	d := int(math.Round(geo.DistanceM(pos, r.Place())))
	set["arrival_distance_m"], data["distance_m"] = d, d
	if float64(d) > s.cfg.ArrivalRadiusM {
		set["arrival_flagged"] = true
		data["arrival_flagged"] = true
		data["arrival_why"] = fmt.Sprintf("%d m from the site (more than %.0f m)", d, s.cfg.ArrivalRadiusM)
	}
	return nil
}

// fairChance gives a request taken back from its technician at least a
// quarter of the SLA of new searching before its give-up time (which also
// bounds whom the batch sends), rather than none.
func (s *Service) fairChance(r *Request, set map[string]any, now time.Time) {
	if r.GiveUpAt != nil && r.GiveUpAt.Before(now.Add(s.cfg.SLA/4)) {
		set["give_up_at"] = now.Add(s.cfg.SLA / 4)
	}
}

// unassign takes an assigned or en-route request away from its technician,
// back to searching; set holds further columns to write.
func unassign(tx *gorm.DB, r *Request, actor Actor, why string, set map[string]any, now time.Time) error {
	prev := *r.TechnicianID
	if set == nil {
		set = map[string]any{}
	}
	set["technician_id"], set["eta_at"] = nil, nil
	if err := transition(tx, r, Unassign, actor, set,
		map[string]any{"technician_id": prev, "why": why}, now); err != nil {
		return err
	}
	return endAssignment(tx, r.ID, prev, why, now)
}

// AssignInput is ops' hand assignment. Override assigns a technician the
// hard rules refuse (no current certification, off duty, outside shift or
// travel radius); it needs a Reason, and both are kept in the assigned
// event. No override lifts capacity or a suspension.
type AssignInput struct {
	TechnicianID string `json:"technician_id"`
	Override     bool   `json:"override"`
	Reason       string `json:"reason"`
}

// AssignByHand lets ops give a request to a technician (or move it to
// another). The same invariants hold: one live assignment, capacity, an
// event in the same transaction; and the same hard rules as matching, unless
// ops override them.
func (s *Service) AssignByHand(ctx context.Context, c Caller, requestID string, in AssignInput) (Request, error) {
	if strings.TrimSpace(in.TechnicianID) == "" {
		return Request{}, errs.InvalidField("technician_id", "technician_id is required")
	}
	reason := strings.TrimSpace(in.Reason)
	if len(reason) > 500 {
		return Request{}, errs.InvalidField("reason", "reason is longer than 500 characters")
	}
	if in.Override && reason == "" {
		return Request{}, errs.InvalidField("reason", "an override needs a reason")
	}
	return s.change(ctx, requestID, "assign", func(tx *gorm.DB, r *Request, now time.Time) error {
		if err := mustExist(tx, &technicians.Technician{}, "id", in.TechnicianID); err != nil {
			return errs.InvalidField("technician_id", "unknown technician %q", in.TechnicianID)
		}
		if r.TechnicianID != nil && *r.TechnicianID == in.TechnicianID {
			return errs.ConflictReason("already_assigned", "request %s is already assigned to %s", r.ID, in.TechnicianID)
		}
		why, err := eligibleAtDoor(tx, *r, in.TechnicianID, now)
		if err != nil {
			return err
		}
		data := map[string]any{"by_hand": true}
		if reason != "" {
			data["reason"] = reason
		}
		switch {
		case in.Override:
			data["override"] = true
			if why != match.ReasonOK {
				data["overridden"] = why
			}
		case why != match.ReasonOK:
			return notEligible(in.TechnicianID, *r, why)
		}
		if r.State == Assigned || r.State == EnRoute {
			if err := unassign(tx, r, c.actor(), "reassigned by ops", nil, now); err != nil {
				return err
			}
		}
		if _, err := lifecycle.Next(r.State, Assign); err != nil {
			return err
		}
		if r.State == Unfulfilled {
			if err := transition(tx, r, Reopen, c.actor(), nil, map[string]any{"why": "assigned by ops"}, now); err != nil {
				return err
			}
		}
		return s.bind(tx, r, in.TechnicianID, nil, c.actor(), data, in.Override, now)
	})
}

// Redispatch sends a request back to searching: an assigned one loses its
// technician (and gets at least a quarter of the SLA of searching), an
// unfulfilled one is searched again with a new give-up time,
// a searching one has its offers withdrawn and starts a fresh round.
func (s *Service) Redispatch(ctx context.Context, c Caller, requestID string) (Request, error) {
	return s.change(ctx, requestID, "redispatch", func(tx *gorm.DB, r *Request, now time.Time) error {
		switch r.State {
		case Assigned, EnRoute:
			set := map[string]any{}
			s.fairChance(r, set, now)
			if err := unassign(tx, r, c.actor(), "redispatched by ops", set, now); err != nil {
				return err
			}
		case Unfulfilled:
			if err := transition(tx, r, Reopen, c.actor(), map[string]any{"give_up_at": now.Add(s.cfg.GiveUp)}, nil, now); err != nil {
				return err
			}
		case Searching:
			if err := s.withdrawPending(tx, r.ID, "redispatched by ops", now); err != nil {
				return err
			}
			if err := appendEvent(tx, r.ID, "redispatched", c.actor(), nil, now); err != nil {
				return err
			}
		default:
			return errs.ConflictReason("illegal_transition", "cannot redispatch a request that is %s", r.State)
		}
		return s.afterStateChange(tx, r, now)
	})
}

// TechnicianMoved updates the ETA of a technician's live jobs after a
// position report.
func (s *Service) TechnicianMoved(ctx context.Context, techID string, at geo.Point) error {
	now := s.now()
	var live []Request
	if err := s.db.WithContext(ctx).Where("technician_id = ? AND state IN ?", techID, []State{Assigned, EnRoute}).Find(&live).Error; err != nil {
		return fmt.Errorf("live jobs of %s: %w", techID, err)
	}
	if len(live) == 0 {
		return nil
	}
	var t technicians.Technician
	if err := s.db.WithContext(ctx).Select("id", "travel_mode", "speed_kmh").Where("id = ?", techID).First(&t).Error; err != nil {
		return fmt.Errorf("load technician %s: %w", techID, err)
	}
	for _, r := range live {
		eta := db.UTC(now.Add(s.cfg.ETA.Estimate(at, r.Place(), geo.Traveller{Mode: t.TravelMode, SpeedKmh: t.SpeedKmh})))
		if err := s.db.WithContext(ctx).Model(&Request{}).Where("id = ? AND technician_id = ?", r.ID, techID).
			Update("eta_at", eta).Error; err != nil {
			return fmt.Errorf("update eta of %s: %w", r.ID, err)
		}
	}
	return nil
}

// MyJobs returns the requests a technician has been assigned, newest first.
func (s *Service) MyJobs(ctx context.Context, techID string, limit int) ([]Request, error) {
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	out := []Request{}
	err := s.db.WithContext(ctx).Where("id IN (SELECT request_id FROM assignments WHERE technician_id = ?)", techID).
		Order("created_at DESC").Limit(limit).Find(&out).Error
	if err != nil {
		return nil, fmt.Errorf("jobs of %s: %w", techID, err)
	}
	return out, nil
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
