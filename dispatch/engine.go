package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/onsite/onsite/dispatch/match"
	"github.com/onsite/onsite/geo"
	"github.com/onsite/onsite/internal/db"
	"github.com/onsite/onsite/internal/errs"
	"github.com/onsite/onsite/technicians"
)

// retryEvery is how soon a request with no one to offer it to is searched
// again.
const retryEvery = 30 * time.Second

// fastestKmh bounds how far anyone could travel before a deadline.
const fastestKmh = 60

func errNotFound(what, id string) error { return errs.NotFoundf("%s %s not found", what, id) }

// MatchResult says what one matching round did.
type MatchResult struct {
	Offered    []Offer
	Candidates int
	AtRisk     bool
	Skipped    string // why nothing was done, when nothing was
}

// Match runs one round of dispatch for a searching request: search the
// candidates, rank them, flag the request at risk when the best arrival misses
// the deadline, and send the next offers by the strategy. It is idempotent:
// a request that is not searching, or still has offers pending, is left alone.
func (s *Service) Match(ctx context.Context, requestID string) (MatchResult, error) {
	now := s.now()
	var res MatchResult
	pool, err := s.index(ctx)
	if err != nil {
		return MatchResult{}, wrap("match request "+requestID, err)
	}
	err = s.db.Tx(ctx, func(tx *gorm.DB) error {
		r, err := lockRequest(tx, requestID)
		if err != nil {
			return err
		}
		if r.State != Searching {
			res.Skipped = "request is " + string(r.State)
			return nil
		}
		if n, err := pendingOffers(tx, r.ID); err != nil {
			return err
		} else if n > 0 {
			res.Skipped = "offers pending"
			return nil
		}
		want := max(s.cfg.WaveSize*3, 10)
		excluded, err := excludedFor(tx, r.ID, now)
		if err != nil {
			return err
		}
		// Nobody making the deadline from nearby widens the search to the
		// whole radius, to take whoever arrives soonest.
		ranked := s.rankFor(pool, r, excluded, want, now)
		atRisk := match.AtRisk(jobOf(r), ranked)
		res.Candidates, res.AtRisk = len(ranked), atRisk
		if atRisk != r.AtRisk {
			if err := setAtRisk(tx, r, atRisk, ranked, now); err != nil {
				return err
			}
		}
		if s.cfg.OfferStrategy == match.Batch {
			res.Skipped = "waiting for the next batch"
			return nil
		}
		if len(ranked) == 0 {
			res.Skipped = "no eligible technician"
			if r.GiveUpAt == nil || now.Add(retryEvery).Before(*r.GiveUpAt) {
				return enqueue(tx, TaskMatch, QueueCritical, TaskPayload{RequestID: r.ID}, now.Add(retryEvery), now)
			}
			return nil
		}
		timeLeft := time.Duration(math.MaxInt64)
		if r.SLADeadline != nil {
			timeLeft = r.SLADeadline.Sub(now)
		}
		plan := match.PlanOffers(s.cfg.OfferStrategy, s.cfg.WaveSize, s.cfg.OfferTimeout, timeLeft, len(ranked))
		round, err := nextRound(tx, r.ID)
		if err != nil {
			return err
		}
		for i, sc := range ranked[:plan.Size] {
			o, err := s.offer(tx, r, sc, i+1, round, plan, now)
			if err != nil {
				return err
			}
			res.Offered = append(res.Offered, o)
		}
		return nil
	})
	if err != nil {
		return MatchResult{}, wrap("match request "+requestID, err)
	}
	return res, nil
}

func setAtRisk(tx *gorm.DB, r Request, atRisk bool, ranked []match.Scored, now time.Time) error {
	if err := tx.Model(&Request{}).Where("id = ?", r.ID).Updates(map[string]any{"at_risk": atRisk, "updated_at": now}).Error; err != nil {
		return fmt.Errorf("flag request %s at risk: %w", r.ID, err)
	}
	return appendEvent(tx, r.ID, atRiskEvent(atRisk), System, atRiskData(r, ranked), now)
}

