package dispatch

import (
	"context"
	"fmt"
	"math"
	"time"

	"gorm.io/gorm"

	"github.com/onsite/onsite/dispatch/match"
	"github.com/onsite/onsite/geo"
	"github.com/onsite/onsite/internal/errs"
)

// retryEvery is how soon a request with no one to offer it to is searched
// again.
const retryEvery = 30 * time.Second

// fastestKmh bounds how far anyone could travel before a deadline.
const fastestKmh = 60

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
		risk := s.assessRisk(r, ranked, now)
		res.Candidates, res.AtRisk = len(ranked), risk.atRisk
		if risk.changed() {
			if err := setRisk(tx, risk, now); err != nil {
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
				return retryMatch(tx, r.ID, now)
			}
			return nil
		}
		timeLeft := time.Duration(math.MaxInt64)
		if r.SLADeadline != nil {
			timeLeft = r.SLADeadline.Sub(now)
		}
		strategy, wave := s.cfg.OfferStrategy, s.cfg.WaveSize
		if risk.level() >= match.StepBiggerWave {
			strategy, wave = match.Wave, risk.level().WaveSize(wave) // escalated: several at once
		}
		plan := match.PlanOffers(strategy, wave, s.cfg.OfferTimeout, timeLeft, len(ranked))
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

// retryMatch schedules the next matching round of a request that found no
// candidate, unless one is already due: a request has one retry chain,
// whoever ran this round (its task, the sweep, an answer).
func retryMatch(tx *gorm.DB, requestID string, now time.Time) error {
	res := tx.Model(&Request{}).Where("id = ? AND (match_retry_at IS NULL OR match_retry_at <= ?)", requestID, now).
		Update("match_retry_at", now.Add(retryEvery))
	if res.Error != nil {
		return fmt.Errorf("schedule the next round of %s: %w", requestID, res.Error)
	}
	if res.RowsAffected == 0 {
		return nil // a retry is due already
	}
	return enqueue(tx, TaskMatch, QueueCritical, TaskPayload{RequestID: requestID}, now.Add(retryEvery), now)
}

