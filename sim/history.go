package sim

import (
	"fmt"
	"time"
)

// PastRequest is one request from the history the planner learns demand from.
type PastRequest struct {
	Created time.Time // UTC
	Skill   string
	ASAP    bool
}

// WithHistory returns the scenario with its demand taken from past requests
// created in [from, to): requests per hour of the scenario's day as the mean
// over the days of the period, the skill mix and the ASAP share as found.
// Places, behaviour and the fleet stay the scenario's. A skill nobody in the
// scenario's fleet can hold is an error, as in a scenario file.
func WithHistory(sc Scenario, past []PastRequest, from, to time.Time) (Scenario, error) {
	days := to.Sub(from).Hours() / 24
	if days < 1 {
		return Scenario{}, fmt.Errorf("history: want at least one day, not %s to %s", from.Format(time.DateTime), to.Format(time.DateTime))
	}
	perHour := make([]float64, sc.Hours)
	skills := map[string]float64{}
	asap, n := 0, 0
	for _, r := range past {
		if r.Created.Before(from) || !r.Created.Before(to) {
			continue
		}
		// Hour of the scenario's day; a day past midnight (start_hour + hours
		// > 24) takes the early hours of the next calendar day.
		h := (r.Created.UTC().Hour() - sc.StartHour + 24) % 24
		if h >= sc.Hours {
			continue
		}
		perHour[h] += 1 / days
		skills[r.Skill]++
		n++
		if r.ASAP {
			asap++
		}
	}
	if n == 0 {
		return Scenario{}, fmt.Errorf("history: no requests between %s and %s in the scenario's hours", from.Format(time.DateTime), to.Format(time.DateTime))
	}
	out := sc
	out.Demand.PerHour = perHour
	out.Demand.Skills = skills
	out.Demand.Fixed = nil
	out.Demand.ASAPShare = float64(asap) / float64(n)
	if err := out.Validate(); err != nil {
		return Scenario{}, fmt.Errorf("history: %w", err)
	}
	return out, nil
}
