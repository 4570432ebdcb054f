package dispatch

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/onsite/onsite/geo"
	"github.com/onsite/onsite/internal/db"
	"github.com/onsite/onsite/internal/errs"
	"github.com/onsite/onsite/technicians"
)

// Exceptions in the field (docs/dispatch.md "Exceptions in the field"):
// nobody at the door, a technician who cannot finish, a device's request its
// owner never confirms.

// Task kinds of the field's timers.
const (
	TaskNoShow        = "dispatch:no_show"        // the wait at an empty door is over (Service.CloseNoShow)
	TaskConfirmExpire = "dispatch:confirm_expire" // a device's request waited too long for its owner (Service.ExpireConfirmation)
)

// OutcomeNoShow is the outcome of a request closed because nobody was there.
const OutcomeNoShow = "no_show"

// doorPositionFresh is how recent the latest position must be to say where a
// technician reporting an empty door stands.
const doorPositionFresh = 5 * time.Minute

// dueSlack lets a timer that fires a moment early (asynq has whole seconds)
// still do its work.
const dueSlack = time.Second

// NotHomeInput is a technician's report that nobody opens the door.
type NotHomeInput struct {
	Note string `json:"note"`
}

// NotHome starts the wait at an empty door: the technician's latest position
// must be within the arrival radius of the site; a job not yet on site
// arrives; the request closes as a no-show after the configured wait unless
// the customer (or the technician) says they are there, or the customer
// books another time (Reschedule).
func (s *Service) NotHome(ctx context.Context, techID, requestID string, in NotHomeInput) (Request, error) {
	note := strings.TrimSpace(in.Note)
	if len(note) > 500 {
		return Request{}, errs.InvalidField("note", "note is longer than 500 characters")
	}
	actor := Actor{Role: "technician", ID: techID}
	return s.change(ctx, requestID, "report nobody at the door of", func(tx *gorm.DB, r *Request, now time.Time) error {
		if !ownLiveJob(*r, techID) {
			return errNotFound("job", requestID)
		}
		if r.Mode == Window && r.WindowStart != nil && now.Before(*r.WindowStart) {
			// Nobody owes an open door before the time they booked.
			return errs.ConflictReason("before_window", "the customer booked from %s; report nobody at the door once the window has started",
				r.WindowStart.Format(time.RFC3339))
		}
		if r.NoShowDueAt != nil {
			return errs.ConflictReason("already_waiting", "you already reported nobody at the door; the wait ends at %s", r.NoShowDueAt.Format(time.RFC3339))
		}
		dist, err := s.distanceFromSite(tx, techID, *r, now)
		if err != nil {
			return err
		}
		if r.State != OnSite {
			set := map[string]any{"visits": gorm.Expr("visits + 1")}
			if err := transition(tx, r, Arrive, actor, set, map[string]any{"not_home": true}, now); err != nil {
				return err
			}
		}
		due := now.Add(s.cfg.NoShowWait)
		res := tx.Model(&Request{}).Where("id = ? AND state = ? AND no_show_due_at IS NULL", r.ID, OnSite).
			Updates(map[string]any{"no_show_due_at": due, "updated_at": now})
		if res.Error != nil {
			return fmt.Errorf("start the wait at the door: %w", res.Error)
		}
		if res.RowsAffected == 0 {
			return errs.ConflictReason("changed_concurrently", "request %s changed at the same time; try again", r.ID)
		}
		data := map[string]any{"technician_id": techID, "distance_m": int(math.Round(dist)), "wait_until": due}
		if note != "" {
			data["note"] = note
		}
		var w writes
		if err := w.event(r.ID, "customer_not_home", actor, data, now); err != nil {
			return err
		}
		w.task(TaskNoShow, QueueDefault, TaskPayload{RequestID: r.ID}, due, now)
		if err := w.flush(tx, now); err != nil {
			return err
		}
		return s.reload(tx, r)
	})
}

// distanceFromSite is how far the technician's latest position is from the
// request's site, refused when it is unknown, old or outside the radius.
func (s *Service) distanceFromSite(tx *gorm.DB, techID string, r Request, now time.Time) (float64, error) {
	var t technicians.Technician
	if err := tx.Select("id", "lat", "lng", "position_at").Where("id = ?", techID).First(&t).Error; err != nil {
		return 0, fmt.Errorf("load position of %s: %w", techID, err)
	}
	pos, ok := t.Position()
	if !ok || t.PositionAt == nil || now.Sub(*t.PositionAt) > doorPositionFresh {
		return 0, errs.ConflictReason("position_unknown", "Onsite has no position of yours from the last %d minutes; send your location and try again",
			int(doorPositionFresh/time.Minute))
	}
	dist := geo.DistanceM(pos, r.Place())
	if dist > s.cfg.ArrivalRadiusM {
		return 0, errs.ConflictReason("not_at_site", "your last position is %d m from the site; report nobody at the door from within %d m",
			int(math.Round(dist)), int(s.cfg.ArrivalRadiusM))
	}
	return dist, nil
}

