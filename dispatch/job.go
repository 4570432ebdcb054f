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
// offer is withdrawn. A windowed job whose hold has not begun is booked
// instead: its assignment takes no capacity until its hold (countHold).
// Either way the job must keep the technician's other bookings.
func (s *Service) bind(tx *gorm.DB, r *Request, techID string, offerID *string, actor Actor, data map[string]any, force bool, now time.Time) error {
	holdsFrom, booked := s.holdOf(tx, *r, techID, now)
	take := technicians.Reserve
	if booked {
		take = technicians.Book
	}
	if err := take(tx, techID, now, force); err != nil {
		if errors.Is(err, technicians.ErrNoCapacity) {
			return errs.ConflictReason("technician_unavailable", "technician %s is off duty, suspended or at capacity", techID)
		}
		return err
	}
	if err := s.mustKeepBookings(tx, *r, techID, !booked, now); err != nil {
		return err
	}
	a := Assignment{ID: db.NewID(), RequestID: r.ID, TechnicianID: techID, OfferID: offerID, StartedAt: now, Counted: !booked}
	if booked {
		a.HoldsFrom = &holdsFrom
		data["holds_from"] = holdsFrom
	}
	if err := tx.Create(&a).Error; err != nil {
		if db.IsDuplicate(err) {
			return errs.ConflictReason("offer_taken", "this job was just taken by someone else")
		}
		return fmt.Errorf("create assignment: %w", err)
	}
	set := map[string]any{"technician_id": techID, "at_risk": false, "at_risk_since": nil}
	if eta, ok := s.etaFor(tx, techID, r.Place(), now); ok {
		set["eta_at"] = eta
		data["eta_at"] = eta
		if r.Mode == ASAP {
			set["eta_promised_at"] = eta // what the "assigned" text tells
		}
	}
	data["technician_id"] = techID
	prev, err := previousTechnician(tx, r.ID)
	if err != nil {
		return err
	}
	if prev != "" && prev != techID {
		data["previous_technician_id"] = prev // the customer is told of the change
	}
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

// previousTechnician is the technician of the request's latest ended
// assignment ("" for none).
func previousTechnician(tx *gorm.DB, requestID string) (string, error) {
	var ids []string
	if err := tx.Model(&Assignment{}).Where("request_id = ? AND ended_at IS NOT NULL", requestID).
		Order("ended_at DESC").Limit(1).Pluck("technician_id", &ids).Error; err != nil {
		return "", fmt.Errorf("previous technician of %s: %w", requestID, err)
	}
	if len(ids) == 0 {
		return "", nil
	}
	return ids[0], nil
}

// holdOf is when a windowed job given to techID begins to hold them: its
// window's start less the drive there from their last position (less the
// window lead when no position is known), and whether that lies ahead, so
// the job is a booking until then. Other jobs hold from now.
func (s *Service) holdOf(tx *gorm.DB, r Request, techID string, now time.Time) (time.Time, bool) {
	if r.Mode != Window || r.WindowStart == nil {
		return now, false
	}
	from := r.WindowStart.Add(-s.cfg.WindowLead)
	if eta, ok := s.etaFor(tx, techID, r.Place(), now); ok {
		from = r.WindowStart.Add(-eta.Sub(now))
	}
	from = db.UTC(from)
	return from, from.After(now)
}

// mustKeepBookings refuses r for techID when taking it would make them late
// for one of their bookings (match.FitsBookings, as matching decides it).
// It runs after the technician's row was updated in tx (Reserve or Book), so
// on PostgreSQL no other transaction can book or reserve them until this one
// ends, and what it reads is all that is committed; SQLite has one writer.
// reserved says the update took one of their capacity for r.
func (s *Service) mustKeepBookings(tx *gorm.DB, r Request, techID string, reserved bool, now time.Time) error {
	var n int64
	if err := tx.Model(&Assignment{}).Where("technician_id = ? AND ended_at IS NULL AND counted = FALSE", techID).
		Count(&n).Error; err != nil {
		return fmt.Errorf("bookings of %s: %w", techID, err)
	}
	if n == 0 {
		return nil
	}
	cands, err := readCandidates(tx, now, []string{techID}, s.cfg.TimeZone)
	if err != nil {
		return err
	}
	if len(cands) == 0 {
		return errNotFound("technician", techID)
	}
	c := cands[0]
	if reserved {
		c.ActiveJobs-- // as they were before taking r
	}
	var d time.Duration
	if c.HasPosition {
		d = s.cfg.ETA.Estimate(c.Position, r.Place(), c.Traveller)
	}
	if !match.FitsBookings(s.jobOf(r), c, d, s.cfg.ETA, now) {
		// Bookings are capacity (DESIGN.md invariant 2): no override lifts it.
		return errs.ConflictReason("technician_unavailable", "technician %s %s", techID, match.ReasonLateForWindow)
	}
	return nil
}

// countHold makes a booking count against its technician's capacity, once:
// at its hold (the sweep) or when the technician sets off or arrives
// earlier; it reports whether it counted one now. It fails with
// technicians.ErrNoCapacity while the technician's jobs fill their capacity
// (the booking stays one, and matching keeps refusing anything that would
// make them later).
func countHold(tx *gorm.DB, requestID string, now time.Time) (bool, error) {
	var a Assignment
	if err := tx.Where("request_id = ? AND ended_at IS NULL", requestID).Take(&a).Error; err != nil {
		if db.IsNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("assignment of %s: %w", requestID, err)
	}
	if a.Counted {
		return false, nil
	}
	res := tx.Model(&Assignment{}).Where("id = ? AND counted = FALSE AND ended_at IS NULL", a.ID).Update("counted", true)
	if res.Error != nil {
		return false, fmt.Errorf("count hold of %s: %w", requestID, res.Error)
	}
	if res.RowsAffected == 0 {
		return false, nil // counted or ended meanwhile
	}
	// force: a technician who went off duty still holds the job they took.
	if err := technicians.Reserve(tx, a.TechnicianID, now, true); err != nil {
		return false, err
	}
	return true, nil
}

// CountHolds counts every booking whose hold has begun against its
// technician's capacity (the sweep's part); it returns how many it counted
// and leaves those whose technician is still at capacity for the next run.
func (s *Service) CountHolds(ctx context.Context) (int, error) {
	now := s.now()
	var due []string
	if err := s.db.WithContext(ctx).Model(&Assignment{}).Where("counted = FALSE AND ended_at IS NULL AND holds_from <= ?", now).
		Order("holds_from").Limit(500).Pluck("request_id", &due).Error; err != nil {
		return 0, fmt.Errorf("due holds: %w", err)
	}
	n := 0
	for _, id := range due {
		var counted bool
		err := s.db.Tx(ctx, func(tx *gorm.DB) (err error) {
			counted, err = countHold(tx, id, now)
			return err
		})
		switch {
		case errors.Is(err, technicians.ErrNoCapacity):
			continue
		case err != nil:
			return n, fmt.Errorf("count hold of %s: %w", id, err)
		case counted:
			n++
		}
	}
	return n, nil
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

// actionWords names a job step in a refusal.
var actionWords = map[Action]string{Depart: "set off to", Arrive: "arrive at"}

// Outcomes of a completed job.
var outcomes = map[string]bool{"fixed": true, "not_fixed": true, "needs_parts": true}

// JobStep is a technician moving their job on.
type JobStep struct {
	Outcome string `json:"outcome"`
	Reason  string `json:"reason"`
}

// Depart, Arrive and Complete are the technician's job steps (Drop and HandBack give the job back).
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

// Drop gives the job back with words of the technician's own: the older
// form of HandBack, recorded as a hand-back for reason "other" with the
// words as its note.
func (s *Service) Drop(ctx context.Context, techID, requestID string, step JobStep) (Request, error) {
	step.Reason = strings.TrimSpace(step.Reason)
	if step.Reason == "" || len(step.Reason) > 500 {
		return Request{}, errs.InvalidField("reason", "reason is required (at most 500 characters)")
	}
	return s.HandBack(ctx, techID, requestID, HandBackInput{Reason: "other", Note: step.Reason})
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
			set["no_show_due_at"] = nil // someone opened after all
			set["outcome"] = step.Outcome
			data["outcome"] = step.Outcome
			if step.Reason != "" {
				data["reason"] = step.Reason
			}
		}
		if a == Depart || a == Arrive {
			// Setting off to a booked window (or arriving) makes it count
			// now; with every unit of capacity on other jobs it waits.
			if _, err := countHold(tx, r.ID, now); errors.Is(err, technicians.ErrNoCapacity) {
				return errs.ConflictReason("finish_current_job", "finish your current job before you %s this one", actionWords[a])
			} else if err != nil {
				return err
			}
		}
		if err := transition(tx, r, a, actor, set, data, now); err != nil {
			return err
		}
		if a == Complete {
			if err := endAssignment(tx, r.ID, techID, "completed", now); err != nil {
				return err
			}
			if step.Outcome == "not_fixed" || step.Outcome == "needs_parts" {
				return s.openFollowUp(tx, r, techID, step, now)
			}
			return nil
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
		why, err := s.eligibleAtDoor(tx, *r, in.TechnicianID, now)
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
		if s.late(r, eta) {
			if err := s.runningLate(ctx, r, techID, eta, now); err != nil {
				return err
			}
			continue
		}
		if err := s.db.WithContext(ctx).Model(&Request{}).Where("id = ? AND technician_id = ?", r.ID, techID).
			Update("eta_at", eta).Error; err != nil {
			return fmt.Errorf("update eta of %s: %w", r.ID, err)
		}
	}
	return nil
}

// late reports whether a predicted arrival slipped well past what the
// customer was told: for an ASAP job more than LateAfter past the last
// arrival time they were texted; for a windowed one, once the technician is
// on the way, past the window's end (and then LateAfter past the last "late"
// time told).
func (s *Service) late(r Request, eta time.Time) bool {
	promised := r.EtaPromisedAt
	if r.Mode == Window {
		if r.State != EnRoute || r.WindowEnd == nil || !eta.After(*r.WindowEnd) {
			return false
		}
		if promised == nil {
			return true
		}
	}
	return promised != nil && eta.After(promised.Add(s.cfg.LateAfter))
}

// runningLate records that a job's arrival slipped: the new ETA becomes what
// the customer is told, with a running_late event (and its text). The
// update is conditional on what was promised, so two position reports at
// once tell the customer once.
func (s *Service) runningLate(ctx context.Context, r Request, techID string, eta, now time.Time) error {
	return s.db.Tx(ctx, func(tx *gorm.DB) error {
		q := tx.Model(&Request{}).Where("id = ? AND technician_id = ? AND state IN ?", r.ID, techID, []State{Assigned, EnRoute})
		if r.EtaPromisedAt == nil {
			q = q.Where("eta_promised_at IS NULL")
		} else {
			q = q.Where("eta_promised_at = ?", *r.EtaPromisedAt)
		}
		res := q.Updates(map[string]any{"eta_at": eta, "eta_promised_at": eta, "updated_at": now})
		if res.Error != nil {
			return fmt.Errorf("update eta of %s: %w", r.ID, res.Error)
		}
		if res.RowsAffected == 0 {
			return nil // someone else told them, or the job moved on
		}
		data := map[string]any{"technician_id": techID, "eta_at": eta}
		if r.EtaPromisedAt != nil {
			data["was"] = *r.EtaPromisedAt
		}
		if err := appendEvent(tx, r.ID, "running_late", System, data, now); err != nil {
			return err
		}
		fresh, err := load(tx, r.ID)
		if err != nil {
			return err
		}
		return notifyRequest(tx, fresh)
	})
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
	// Counted says the job takes one of the technician's capacity; a
	// booking (a windowed job ahead of its hold) does not until HoldsFrom.
	Counted   bool
	HoldsFrom *time.Time
}

// endAssignment closes the live assignment and gives the technician's
// capacity back if it was counted (a booking took none). Each of the two
// updates is conditional on counted, so a hold counted at the same moment
// is released exactly once.
func endAssignment(tx *gorm.DB, requestID, techID, reason string, now time.Time) error {
	end := map[string]any{"ended_at": now, "end_reason": reason}
	res := tx.Model(&Assignment{}).Where("request_id = ? AND ended_at IS NULL AND counted = ?", requestID, true).Updates(end)
	if res.Error != nil {
		return fmt.Errorf("end assignment of %s: %w", requestID, res.Error)
	}
	if res.RowsAffected > 0 {
		return technicians.Release(tx, techID, now)
	}
	res = tx.Model(&Assignment{}).Where("request_id = ? AND ended_at IS NULL AND counted = ?", requestID, false).Updates(end)
	if res.Error != nil {
		return fmt.Errorf("end booking of %s: %w", requestID, res.Error)
	}
	if res.RowsAffected == 0 {
		return nil
	}
	return technicians.Changed(tx, techID) // a booking fewer for the live index
}
