package dispatch

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"time"

	"gorm.io/gorm"

	"github.com/onsite/onsite/dispatch/match"
	"github.com/onsite/onsite/internal/db"
	"github.com/onsite/onsite/technicians"
)

// batchCandidates is how many ranked technicians each request brings to the
// assignment: short lists keep it small and fast.
const batchCandidates = 5

// batchColumns are what a round reads of a waiting request: the job, the
// at-risk flag it may flip and the give-up time its offers must end by.
var batchColumns = []string{"id", "skill_code", "lat", "lng", "sla_deadline", "give_up_at", "window_start", "at_risk", "at_risk_since", "escalation",
	"preferred_technician_id"}

// BatchResult says what one batch round did.
type BatchResult struct {
	Waiting    int     // searching requests without a pending offer
	Offered    []Offer // one per assigned pair
	Statements int     // SQL statements the round ran (for the benchmark and its test)
}

// Fence guards a periodic round: Check runs inside the round's write
// transaction and fails when this process no longer holds the round's
// lease, so a late round from a paused process writes nothing.
type Fence interface {
	Check(tx *gorm.DB) error
}

// BatchRound is the batch strategy's tick: every searching request without a
// pending offer (in region, or everywhere when region is "") is matched
// against the technicians free for it by least-cost assignment (predicted
// arrival, a steep penalty for missing the deadline, the urgency of the
// request, weighed by the chance of acceptance; no one who would arrive,
// after the typical answer time and the drive, past the give-up time, nor
// early at a window's door), then each pair gets an offer.
//
// Candidates come from the live index (the simulator's search, match.AssignBatch
// the same). The round runs a constant number of statements: the waiting
// requests, their exclusions, the typical answer time (cached), and one
// write transaction that checks the fence, locks the requests still waiting
// and the technicians still free (counting their offers in the same
// statement), and writes every offer, event and outbox row set-based.
func (s *Service) BatchRound(ctx context.Context, region string, limit int, fence Fence) (BatchResult, error) {
	now := s.now()
	if limit <= 0 {
		limit = 500
	}
	var res BatchResult
	q := s.db.WithContext(ctx).Model(&Request{}).
		Where("state = ? AND NOT EXISTS (SELECT 1 FROM offers o WHERE o.request_id = requests.id AND o.state = ?)", Searching, OfferPending)
	if region != "" {
		q = q.Where("region = ?", region)
	}
	var waiting []Request
	if err := q.Select(batchColumns).Order("created_at").Limit(limit).Find(&waiting).Error; err != nil {
		return res, fmt.Errorf("batch: load waiting requests: %w", err)
	}
	res.Waiting, res.Statements = len(waiting), 1
	if len(waiting) == 0 {
		return res, nil
	}
	ids := make([]string, len(waiting))
	for i, r := range waiting {
		ids[i] = r.ID
	}
	excluded, err := exclusionsOf(s.db.WithContext(ctx), ids, now)
	if err != nil {
		return res, fmt.Errorf("batch: %w", err)
	}
	res.Statements++
	pool, err := s.index(ctx)
	if err != nil {
		return res, err
	}
	var jobs []match.Job
	var lists [][]match.Scored
	var reqs []Request
	var risks []riskChange
	var levels []match.Step // by job: how far its request is escalated
	rankings := s.rankAll(pool, waiting, excluded, now)
	for i, r := range waiting {
		ranked := rankings[i]
		job := s.jobOf(r)
		risk := s.assessRisk(r, ranked, now)
		if risk.changed() {
			risks = append(risks, risk)
		}
		if len(ranked) > batchCandidates {
			ranked = ranked[:batchCandidates]
		}
		if len(ranked) == 0 {
			continue
		}
		jobs, lists, reqs, levels = append(jobs, job), append(lists, ranked), append(reqs, r), append(levels, risk.level())
	}
	var pairs []match.BatchPair
	if len(jobs) > 0 {
		answer, n, err := s.answerTime(ctx, now)
		if err != nil {
			return res, err
		}
		res.Statements += n
		policy := match.BatchPolicy{Urgency: s.cfg.BatchUrgency, UrgencyCap: s.cfg.SLA, AnswerTime: answer, MaxWait: match.DefaultMaxWait}
		pairs = match.BiggerWaves(match.AssignBatch(jobs, lists, now, policy), lists, levels)
	}
	if len(pairs) == 0 && len(risks) == 0 {
		return res, nil
	}
	var offered []Offer
	var n int
	err = s.db.Tx(ctx, func(tx *gorm.DB) error {
		offered, n = nil, 0
		var err error
		offered, n, err = s.writeBatch(tx, reqs, pairs, risks, fence, now)
		return err
	})
	res.Statements += n
	if err != nil {
		return res, wrap("batch: write offers", err)
	}
	res.Offered = offered
	return res, nil
}

// rankAll ranks every waiting request's candidates, spread over the cores:
// the index is an immutable snapshot, so searches run side by side.
func (s *Service) rankAll(pool *match.Pool, waiting []Request, excluded map[string]map[string]bool, now time.Time) [][]match.Scored {
	out := make([][]match.Scored, len(waiting))
	workers := min(runtime.GOMAXPROCS(0), (len(waiting)+63)/64)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(waiting); i += workers {
				out[i] = s.rankFor(pool, waiting[i], excluded[waiting[i].ID], batchCandidates, now)
			}
		}()
	}
	wg.Wait()
	return out
}