// setRisk writes one request's risk change with its events.
func setRisk(tx *gorm.DB, c riskChange, now time.Time) error {
	var w writes
	if err := w.riskEvents(c, now); err != nil {
		return err
	}
	if _, err := writeRisk(tx, []riskChange{c}, now); err != nil {
		return err
	}
	return w.flush(tx, now)
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

// index returns the live index, loaded at first use and with every change
// this process has committed applied.
func (s *Service) index(ctx context.Context) (*match.Pool, error) {
	if !s.fleet.loaded.Load() {
		if err := s.fleet.Load(ctx); err != nil {
			return nil, err
		}
	}
	if err := s.fleet.Sync(ctx); err != nil {
		return nil, err
	}
	return s.fleet.Pool(), nil
}

// searchCandidates ranks the best want technicians eligible for r within
// reachKm, from the live index: the same search and ranking the simulator
// runs (match.Pool.Search, exact against match.Rank over every technician).
func (s *Service) searchCandidates(pool *match.Pool, r Request, excluded map[string]bool, want int, reachKm float64, now time.Time) []match.Scored {
	job := s.jobOf(r)
	return match.Prefer(job, pool.Search(job, want, reachKm, func(id string) bool { return excluded[id] }, s.cfg.ETA, now))
}

// rankFor is the search of a matching round: within reach of the deadline,
// and when even the best misses it (at risk), as wide as allowed.
func (s *Service) rankFor(pool *match.Pool, r Request, excluded map[string]bool, want int, now time.Time) []match.Scored {
	job := s.jobOf(r)
	reach := match.ReachKm(job, now, fastestKmh, detourOf(s.cfg.ETA), s.cfg.MaxSearchKm)
	ranked := s.searchCandidates(pool, r, excluded, want, reach, now)
	if match.AtRisk(job, ranked) && reach < s.cfg.MaxSearchKm {
		ranked = s.searchCandidates(pool, r, excluded, want, s.cfg.MaxSearchKm, now)
	}
	return ranked
}

// jobOf is what matching knows of r.
func (s *Service) jobOf(r Request) match.Job {
	j := match.Job{ID: r.ID, Skill: r.SkillCode, Place: r.Place(), Length: s.cfg.JobLength}
	if r.SLADeadline != nil {
		j.Deadline = *r.SLADeadline
	}
	if r.GiveUpAt != nil {
		j.GiveUp = *r.GiveUpAt
	}
	if r.WindowStart != nil {
		j.Opens = *r.WindowStart
	}
	if r.PreferredTechnicianID != nil {
		j.Prefer = *r.PreferredTechnicianID
	}
	return j
}

// excludedFor returns the technicians not to offer r to now: those who
// declined it or dropped it, those with an offer for it still pending, and
// those whose offer expired in the last 10 minutes.
func excludedFor(tx *gorm.DB, requestID string, now time.Time) (map[string]bool, error) {
	all, err := exclusionsOf(tx, []string{requestID}, now)
	return all[requestID], err
}

// exclusionSQL is the technicians a request must not be offered to again:
// those who declined or are deciding, who let an offer expire in the last
// ten minutes, or who dropped the job.
const exclusionSQL = `SELECT request_id, technician_id FROM offers WHERE request_id IN ? AND (state IN ('declined', 'pending') OR (state = 'expired' AND answered_at > ?))
		UNION SELECT request_id, technician_id FROM assignments WHERE request_id IN ? AND end_reason = 'dropped'`

// loadWithExclusions is load and excludedFor in one statement (one round
// trip for the ops candidates view). It reads only what a search needs of the request (jobOf), not the whole
// row: the scan of a full request per excluded technician was half the
// route's time.
func loadWithExclusions(tx *gorm.DB, id string, now time.Time) (Request, map[string]bool, error) {
	var rows []struct {
		ID, SkillCode                      string
		Lat, Lng                           float64
		SLADeadline, GiveUpAt, WindowStart *time.Time
		PreferredTechnicianID              *string
		ExcludedID                         *string
	}
	ids := []string{id}
	err := tx.Raw(`SELECT r.id, r.skill_code, r.lat, r.lng, r.sla_deadline, r.give_up_at, r.window_start, r.preferred_technician_id,
		x.technician_id AS excluded_id FROM requests r
		LEFT JOIN (`+exclusionSQL+`) x ON x.request_id = r.id
		WHERE r.id = ?`, ids, now.Add(-10*time.Minute), ids, id).Scan(&rows).Error
	if err != nil {
		return Request{}, nil, fmt.Errorf("load request %s: %w", id, err)
	}
	if len(rows) == 0 {
		return Request{}, nil, errs.NotFoundf("request %s not found", id)
	}
	var excluded map[string]bool
	for _, row := range rows {
		if row.ExcludedID != nil {
			if excluded == nil {
				excluded = map[string]bool{}
			}
			excluded[*row.ExcludedID] = true
		}
	}
	x := rows[0]
	return Request{ID: x.ID, SkillCode: x.SkillCode, Lat: x.Lat, Lng: x.Lng, SLADeadline: x.SLADeadline, GiveUpAt: x.GiveUpAt, WindowStart: x.WindowStart,
			PreferredTechnicianID: x.PreferredTechnicianID},
		excluded, nil
}

// exclusionsOf is excludedFor for many requests in one statement.
func exclusionsOf(tx *gorm.DB, requestIDs []string, now time.Time) (map[string]map[string]bool, error) {
	out := map[string]map[string]bool{}
	if len(requestIDs) == 0 {
		return out, nil
	}
	var rows []struct{ RequestID, TechnicianID string }
	err := tx.Raw(exclusionSQL, requestIDs, now.Add(-10*time.Minute), requestIDs).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("load exclusions: %w", err)
	}
	for _, r := range rows {
		if out[r.RequestID] == nil {
			out[r.RequestID] = map[string]bool{}
		}
		out[r.RequestID][r.TechnicianID] = true
	}
	return out, nil
}

// detourOf is the road detour of the travel model, which bounds how far a
// search looks (as the simulator does with its scenario's); 1.25 for a model
// that does not say.
func detourOf(eta geo.ETA) float64 {
	if sl, ok := eta.(geo.StraightLine); ok && sl.Detour > 0 {
		return sl.Detour
	}
	return 1.25
}
