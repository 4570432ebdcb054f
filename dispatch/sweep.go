package dispatch

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// SweepResult counts what a sweep repaired, and the bookings whose hold it
// counted (Held).
type SweepResult struct {
	Matched, Expired, GivenUp, Started, Held int
	NoShows, ConfirmationsExpired            int
}

// Sweep is the safety net behind the task queue: it finds work whose task was
// lost (Redis flushed, a worker killed mid-task) and does it. Every step is
// idempotent, so a sweep that overlaps the normal tasks does no harm.
func (s *Service) Sweep(ctx context.Context) (SweepResult, error) {
	now := s.now()
	var res SweepResult
	q := s.db.WithContext(ctx)

	var dueOffers []string
	if err := q.Model(&Offer{}).Where("state = ? AND expires_at < ?", OfferPending, now.Add(-5*time.Second)).
		Limit(500).Pluck("id", &dueOffers).Error; err != nil {
		return res, fmt.Errorf("sweep offers: %w", err)
	}
	for _, id := range dueOffers {
		if err := s.ExpireOffer(ctx, id); err != nil {
			return res, err
		}
		res.Expired++
	}

	var overdue []string
	if err := q.Model(&Request{}).Where("state = ? AND give_up_at <= ?", Searching, now).Limit(500).Pluck("id", &overdue).Error; err != nil {
		return res, fmt.Errorf("sweep deadlines: %w", err)
	}
	for _, id := range overdue {
		if err := s.CheckDeadline(ctx, id); err != nil {
			return res, err
		}
		res.GivenUp++
	}

	var due []string
	if err := q.Model(&Request{}).Where("state = ? AND window_start <= ?", Scheduled, now.Add(s.cfg.WindowLead)).Limit(500).Pluck("id", &due).Error; err != nil {
		return res, fmt.Errorf("sweep scheduled: %w", err)
	}
	for _, id := range due {
		if err := s.StartSearch(ctx, id); err != nil {
			return res, err
		}
		res.Started++
	}

	var waited []string
	if err := q.Model(&Request{}).Where("state = ? AND no_show_due_at <= ?", OnSite, now).Limit(500).Pluck("id", &waited).Error; err != nil {
		return res, fmt.Errorf("sweep no-shows: %w", err)
	}
	for _, id := range waited {
		if err := s.CloseNoShow(ctx, id); err != nil {
			return res, err
		}
		res.NoShows++
	}

	var unconfirmed []string
	if err := q.Model(&Request{}).Where("state = ? AND created_at <= ?", PendingConfirmation, now.Add(-s.cfg.ConfirmTTL)).
		Limit(500).Pluck("id", &unconfirmed).Error; err != nil {
		return res, fmt.Errorf("sweep confirmations: %w", err)
	}
	for _, id := range unconfirmed {
		if err := s.ExpireConfirmation(ctx, id); err != nil {
			return res, err
		}
		res.ConfirmationsExpired++
	}

	held, err := s.CountHolds(ctx)
	res.Held = held
	if err != nil {
		return res, err
	}

	var idle []string
	if err := q.Model(&Request{}).
		// A request whose retry is still due has its chain: only one whose
		// retry is overdue by a whole period (its task lost) is matched here.
		Where(`state = ? AND updated_at < ? AND NOT EXISTS (SELECT 1 FROM offers o WHERE o.request_id = requests.id AND o.state = ?)
			AND (match_retry_at IS NULL OR match_retry_at < ?)`,
			Searching, now.Add(-retryEvery), OfferPending, now.Add(-retryEvery)).
		Limit(500).Pluck("id", &idle).Error; err != nil {
		return res, fmt.Errorf("sweep searching: %w", err)
	}
	var errsSeen []error
	for _, id := range idle {
		if _, err := s.Match(ctx, id); err != nil {
			errsSeen = append(errsSeen, err)
			continue
		}
		res.Matched++
	}
	return res, errors.Join(errsSeen...)
}