func atRiskEvent(atRisk bool) string {
	if atRisk {
		return "at_risk"
	}
	return "back_on_track"
}

// atRiskData is what an at-risk event records: the best arrival against the
// deadline.
func atRiskData(r Request, ranked []match.Scored) map[string]any {
	data := map[string]any{"candidates": len(ranked)}
	if len(ranked) > 0 {
		data["best_arrival"] = ranked[0].Arrival
		data["best_eta_s"] = int(ranked[0].ETA.Seconds())
	}
	if r.SLADeadline != nil {
		data["deadline"] = *r.SLADeadline
	}
	return data
}

func nextRound(tx *gorm.DB, requestID string) (int, error) {
	var round *int
	if err := tx.Model(&Offer{}).Where("request_id = ?", requestID).Select("MAX(round)").Scan(&round).Error; err != nil {
		return 0, fmt.Errorf("offer round of %s: %w", requestID, err)
	}
	if round == nil {
		return 1, nil
	}
	return *round + 1, nil
}

// OfferReason is why an offer went to a technician, kept on the offer and in
// the request's events for ops.
type OfferReason struct {
	Strategy     string  `json:"strategy"`
	Round        int     `json:"round"`
	Rank         int     `json:"rank"`
	EtaSeconds   int     `json:"eta_s"`
	DistanceM    int     `json:"distance_m"`
	OnTimeChance float64 `json:"on_time_chance"`
	AcceptRate   float64 `json:"accept_rate"`
	Rating       float64 `json:"rating"`
	IdleSeconds  int     `json:"idle_s"`
	TimeoutS     int     `json:"timeout_s"`
}

func (s *Service) offer(tx *gorm.DB, r Request, sc match.Scored, rank, round int, plan match.OfferPlan, now time.Time) (Offer, error) {
	var w writes
	o, err := s.newOffer(&w, r, sc, rank, round, plan, now)
	if err != nil {
		return Offer{}, err
	}
	if err := tx.Create(&o).Error; err != nil {
		return Offer{}, fmt.Errorf("create offer: %w", err)
	}
	if err := tx.Model(&technicians.Technician{}).Where("id = ?", sc.TechnicianID).
		Update("offers_sent", gorm.Expr("offers_sent + 1")).Error; err != nil {
		return Offer{}, fmt.Errorf("count offer: %w", err)
	}
	if err := technicians.Changed(tx, sc.TechnicianID); err != nil {
		return Offer{}, err
	}
	return o, w.flush(tx, now)
}

// newOffer builds an offer with its event and expiry task (gathered in w);
// the caller inserts the offer and counts it on the technician.
func (s *Service) newOffer(w *writes, r Request, sc match.Scored, rank, round int, plan match.OfferPlan, now time.Time) (Offer, error) {
	strategy := s.cfg.OfferStrategy
	if plan.Size > 1 && strategy != match.Batch {
		strategy = match.Wave
	}
	reason := OfferReason{
		Strategy: strategy, Round: round, Rank: rank, EtaSeconds: int(sc.ETA.Seconds()), DistanceM: int(sc.DistanceM),
		OnTimeChance: round3(sc.OnTimeChance), AcceptRate: round3(sc.AcceptRate), Rating: sc.Rating,
		IdleSeconds: int(sc.IdleFor.Seconds()), TimeoutS: int(plan.Timeout.Seconds()),
	}
	body, err := json.Marshal(reason)
	if err != nil {
		return Offer{}, fmt.Errorf("encode offer reason: %w", err)
	}
	o := Offer{
		ID: db.NewID(), RequestID: r.ID, TechnicianID: sc.TechnicianID, Rank: rank, Round: round,
		EtaSeconds: reason.EtaSeconds, DistanceM: reason.DistanceM, Score: round3(sc.OnTimeChance), Reason: string(body),
		State: OfferPending, CreatedAt: now, ExpiresAt: db.UTC(now.Add(plan.Timeout)), // the precision both engines keep
	}
	var data map[string]any
	_ = json.Unmarshal(body, &data)
	data["offer_id"], data["technician_id"], data["expires_at"] = o.ID, o.TechnicianID, o.ExpiresAt
	if err := w.event(r.ID, "offered", System, data, now); err != nil {
		return Offer{}, err
	}
	if err := w.task(TaskOfferExpire, QueueCritical, TaskPayload{OfferID: o.ID, RequestID: r.ID}, o.ExpiresAt, now); err != nil {
		return Offer{}, err
	}
	return o, nil
}