// CustomerHome ends the wait at the door: the customer says they are there
// (or coming to the door), or the technician says the door opened. The job
// goes on as any job on site. A customer, ops, or the job's technician may
// say so.
func (s *Service) CustomerHome(ctx context.Context, c Caller, requestID string) (Request, error) {
	return s.change(ctx, requestID, "end the wait at the door of", func(tx *gorm.DB, r *Request, now time.Time) error {
		if !mayRead(c, *r) || c.Role == "machine" {
			return errNotFound("request", requestID)
		}
		if r.State != OnSite || r.NoShowDueAt == nil {
			return errs.ConflictReason("not_waiting", "nobody is waiting at the door for request %s", r.ID)
		}
		res := tx.Model(&Request{}).Where("id = ? AND no_show_due_at IS NOT NULL", r.ID).
			Updates(map[string]any{"no_show_due_at": nil, "updated_at": now})
		if res.Error != nil {
			return fmt.Errorf("end the wait at the door: %w", res.Error)
		}
		if res.RowsAffected == 0 {
			return errs.ConflictReason("changed_concurrently", "request %s changed at the same time; try again", r.ID)
		}
		data := map[string]any{"by": c.Role, "technician_id": *r.TechnicianID, "wait_until": *r.NoShowDueAt}
		if err := appendEvent(tx, r.ID, "customer_home", c.actor(), data, now); err != nil {
			return err
		}
		return s.reload(tx, r)
	})
}

// RescheduleInput is the time window a customer not at the door books
// instead.
type RescheduleInput struct {
	Window *TimeWindow `json:"window"`
}

// Reschedule lets a customer who is not at the door (while the technician
// waits there) book another time window: the technician is released, the
// request is scheduled for the window (searching at once when it is near).
func (s *Service) Reschedule(ctx context.Context, c Caller, requestID string, in RescheduleInput) (Request, error) {
	if in.Window == nil {
		return Request{}, errs.InvalidField("window", "window is required")
	}
	if err := validWindow(in.Window, s.now()); err != nil {
		return Request{}, err
	}
	return s.change(ctx, requestID, "reschedule", func(tx *gorm.DB, r *Request, now time.Time) error {
		if !mayRead(c, *r) || (c.Role != "customer" && c.Role != "ops") {
			return errNotFound("request", requestID)
		}
		if r.State != OnSite || r.NoShowDueAt == nil {
			return errs.ConflictReason("not_waiting", "only a request whose technician waits at the door can be rescheduled")
		}
		techID := *r.TechnicianID
		start, end := db.UTC(in.Window.Start), db.UTC(in.Window.End)
		data := map[string]any{"technician_id": techID, "window_start": start, "window_end": end}
		if err := appendEvent(tx, r.ID, "rescheduled", c.actor(), data, now); err != nil {
			return err
		}
		set := map[string]any{"mode": Window, "window_start": start, "window_end": end, "sla_deadline": end, "give_up_at": end,
			"technician_id": nil, "eta_at": nil, "no_show_due_at": nil, "at_risk": false}
		if err := transition(tx, r, Reschedule, c.actor(), set, map[string]any{"technician_id": techID}, now); err != nil {
			return err
		}
		if err := endAssignment(tx, r.ID, techID, "rescheduled", now); err != nil {
			return err
		}
		if !start.Add(-s.cfg.WindowLead).After(now) {
			if err := transition(tx, r, StartSearch, c.actor(), nil, nil, now); err != nil {
				return err
			}
		}
		return s.afterStateChange(tx, r, now)
	})
}

// CloseNoShow closes a request as a no-show once the wait at its door is
// over and nobody said they were there: state and outcome no_show, the
// technician free again. Idempotent; early or ended waits do nothing.
func (s *Service) CloseNoShow(ctx context.Context, requestID string) error {
	now := s.now()
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		r, err := lockRequest(tx, requestID)
		if err != nil {
			return err
		}
		if r.State != OnSite || r.NoShowDueAt == nil || r.NoShowDueAt.After(now.Add(dueSlack)) {
			return nil
		}
		techID := *r.TechnicianID
		data := map[string]any{"technician_id": techID, "outcome": OutcomeNoShow, "waited_until": *r.NoShowDueAt}
		set := map[string]any{"outcome": OutcomeNoShow, "no_show_due_at": nil}
		if err := transition(tx, &r, CloseNoShow, System, set, data, now); err != nil {
			return err
		}
		return endAssignment(tx, r.ID, techID, "no_show", now)
	})
	return wrap("close no-show "+requestID, err)
}

