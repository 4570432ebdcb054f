package match

import "time"

// RiskPolicy debounces the at-risk flag: a request enters at risk as soon as
// even its best candidate misses the deadline (AtRisk), and leaves only once
// the best arrives Hysteresis before the deadline and it has been at risk for
// MinDwell, so an arrival wavering around the deadline does not flip the
// flag (and page ops) at every round.
type RiskPolicy struct {
	Hysteresis time.Duration
	MinDwell   time.Duration
}

// DefaultRiskPolicy leaves at risk with two minutes to spare, after at least
// a minute.
var DefaultRiskPolicy = RiskPolicy{Hysteresis: 2 * time.Minute, MinDwell: time.Minute}

// Next is whether a request is at risk after a round that ranked its
// candidates: was and since are its flag and when it was raised.
func (p RiskPolicy) Next(was bool, since time.Time, j Job, ranked []Scored, now time.Time) bool {
	if !was {
		return AtRisk(j, ranked)
	}
	if j.Deadline.IsZero() {
		return false
	}
	if len(ranked) == 0 || now.Sub(since) < p.MinDwell {
		return true
	}
	return bestArrival(ranked).After(j.Deadline.Add(-p.Hysteresis))
}

func bestArrival(ranked []Scored) time.Time {
	best := ranked[0].Arrival
	for _, s := range ranked[1:] {
		if s.Arrival.Before(best) {
			best = s.Arrival
		}
	}
	return best
}

// Step is how far a request at risk has been escalated. The steps go in
// order, each once per request, each recorded as an event.
type Step int

// The escalation steps.
const (
	StepNone         Step = iota
	StepWiderSearch       // search the whole radius, not only who could make the deadline
	StepBiggerWave        // offer to more technicians at once
	StepPaged             // page the dispatchers on the dashboard
	StepCustomerTold      // text the customer an honest new estimate
	lastStep         = StepCustomerTold
)

var stepNames = [...]string{"none", "wider_search", "bigger_wave", "paged", "customer_told"}

func (s Step) String() string {
	if s < 0 || int(s) >= len(stepNames) {
		return "unknown"
	}
	return stepNames[s]
}

// Escalation says how long a request must have been at risk before each
// step (After[k] for step k+1).
type Escalation struct {
	After [lastStep]time.Duration
}

// DefaultEscalation widens at once, doubles the wave after 2 minutes at
// risk, pages after 5 and tells the customer after 10.
var DefaultEscalation = Escalation{After: [lastStep]time.Duration{0, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute}}

// Due is the furthest step due for a request at risk for atRiskFor.
func (e Escalation) Due(atRiskFor time.Duration) Step {
	due := StepNone
	for k, after := range e.After {
		if atRiskFor >= after {
			due = Step(k + 1)
		}
	}
	return due
}

// WaveSize is how many technicians a round offers a request to at step s
// (base for one not escalated that far).
func (s Step) WaveSize(base int) int {
	if s >= StepBiggerWave {
		return max(2*base, 3)
	}
	return base
}

// BiggerWaves adds to a batch's pairs, for each job escalated to a bigger
// wave (levels by job index), pairs with its next best candidates that no
// pair of the batch uses: several technicians are asked at once and the
// first to accept takes the job. The server and the simulator both call it.
func BiggerWaves(pairs []BatchPair, lists [][]Scored, levels []Step) []BatchPair {
	used := make(map[string]bool, len(pairs))
	for _, p := range pairs {
		used[p.TechnicianID] = true
	}
	out := pairs
	for _, p := range pairs {
		extra := levels[p.JobIndex].WaveSize(1) - 1
		for _, sc := range lists[p.JobIndex] {
			if extra == 0 {
				break
			}
			if !used[sc.TechnicianID] {
				used[sc.TechnicianID] = true
				out = append(out, BatchPair{JobIndex: p.JobIndex, Scored: sc})
				extra--
			}
		}
	}
	return out
}
