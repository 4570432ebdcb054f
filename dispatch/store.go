package dispatch

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/onsite/onsite/dispatch/match"
	"github.com/onsite/onsite/geo"
	"github.com/onsite/onsite/internal/db"
	"github.com/onsite/onsite/internal/errs"
)

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
	return pool.Search(jobOf(r), want, reachKm, func(id string) bool { return excluded[id] }, s.cfg.ETA, now)
}

// rankFor is the search of a matching round: within reach of the deadline,
// and when even the best misses it (at risk), as wide as allowed.
func (s *Service) rankFor(pool *match.Pool, r Request, excluded map[string]bool, want int, now time.Time) []match.Scored {
	job := jobOf(r)
	reach := match.ReachKm(job, now, fastestKmh, detourOf(s.cfg.ETA), s.cfg.MaxSearchKm)
	ranked := s.searchCandidates(pool, r, excluded, want, reach, now)
	if match.AtRisk(job, ranked) && reach < s.cfg.MaxSearchKm {
		ranked = s.searchCandidates(pool, r, excluded, want, s.cfg.MaxSearchKm, now)
	}
	return ranked
}

func jobOf(r Request) match.Job {
	j := match.Job{ID: r.ID, Skill: r.SkillCode, Place: r.Place()}
	if r.SLADeadline != nil {
		j.Deadline = *r.SLADeadline
	}
	if r.GiveUpAt != nil {
		j.GiveUp = *r.GiveUpAt
	}
	if r.WindowStart != nil {
		j.Opens = *r.WindowStart
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
// trip for the ops candidates view).
func loadWithExclusions(tx *gorm.DB, id string, now time.Time) (Request, map[string]bool, error) {
	var rows []struct {
		Request
		ExcludedID *string
	}
	ids := []string{id}
	err := tx.Raw(`SELECT r.*, x.technician_id AS excluded_id FROM requests r
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
	return rows[0].Request, excluded, nil
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

// detourOf is the road detour of the travel model, which bounds how far a
// search looks (as the simulator does with its scenario's); 1.25 for a model
// that does not say.
func detourOf(eta geo.ETA) float64 {
	if sl, ok := eta.(geo.StraightLine); ok && sl.Detour > 0 {
		return sl.Detour
	}
	return 1.25
}