// HandBackReasons are the reason codes of a hand-back ("other" needs a note).
var HandBackReasons = []string{"emergency", "vehicle_problem", "running_late", "skill_mismatch", "missing_equipment", "unsafe_site", "other"}

// HandBackInput is a technician giving a job back: a reason code and an
// optional note (required for "other").
type HandBackInput struct {
	Reason string `json:"reason"`
	Note   string `json:"note"`
}

func (in HandBackInput) validate() (HandBackInput, error) {
	in.Reason, in.Note = strings.TrimSpace(in.Reason), strings.TrimSpace(in.Note)
	if !slices.Contains(HandBackReasons, in.Reason) {
		return in, errs.InvalidField("reason", "reason must be one of %s", strings.Join(HandBackReasons, ", "))
	}
	if len(in.Note) > 500 {
		return in, errs.InvalidField("note", "note is longer than 500 characters")
	}
	if in.Reason == "other" && in.Note == "" {
		return in, errs.InvalidField("note", "a hand-back for another reason needs a note")
	}
	return in, nil
}

// HandBack is a technician who cannot finish giving the job back, assigned,
// on the way or on site: an audited handed_back event with the reason, the
// assignment ended (so the job is not offered to them again), and the
// request searched again with at least a quarter of the SLA left.
func (s *Service) HandBack(ctx context.Context, techID, requestID string, in HandBackInput) (Request, error) {
	in, err := in.validate()
	if err != nil {
		return Request{}, err
	}
	actor := Actor{Role: "technician", ID: techID}
	return s.change(ctx, requestID, "hand back", func(tx *gorm.DB, r *Request, now time.Time) error {
		if !ownLiveJob(*r, techID) {
			return errNotFound("job", requestID)
		}
		data := map[string]any{"technician_id": techID, "reason": in.Reason, "from": r.State}
		if in.Note != "" {
			data["note"] = in.Note
		}
		if err := appendEvent(tx, r.ID, "handed_back", actor, data, now); err != nil {
			return err
		}
		set := map[string]any{"technician_id": nil, "eta_at": nil, "no_show_due_at": nil}
		s.fairChance(r, set, now)
		if err := transition(tx, r, HandBack, actor, set, map[string]any{"technician_id": techID, "hand_back": in.Reason}, now); err != nil {
			return err
		}
		if err := endAssignment(tx, r.ID, techID, "dropped", now); err != nil {
			return err
		}
		return s.afterStateChange(tx, r, now)
	})
}

// ExpireConfirmation cancels a device's request its owner did not confirm
// within the confirmation time: a confirmation_expired event (what the
// owner is told) and the cancelled state change (what webhooks hear).
// Idempotent; a request confirmed or cancelled meanwhile is left alone.
func (s *Service) ExpireConfirmation(ctx context.Context, requestID string) error {
	now := s.now()
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		r, err := lockRequest(tx, requestID)
		if err != nil {
			return err
		}
		by := r.CreatedAt.Add(s.cfg.ConfirmTTL)
		if r.State != PendingConfirmation || by.After(now.Add(dueSlack)) {
			return nil
		}
		data := map[string]any{"confirm_by": by}
		if r.DeviceID != nil {
			data["device_id"] = *r.DeviceID
		}
		if err := appendEvent(tx, r.ID, "confirmation_expired", System, data, now); err != nil {
			return err
		}
		return move(tx, &r, Expire, System, map[string]any{"cancel_reason": "confirmation_expired"},
			map[string]any{"reason": "confirmation_expired"}, false, now)
	})
	return wrap("expire confirmation of "+requestID, err)
}

// ownLiveJob reports whether r is a live job of the technician.
func ownLiveJob(r Request, techID string) bool {
	return r.TechnicianID != nil && *r.TechnicianID == techID && r.State.Live()
}

// reload reads r again inside tx and tells the live index about it.
func (s *Service) reload(tx *gorm.DB, r *Request) error {
	fresh, err := load(tx, r.ID)
	if err != nil {
		return err
	}
	*r = fresh
	return notifyRequest(tx, fresh)
}