// writeBatch writes a round's decisions in tx and returns the offers made
// and the statements run. A pair whose request no longer waits or whose
// technician is no longer free (another process, a concurrent answer) is
// left for the next round.
func (s *Service) writeBatch(tx *gorm.DB, reqs []Request, pairs []match.BatchPair, risks []riskChange, fence Fence, now time.Time) ([]Offer, int, error) {
	n := 0
	if fence != nil {
		n++
		if err := fence.Check(tx); err != nil {
			return nil, n, err
		}
	}
	var w writes
	for _, c := range risks {
		if err := w.riskEvents(c, now); err != nil {
			return nil, n, err
		}
	}
	k, err := writeRisk(tx, risks, now)
	n += k
	if err != nil {
		return nil, n, err
	}
	var offers []Offer
	var free []string
	if len(pairs) > 0 {
		reqIDs := make([]string, 0, len(pairs))
		for _, p := range pairs {
			reqIDs = append(reqIDs, reqs[p.JobIndex].ID)
		}
		// Lock order as everywhere: requests, then technicians, each by id.
		lock := ""
		if s.db.Dialect == db.Postgres {
			lock = " FOR UPDATE OF r"
		}
		var still []struct {
			ID    string
			Round *int
		}
		n++
		if err := tx.Raw(`SELECT r.id, (SELECT MAX(o.round) FROM offers o WHERE o.request_id = r.id) AS round FROM requests r
			WHERE r.id IN ? AND r.state = ? AND NOT EXISTS (SELECT 1 FROM offers o WHERE o.request_id = r.id AND o.state = ?)
			ORDER BY r.id`+lock, reqIDs, Searching, OfferPending).Scan(&still).Error; err != nil {
			return nil, n, fmt.Errorf("lock waiting requests: %w", err)
		}
		rounds := make(map[string]int, len(still))
		for _, r := range still {
			rounds[r.ID] = 1
			if r.Round != nil {
				rounds[r.ID] = *r.Round + 1
			}
		}
		// The technicians still free for a pair whose request still waits
		// are locked and their offers counted in one statement; the rest
		// are left for the next round.
		var candidates []string
		for _, p := range pairs {
			if _, ok := rounds[reqs[p.JobIndex].ID]; ok {
				candidates = append(candidates, p.TechnicianID)
			}
		}
		lock = ""
		if s.db.Dialect == db.Postgres {
			lock = " ORDER BY t.id FOR UPDATE OF t"
		}
		if len(candidates) > 0 {
			n++
			if err := tx.Raw(`UPDATE technicians SET offers_sent = offers_sent + 1, updated_at = ? WHERE id IN (
				SELECT t.id FROM technicians t WHERE t.id IN ? AND t.duty_status = ? AND t.suspended = ? AND t.active_jobs < t.capacity
				AND NOT EXISTS (SELECT 1 FROM offers o WHERE o.technician_id = t.id AND o.state = ? AND o.expires_at > ?)`+lock+`)
				RETURNING id`, now, candidates, technicians.Available, false, OfferPending, now).Scan(&free).Error; err != nil {
				return nil, n, fmt.Errorf("lock free technicians: %w", err)
			}
		}
		isFree := make(map[string]bool, len(free))
		for _, id := range free {
			isFree[id] = true
		}
		ranks := make(map[string]int, len(pairs)) // offers so far per request (more than one in a bigger wave)
		for _, p := range pairs {
			r := reqs[p.JobIndex]
			round, waiting := rounds[r.ID]
			if !waiting || !isFree[p.TechnicianID] {
				continue
			}
			ranks[r.ID]++
			var giveUp time.Time
			if r.GiveUpAt != nil {
				giveUp = *r.GiveUpAt
			}
			plan := match.OfferPlan{Size: 1, Timeout: match.BatchOfferTimeout(s.cfg.OfferTimeout, p.ETA, giveUp, now)}
			o, err := s.newOffer(&w, r, p.Scored, ranks[r.ID], round, plan, now)
			if err != nil {
				return nil, n, err
			}
			offers = append(offers, o)
		}
	}
	if len(offers) > 0 {
		n++
		if err := insertOffers(tx, offers); err != nil {
			return nil, n, fmt.Errorf("create %d offers: %w", len(offers), err)
		}
	}
	if len(free) > 0 {
		n++
		if err := technicians.Changed(tx, free...); err != nil {
			return nil, n, err
		}
	}
	k, err = w.flushCounted(tx, now)
	n += k
	if err != nil {
		return nil, n, err
	}
	return offers, n, nil
}

// answerSample is how many recent answers the typical answer time is
// learned from.
const answerSample = 200

// answerFresh is how long a learned answer time is reused.
const answerFresh = 30 * time.Second

// answerTime is the median delay of the latest answered offers (accepted or
// declined), 0 before any, learned again every answerFresh; n is the
// statements it ran.
func (s *Service) answerTime(ctx context.Context, now time.Time) (d time.Duration, n int, err error) {
	s.answerMu.Lock()
	defer s.answerMu.Unlock()
	if !s.answerAt.IsZero() && now.Sub(s.answerAt) < answerFresh && !now.Before(s.answerAt) {
		return s.answer, 0, nil
	}
	d, err = s.learnAnswerTime(ctx)
	if err != nil {
		return 0, 1, err
	}
	s.answer, s.answerAt = d, now
	return d, 1, nil
}

func (s *Service) learnAnswerTime(ctx context.Context) (time.Duration, error) {
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
	return match.AnswerTime(delays), nil
}
