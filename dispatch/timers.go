package dispatch

import (
	"context"
	"time"

	"gorm.io/gorm"

	"github.com/onsite/onsite/dispatch/lifecycle"
	"github.com/onsite/onsite/dispatch/match"
)

// StartSearch moves a scheduled request to searching when its window nears.
// Idempotent.
func (s *Service) StartSearch(ctx context.Context, requestID string) error {
	now := s.now()
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		r, err := lockRequest(tx, requestID)
		if err != nil {
			return err
		}
		if r.State != Scheduled {
			return nil
		}
		if r.WindowStart != nil && r.WindowStart.Add(-s.cfg.WindowLead).After(now.Add(time.Second)) {
			return nil // early (the task ran before its time); a later one will come
		}
		if err := transition(tx, &r, StartSearch, System, nil, nil, now); err != nil {
			return err
		}
		return s.afterStateChange(tx, &r, now)
	})
	return wrap("start search for "+requestID, err)
}

// CheckDeadline turns a request still searching at its give-up time into
// unfulfilled, withdrawing its offers, with an event for ops. Idempotent.
func (s *Service) CheckDeadline(ctx context.Context, requestID string) error {
	now := s.now()
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		r, err := lockRequest(tx, requestID)
		if err != nil {
			return err
		}
		if r.State != Searching || r.GiveUpAt == nil || r.GiveUpAt.After(now) {
			return nil
		}
		data := map[string]any{"give_up_at": *r.GiveUpAt}
		if err := transition(tx, &r, GiveUp, System, nil, data, now); err != nil {
			return err
		}
		return s.withdrawPending(tx, r.ID, "request unfulfilled", now)
	})
	return wrap("check deadline of "+requestID, err)
}

// matchSoon writes a matching round for a searching request to the outbox.
// With the batch strategy the next batch round is that round (it flags
// at-risk requests too), so no task is needed.
func (s *Service) matchSoon(tx *gorm.DB, requestID string, now time.Time) error {
	var w writes
	s.matchSoonIn(&w, requestID, now)
	return w.flush(tx, now)
}

// matchSoonIn is matchSoon gathered into w.
func (s *Service) matchSoonIn(w *writes, requestID string, now time.Time) {
	if s.cfg.OfferStrategy != match.Batch {
		w.task(TaskMatch, QueueCritical, TaskPayload{RequestID: requestID}, now, now)
	}
}

// afterStateChange writes the tasks a request's new state implies.
func (s *Service) afterStateChange(tx *gorm.DB, r *Request, now time.Time) error {
	var w writes
	s.timersOf(&w, r, now)
	return w.flush(tx, now)
}

// timersOf gathers into w the tasks a request's new state implies.
func (s *Service) timersOf(w *writes, r *Request, now time.Time) {
	switch r.State {
	case Searching:
		s.matchSoonIn(w, r.ID, now)
		if r.GiveUpAt != nil {
			w.task(TaskDeadline, QueueDefault, TaskPayload{RequestID: r.ID}, *r.GiveUpAt, now)
		}
	case Scheduled:
		w.task(TaskStartSearch, QueueDefault, TaskPayload{RequestID: r.ID}, r.WindowStart.Add(-s.cfg.WindowLead), now)
	case PendingConfirmation:
		w.task(TaskConfirmExpire, QueueDefault, TaskPayload{RequestID: r.ID}, r.CreatedAt.Add(s.cfg.ConfirmTTL), now)
	}
}

// Actions.
const (
	StartSearch = lifecycle.StartSearch
	Assign      = lifecycle.Assign
	Depart      = lifecycle.Depart
	Arrive      = lifecycle.Arrive
	Complete    = lifecycle.Complete
	Drop        = lifecycle.Drop
	Unassign    = lifecycle.Unassign
	Cancel      = lifecycle.Cancel
	GiveUp      = lifecycle.GiveUp
	Reopen      = lifecycle.Reopen
	ConfirmASAP = lifecycle.ConfirmASAP
	ConfirmSlot = lifecycle.ConfirmSlot
	HandBack    = lifecycle.HandBack
	CloseNoShow = lifecycle.CloseNoShow
	Expire      = lifecycle.Expire
	Reschedule  = lifecycle.Reschedule
)
