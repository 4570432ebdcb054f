package match

import "time"

// This file is part of the pure core.

// Strategies for sending offers.
const (
	Sequential = "sequential" // one technician at a time, cascade on decline or timeout
	Wave       = "wave"       // the top N at once, first accept wins
	Batch      = "batch"      // every few seconds, a least-cost assignment of waiting requests to free technicians
)

// OfferPlan says how many offers to send at once and how long each stays
// open.
type OfferPlan struct {
	Size    int
	Timeout time.Duration
}

// PlanOffers sizes a round of offers by the time left before the deadline:
// with plenty of time the configured strategy runs as set; when the deadline
// nears, waiting on one person at a time is what loses the hour, so the
// round widens to a wave of at least three and the timeout shrinks to a
// twentieth of the time left (never under 15 s).
func PlanOffers(strategy string, waveSize int, timeout, timeLeft time.Duration, available int) OfferPlan {
	p := OfferPlan{Size: 1, Timeout: timeout}
	if strategy == Wave {
		p.Size = max(waveSize, 1)
	}
	if timeLeft < 20*time.Minute {
		p.Size = max(p.Size, 3)
		p.Timeout = min(p.Timeout, max(timeLeft/20, minOfferTimeout))
	}
	p.Size = min(p.Size, available)
	return p
}
