package dispatch

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"gorm.io/gorm"

	"github.com/onsite/onsite/dispatch/match"
	"github.com/onsite/onsite/geo"
	"github.com/onsite/onsite/internal/db"
	"github.com/onsite/onsite/internal/errs"
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
	// Preferred marks the technician of the visit a follow-up came from.
	Preferred bool `json:"preferred,omitempty"`
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

// offeredData is an "offered" event's data: the reason and the offer.
type offeredData struct {
	OfferReason
	OfferID      string    `json:"offer_id"`
	TechnicianID string    `json:"technician_id"`
	ExpiresAt    time.Time `json:"expires_at"`
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
		Preferred: r.PreferredTechnicianID != nil && *r.PreferredTechnicianID == sc.TechnicianID,
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
	data, err := json.Marshal(offeredData{OfferReason: reason, OfferID: o.ID, TechnicianID: o.TechnicianID, ExpiresAt: o.ExpiresAt})
	if err != nil {
		return Offer{}, fmt.Errorf("encode offer event: %w", err)
	}
	w.eventBody(r.ID, "offered", System, string(data), now)
	w.task(TaskOfferExpire, QueueCritical, TaskPayload{OfferID: o.ID, RequestID: r.ID}, o.ExpiresAt, now)
	return o, nil
}

func round3(f float64) float64 { return math.Round(f*1000) / 1000 }

// Accept lets a technician take an offer. Only a pending, unexpired offer of
// a request that is still searching can be accepted (invariant 3), by a
// technician the hard rules still allow (conflict not_eligible); of two
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
		// The offer was made on what matching knew then; the technician
		// must still be allowed the job now (a certification may have
		// expired, a shift ended).
		if err := s.mustBeEligible(tx, r, techID, now); err != nil {
			return err
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

// pendingOffers counts the pending offers of a request.
func pendingOffers(tx *gorm.DB, requestID string) (int64, error) {
	var n int64
	err := tx.Model(&Offer{}).Where("request_id = ? AND state = ?", requestID, OfferPending).Count(&n).Error
	if err != nil {
		return 0, fmt.Errorf("count pending offers of %s: %w", requestID, err)
	}
	return n, nil
}

func loadOffer(tx *gorm.DB, id string) (Offer, error) {
	var o Offer
	err := tx.Where("id = ?", id).First(&o).Error
	if db.IsNotFound(err) {
		return Offer{}, errNotFound("offer", id)
	}
	if err != nil {
		return Offer{}, fmt.Errorf("load offer %s: %w", id, err)
	}
	return o, nil
}