func round3(f float64) float64 { return math.Round(f*1000) / 1000 }

// Accept lets a technician take an offer. Only a pending, unexpired offer of
// a request that is still searching can be accepted (invariant 3); of two
// technicians accepting at once exactly one wins (invariant 1), the other
// gets a conflict with reason offer_taken.
func (s *Service) Accept(ctx context.Context, techID, offerID string) (Request, error) {
	now := s.now()
	var out Request
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		o, err := loadOffer(tx, offerID)
		if err != nil {
			return err
		}
		if o.TechnicianID != techID {
			return errNotFound("offer", offerID)
		}
		r, err := lockRequest(tx, o.RequestID)
		if err != nil {
			return err
		}
		res := tx.Model(&Offer{}).Where("id = ? AND state = ? AND expires_at > ?", o.ID, OfferPending, now).
			Updates(map[string]any{"state": OfferAccepted, "answered_at": now})
		if res.Error != nil {
			return fmt.Errorf("accept offer: %w", res.Error)
		}
		if res.RowsAffected == 0 {
			return offerGone(o, now)
		}
		if r.State != Searching {
			return errs.ConflictReason("offer_taken", "this job is no longer available (it is %s)", r.State)
		}
		if err := s.bind(tx, &r, techID, &o.ID, Actor{Role: "technician", ID: techID}, map[string]any{"offer_id": o.ID}, false, now); err != nil {
			return err
		}
		if err := tx.Model(&technicians.Technician{}).Where("id = ?", techID).
			Update("offers_accepted", gorm.Expr("offers_accepted + 1")).Error; err != nil {
			return fmt.Errorf("count acceptance: %w", err)
		}
		if err := technicians.Changed(tx, techID); err != nil {
			return err
		}
		out = r
		return nil
	})
	if err != nil {
		return Request{}, wrap("accept offer "+offerID, err)
	}
	return out, nil
}

// offerGone explains why an offer could not be answered.
func offerGone(o Offer, now time.Time) error {
	switch {
	case o.State == OfferWithdrawn:
		return errs.ConflictReason("offer_withdrawn", "this offer was withdrawn; the job went to someone else or was cancelled")
	case o.State == OfferExpired || (o.State == OfferPending && !o.ExpiresAt.After(now)):
		return errs.ConflictReason("offer_expired", "this offer expired at %s", o.ExpiresAt.Format(time.RFC3339))
	case o.State == OfferAccepted:
		return errs.ConflictReason("offer_already_accepted", "you already accepted this offer")
	case o.State == OfferDeclined:
		return errs.ConflictReason("offer_declined", "you declined this offer")
	}
	return errs.ConflictReason("offer_taken", "this offer is no longer open")
}

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

// Decline records a technician's no and offers the job onwards.
func (s *Service) Decline(ctx context.Context, techID, offerID string) (Offer, error) {
	return s.closeOffer(ctx, offerID, OfferDeclined, func(o Offer) error {
		if o.TechnicianID != techID {
			return errNotFound("offer", offerID)
		}
		return nil
	}, Actor{Role: "technician", ID: techID})
}

// NotDueError says an offer is still open: its expiry task came early
// (asynq schedules to the whole second).
type NotDueError struct {
	OfferID string
	Due     time.Time
}

func (e *NotDueError) Error() string {
	return fmt.Sprintf("offer %s is not due until %s", e.OfferID, e.Due.Format(time.RFC3339Nano))
}

