package dispatch

import (
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/onsite/onsite/dispatch/match"
)

// riskChange is what a matching round changes in a waiting request's risk:
// its (debounced) at-risk flag, and the escalation steps now due.
type riskChange struct {
	r        Request
	answer   time.Duration // the typical time a technician takes to answer an offer (as last learned)
	atRisk   bool
	flip     bool      // the flag changes
	since    time.Time // when it was raised (now for a request entering)
	from, to match.Step
	ranked   []match.Scored
}

// changed reports whether the round has anything to write for the request.
func (c riskChange) changed() bool { return c.flip || c.to > c.from }

// level is the furthest step taken for the request after the round.
func (c riskChange) level() match.Step { return max(c.from, c.to) }

// assessRisk applies the risk policy and the escalation to one request
// after its candidates were ranked.
func (s *Service) assessRisk(r Request, ranked []match.Scored, now time.Time) riskChange {
	c := riskChange{r: r, from: match.Step(r.Escalation), ranked: ranked, since: now}
	s.answerMu.Lock()
	c.answer = s.answer
	s.answerMu.Unlock()
	if r.AtRiskSince != nil {
		c.since = *r.AtRiskSince
	}
	c.atRisk = s.cfg.Risk.Next(r.AtRisk, c.since, s.jobOf(r), ranked, now)
	c.flip = c.atRisk != r.AtRisk
	if c.flip && c.atRisk {
		c.since = now
	}
	c.to = c.from
	if c.atRisk {
		c.to = max(c.from, s.cfg.Escalation.Due(now.Sub(c.since)))
	}
	return c
}

// riskEvents gathers into w the events of a round's risk change: at_risk or
// back_on_track, and one "escalated" event per step taken (the last step
// texts the customer an honest new estimate).
func (w *writes) riskEvents(c riskChange, now time.Time) error {
	if c.flip {
		if err := w.event(c.r.ID, atRiskEvent(c.atRisk), System, atRiskData(c.r, c.ranked), now); err != nil {
			return err
		}
	}
	for step := c.from + 1; step <= c.to; step++ {
		data := map[string]any{"step": step.String(), "at_risk_for_s": int(now.Sub(c.since).Seconds())}
		switch step {
		case match.StepBiggerWave:
			data["wave"] = step.WaveSize(1)
		case match.StepCustomerTold:
			if len(c.ranked) > 0 {
				// The best arrival a round can see now, after the time a
				// technician typically takes to answer.
				data["eta_at"] = c.ranked[0].Arrival.Add(c.answer)
			}
		}
		if err := w.event(c.r.ID, "escalated", System, data, now); err != nil {
			return err
		}
	}
	return nil
}

// writeRisk writes the flags and steps of a round's risk changes to the
// requests still searching: at most two statements, whatever their number.
func writeRisk(tx *gorm.DB, changes []riskChange, now time.Time) (int, error) {
	var on, flipped, stepIDs []string
	var cases strings.Builder
	var caseArgs []any
	for _, c := range changes {
		if c.flip {
			flipped = append(flipped, c.r.ID)
			if c.atRisk {
				on = append(on, c.r.ID)
			}
		}
		if c.to > c.from {
			cases.WriteString(" WHEN ? THEN ?")
			caseArgs = append(caseArgs, c.r.ID, int(c.to))
			stepIDs = append(stepIDs, c.r.ID)
		}
	}
	n := 0
	if len(flipped) > 0 {
		n++
		if err := tx.Exec(`UPDATE requests SET at_risk = (id IN ?), at_risk_since = CASE WHEN id IN ? THEN ? ELSE CAST(NULL AS TIMESTAMP) END, updated_at = ?
			WHERE id IN ? AND state = ?`, append(on, ""), append(on, ""), now, now, flipped, Searching).Error; err != nil {
			return n, fmt.Errorf("flag requests at risk: %w", err)
		}
	}
	if len(stepIDs) > 0 {
		n++
		args := append(caseArgs, now, stepIDs, Searching)
		if err := tx.Exec(`UPDATE requests SET escalation = CASE id`+cases.String()+` ELSE escalation END, updated_at = ?
			WHERE id IN ? AND state = ?`, args...).Error; err != nil {
			return n, fmt.Errorf("escalate requests at risk: %w", err)
		}
	}
	return n, nil
}
