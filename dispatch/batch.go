package dispatch

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// batchCandidates is how many ranked technicians each request brings to the
// assignment: short lists keep it small and fast.
const batchCandidates = 5

// BatchResult says what one batch round did.
type BatchResult struct {
	Waiting int     // searching requests without a pending offer
	Offered []Offer // one per assigned pair
}

// BatchRound is the batch strategy's tick: every searching request without a
// pending offer is matched against the technicians free for it by least-cost
// assignment (predicted arrival, a steep penalty for missing the deadline,
// the urgency of the request, weighed by the chance of acceptance; no one who
// would arrive, after the typical answer time and the drive, past the give-up
// time, nor early at a window's door), then each pair gets an offer. Each
// offer is written in its own transaction with the request locked, so a round
// that overlaps another process's changes stays correct.
func (s *Service) BatchRound(ctx context.Context, limit int) (BatchResult, error) {
	now := s.now()
	if limit <= 0 {
		limit = 500
	}
	var waiting []Request
	err := s.db.WithContext(ctx).Model(&Request{}).
		Where("state = ? AND NOT EXISTS (SELECT 1 FROM offers o WHERE o.request_id = requests.id AND o.state = ?)", Searching, OfferPending).
		Order("created_at").Limit(limit).Find(&waiting).Error
	if err != nil {
		return BatchResult{}, fmt.Errorf("batch: load waiting requests: %w", err)
	}
	res := BatchResult{Waiting: len(waiting)}
	var jobs []Job
	var lists [][]Scored
	var reqs []Request
	for _, r := range waiting {
		job := jobOf(r)
		tx := s.db.WithContext(ctx)
		ranked, err := s.searchCandidates(tx, r, batchCandidates, ReachKm(job, now, fastestKmh, 1.25, s.cfg.MaxSearchKm), now)
		if err != nil {
			return res, err
		}
		if AtRisk(job, ranked) {
			if ranked, err = s.searchCandidates(tx, r, batchCandidates, s.cfg.MaxSearchKm, now); err != nil {
				return res, err
			}
		}
		if AtRisk(job, ranked) != r.AtRisk {
			if err := s.db.Tx(ctx, func(tx *gorm.DB) error {
				return setAtRisk(tx, r, !r.AtRisk, ranked, now)
			}); err != nil {
				return res, err
			}
		}
		if len(ranked) > batchCandidates {
			ranked = ranked[:batchCandidates]
		}
		if len(ranked) == 0 {
			continue
		}
		jobs, lists, reqs = append(jobs, job), append(lists, ranked), append(reqs, r)
	}
	if len(jobs) == 0 {
		return res, nil // nothing to assign: no need to learn the answer time
	}
	answer, err := s.answerTime(ctx)
	if err != nil {
		return res, err
	}
	policy := BatchPolicy{Urgency: s.cfg.BatchUrgency, UrgencyCap: s.cfg.SLA, AnswerTime: answer, MaxWait: DefaultMaxWait}
	for _, p := range AssignBatch(jobs, lists, now, policy) {
		o, err := s.offerFromBatch(ctx, reqs[p.JobIndex].ID, p.Scored, now)
		if err != nil {
			return res, err
		}
		if o != nil {
			res.Offered = append(res.Offered, *o)
		}
	}
	return res, nil
}

// answerSample is how many recent answers the typical answer time is
// learned from.
const answerSample = 200

// answerTime is the median delay of the latest answered offers (accepted or
// declined), 0 before any.
func (s *Service) answerTime(ctx context.Context) (time.Duration, error) {
	var rows []Offer
	err := s.db.WithContext(ctx).Select("created_at", "answered_at").
		Where("state IN ? AND answered_at IS NOT NULL", []OfferState{OfferAccepted, OfferDeclined}).
		Order("answered_at DESC").Limit(answerSample).Find(&rows).Error
	if err != nil {
		return 0, fmt.Errorf("batch: recent answers: %w", err)
	}
	delays := make([]time.Duration, 0, len(rows))
	for _, o := range rows {
		delays = append(delays, o.AnsweredAt.Sub(o.CreatedAt))
	}
	return AnswerTime(delays), nil
}

// offerFromBatch sends one batch offer if the request still waits and the
// technician is still free to decide; otherwise it leaves both for the next
// round.
func (s *Service) offerFromBatch(ctx context.Context, requestID string, sc Scored, now time.Time) (*Offer, error) {
	var out *Offer
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		r, err := lockRequest(tx, requestID)
		if err != nil {
			return err
		}
		if r.State != Searching {
			return nil
		}
		if n, err := pendingOffers(tx, r.ID); err != nil || n > 0 {
			return err
		}
		var deciding int64
		if err := tx.Model(&Offer{}).Where("technician_id = ? AND state = ? AND expires_at > ?", sc.TechnicianID, OfferPending, now).
			Count(&deciding).Error; err != nil {
			return fmt.Errorf("batch: check technician: %w", err)
		}
		if deciding > 0 {
			return nil
		}
		var giveUp time.Time
		if r.GiveUpAt != nil {
			giveUp = *r.GiveUpAt
		}
		plan := OfferPlan{Size: 1, Timeout: BatchOfferTimeout(s.cfg.OfferTimeout, sc.ETA, giveUp, now)}
		round, err := nextRound(tx, r.ID)
		if err != nil {
			return err
		}
		o, err := s.offer(tx, r, sc, 1, round, plan, now)
		if err != nil {
			return err
		}
		out = &o
		return nil
	})
	if err != nil {
		return nil, wrap("batch offer for "+requestID, err)
	}
	return out, nil
}