// ExpireOffer closes an offer whose time is up and offers the job onwards. It
// is idempotent: an offer already answered or withdrawn is left alone. An
// offer not yet due gives a *NotDueError, so the caller can try again then.
func (s *Service) ExpireOffer(ctx context.Context, offerID string) error {
	o, err := s.closeOffer(ctx, offerID, OfferExpired, nil, System)
	if e, ok := errs.As(err); ok && e.Code == errs.Conflict {
		if e.Reason == "offer_not_due" {
			return &NotDueError{OfferID: offerID, Due: o.ExpiresAt}
		}
		return nil
	}
	return err
}

func (s *Service) closeOffer(ctx context.Context, offerID string, to OfferState, check func(Offer) error, actor Actor) (Offer, error) {
	now := s.now()
	var out Offer
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		o, err := loadOffer(tx, offerID)
		if err != nil {
			return err
		}
		if check != nil {
			if err := check(o); err != nil {
				return err
			}
		}
		if _, err := lockRequest(tx, o.RequestID); err != nil {
			return err
		}
		q := tx.Model(&Offer{}).Where("id = ? AND state = ?", o.ID, OfferPending)
		if to == OfferExpired {
			q = q.Where("expires_at <= ?", now)
		} else {
			q = q.Where("expires_at > ?", now)
		}
		res := q.Updates(map[string]any{"state": to, "answered_at": now})
		if res.Error != nil {
			return fmt.Errorf("close offer: %w", res.Error)
		}
		if res.RowsAffected == 0 {
			if to == OfferExpired && o.State == OfferPending {
				out = o
				return errs.ConflictReason("offer_not_due", "offer %s is not due yet", o.ID)
			}
			return offerGone(o, now)
		}
		if err := technicians.Changed(tx, o.TechnicianID); err != nil {
			return err
		}
		typ := "offer_" + string(to)
		if err := appendEvent(tx, o.RequestID, typ, actor, map[string]any{"offer_id": o.ID, "technician_id": o.TechnicianID}, now); err != nil {
			return err
		}
		// The next round goes out once the last pending offer is answered.
		if n, err := pendingOffers(tx, o.RequestID); err != nil {
			return err
		} else if n == 0 {
			if err := s.matchSoon(tx, o.RequestID, now); err != nil {
				return err
			}
		}
		o.State, o.AnsweredAt = to, &now
		out = o
		return nil
	})
	if err != nil {
		return out, wrap("close offer "+offerID, err)
	}
	return out, nil
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
		case Complete:
			set["outcome"] = step.Outcome
			data["outcome"] = step.Outcome
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
			return endAssignment(tx, r.ID, techID, "completed", now)
		case Drop:
			if err := endAssignment(tx, r.ID, techID, "dropped", now); err != nil {
				return err
			}
			return s.afterStateChange(tx, r, now)
		}
		return nil
	})
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

// AssignInput is ops' hand assignment.
type AssignInput struct {
	TechnicianID string `json:"technician_id"`
}

// AssignByHand lets ops give a request to a technician (or move it to
// another). The same invariants hold: one live assignment, capacity, an
// event in the same transaction.
func (s *Service) AssignByHand(ctx context.Context, c Caller, requestID string, in AssignInput) (Request, error) {
	if strings.TrimSpace(in.TechnicianID) == "" {
		return Request{}, errs.InvalidField("technician_id", "technician_id is required")
	}
	return s.change(ctx, requestID, "assign", func(tx *gorm.DB, r *Request, now time.Time) error {
		if err := mustExist(tx, &technicians.Technician{}, "id", in.TechnicianID); err != nil {
			return errs.InvalidField("technician_id", "unknown technician %q", in.TechnicianID)
		}
		if r.TechnicianID != nil && *r.TechnicianID == in.TechnicianID {
			return errs.ConflictReason("already_assigned", "request %s is already assigned to %s", r.ID, in.TechnicianID)
		}
		if r.State == Assigned || r.State == EnRoute {
			if err := unassign(tx, r, c.actor(), "reassigned by ops", nil, now); err != nil {
				return err
			}
		}
		if _, err := Next(r.State, Assign); err != nil {
			return err
		}
		if r.State == Unfulfilled {
			if err := transition(tx, r, Reopen, c.actor(), nil, map[string]any{"why": "assigned by ops"}, now); err != nil {
				return err
			}
		}
		return s.bind(tx, r, in.TechnicianID, nil, c.actor(), map[string]any{"by_hand": true}, false, now)
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

// OfferView is an offer as the technician app shows it.
type OfferView struct {
	Offer
	Skill   string    `json:"skill"`
	Address string    `json:"address"`
	Place   geo.Point `json:"place"`
	Notes   string    `json:"notes"`
}

// MyOffers returns a technician's pending, unexpired offers.
func (s *Service) MyOffers(ctx context.Context, techID string) ([]OfferView, error) {
	now := s.now()
	var offers []Offer
	if err := s.db.WithContext(ctx).Where("technician_id = ? AND state = ? AND expires_at > ?", techID, OfferPending, now).
		Order("created_at").Find(&offers).Error; err != nil {
		return nil, fmt.Errorf("offers of %s: %w", techID, err)
	}
	out := make([]OfferView, 0, len(offers))
	for _, o := range offers {
		r, err := load(s.db.WithContext(ctx), o.RequestID)
		if err != nil {
			return nil, err
		}
		out = append(out, OfferView{Offer: o, Skill: r.SkillCode, Address: r.Address, Place: r.Place(), Notes: r.Notes})
	}
	return out, nil
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

// OffersOf returns every offer of a request with the reason it went where it
// went, for ops.
func (s *Service) OffersOf(ctx context.Context, requestID string) ([]OfferWithReason, error) {
	if _, err := load(s.db.WithContext(ctx), requestID); err != nil {
		return nil, err
	}
	var offers []Offer
	if err := s.db.WithContext(ctx).Where("request_id = ?", requestID).Order("round, rank").Find(&offers).Error; err != nil {
		return nil, fmt.Errorf("offers of %s: %w", requestID, err)
	}
	out := make([]OfferWithReason, len(offers))
	for i, o := range offers {
		out[i] = OfferWithReason{Offer: o}
		_ = json.Unmarshal([]byte(o.Reason), &out[i].Why)
	}
	return out, nil
}

// OfferWithReason is an offer with its decoded reason.
type OfferWithReason struct {
	Offer
	Why OfferReason `json:"why"`
}

// RankedCandidate is an eligible technician as ops sees it for assigning by
// hand.
type RankedCandidate struct {
	TechnicianID string    `json:"technician_id"`
	Rank         int       `json:"rank"`
	EtaSeconds   int       `json:"eta_s"`
	DistanceM    int       `json:"distance_m"`
	Arrival      time.Time `json:"arrival"`
	OnTimeChance float64   `json:"on_time_chance"`
	Rating       float64   `json:"rating"`
}

// Candidates ranks the technicians eligible for a request right now.
func (s *Service) Candidates(ctx context.Context, requestID string, limit int) ([]RankedCandidate, error) {
	now := s.now()
	if limit <= 0 || limit > 100 {
		limit = 20
	}
	r, excluded, err := loadWithExclusions(s.db.WithContext(ctx), requestID, now)
	if err != nil {
		return nil, err
	}
	pool, err := s.index(ctx)
	if err != nil {
		return nil, err
	}
	ranked := s.searchCandidates(pool, r, excluded, limit, s.cfg.MaxSearchKm, now)
	out := []RankedCandidate{}
	for i, sc := range ranked {
		if i == limit {
			break
		}
		out = append(out, RankedCandidate{TechnicianID: sc.TechnicianID, Rank: i + 1, EtaSeconds: int(sc.ETA.Seconds()),
			DistanceM: int(sc.DistanceM), Arrival: sc.Arrival, OnTimeChance: round3(sc.OnTimeChance), Rating: sc.Rating})
	}
	return out, nil
}
