package sim

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"time"
)

// The staffing planner: how many technicians should be on duty in each hour
// for the batch strategy to reach a target share of ASAP requests on site
// within the SLA. The requests, places and answers of each seed's day stay
// those of the scenario; only the fleet is replaced by one of the plan's
// shape, drawn from the scenario's skill shares, homes and travel modes.

// Staffing is a count of technicians on duty per hour, index 0 = StartHour.
// It runs past the scenario's day for as long as its requests may still need
// a technician (the tail: the give-up time, the latest window).
type Staffing struct {
	StartHour int
	OnDuty    []int
}

// TechHours is the technician-hours of the staffing.
func (s Staffing) TechHours() int {
	n := 0
	for _, c := range s.OnDuty {
		n += c
	}
	return n
}

func (s Staffing) clone() Staffing {
	return Staffing{StartHour: s.StartHour, OnDuty: slices.Clone(s.OnDuty)}
}

// shifts decomposes the staffing into contiguous shifts [start, end) in
// hours from StartHour, whose count on duty in every hour equals OnDuty:
// shifts start when the count rises and the latest started end when it
// falls, so nobody works in two pieces.
func (s Staffing) shifts() [][2]int {
	var open []int // start hours, a stack
	var out [][2]int
	for h := 0; h <= len(s.OnDuty); h++ {
		c := 0
		if h < len(s.OnDuty) {
			c = s.OnDuty[h]
		}
		for len(open) > c {
			out = append(out, [2]int{open[len(open)-1], h})
			open = open[:len(open)-1]
		}
		for len(open) < c {
			open = append(open, h)
		}
	}
	slices.SortFunc(out, func(a, b [2]int) int {
		if a[0] != b[0] {
			return a[0] - b[0]
		}
		return a[1] - b[1]
	})
	return out
}

// PlanOptions are the planner's settings.
type PlanOptions struct {
	Target      float64  // share of ASAP requests on site within the SLA to reach (0.95)
	Seeds       []uint64 // the days every candidate staffing is simulated on
	Utilisation float64  // of the first, demand-based estimate (default 0.8)
	// WindowTarget, when above 0, also requires this share of windowed
	// requests reached within their window, so that a staffing cannot reach
	// the target by leaving the windows behind.
	WindowTarget float64
	// KeepWindows also requires at least the share of windowed requests the
	// scenario's own fleet keeps on the same seeds.
	KeepWindows bool
	// HourSlack is how far below Target the requests opened in any one hour
	// may be served (default 0.05; 1 lets an hour go unserved), so that a
	// staffing cannot reach the day's target by giving up an hour.
	HourSlack float64
	// CheckSeeds, if any, are days the recommendation is simulated on after
	// the search, which never saw them (an out-of-sample check).
	CheckSeeds []uint64
	// MaxEvaluations caps the candidate staffings simulated (default 250).
	MaxEvaluations int
	// Progress, if not nil, is told about every evaluation.
	Progress func(Trial)
}

// Trial is one candidate staffing the planner simulated.
type Trial struct {
	Step      string // which phase proposed it
	TechHours int
	Share     float64 // ASAP requests on site within the SLA (mean over the seeds)
	Windows   float64 // windowed requests reached within their window
	Feasible  bool    // reached the target
}

// SkillHours is the technicians holding one skill on duty per hour in the
// simulated fleets of a staffing (mean over the seeds).
type SkillHours struct {
	Skill  string
	OnDuty []float64
}

// PlanResult is what the planner recommends and how it checked it.
type PlanResult struct {
	Scenario    string
	Target      float64
	SLA         time.Duration
	Seeds       []uint64
	Recommended Staffing
	// ScenarioOnDuty is the scenario's own fleet on duty per hour (expected
	// count from its shift shares), for comparison.
	ScenarioOnDuty []float64
	Demand         []float64 // requests per hour (the scenario's rate; 0 in the tail)
	Check          Summary   // the batch strategy on the recommended staffing, on Seeds
	Baseline       Summary   // the batch strategy on the scenario's own fleet, on Seeds
	CheckSeeds     []uint64
	Holdout        Summary // the same on CheckSeeds (empty without them)
	WindowTarget   float64
	KeepWindows    bool // WindowTarget is at least what the scenario's own fleet keeps
	Skills         []SkillHours
	// LeastFeasible is the fewest technician-hours of any staffing the
	// planner simulated that reached the target.
	LeastFeasible int
	Trials        []Trial
	// Complete is true when the search ended with a trimming pass in which
	// no single technician-hour could be removed (a local minimum), false
	// when the evaluation budget stopped it first.
	Complete bool
}

// Plan searches for the staffing with the fewest technician-hours whose
// simulation reaches the targets (the day's ASAP share, every hour's within
// HourSlack, the windows kept), deterministically for the seeds:
//
//  1. a demand-based profile: per hour, the work arriving (requests × mean
//     job length plus a drive) ÷ utilisation, where it happens (see
//     demandProfile);
//  2. a bisection on a factor of that profile, to the least factor that
//     reaches the target;
//  3. hour by hour, technicians removed where the requests opened in that
//     hour are served above the target and added where they are below it,
//     kept while the whole day still reaches it;
//  4. a trimming pass: one hour at a time (most slack first), fewer
//     technicians, step halving down to one, kept only when the target
//     still holds.
func Plan(ctx context.Context, sc Scenario, opts PlanOptions) (PlanResult, error) {
	if !(opts.Target > 0 && opts.Target < 1) {
		return PlanResult{}, fmt.Errorf("plan: target must be between 0 and 1, not %v", opts.Target)
	}
	if len(opts.Seeds) == 0 {
		return PlanResult{}, fmt.Errorf("plan: no seeds")
	}
	if opts.Utilisation == 0 {
		opts.Utilisation = 0.8
	}
	if !(opts.Utilisation > 0 && opts.Utilisation <= 1) {
		return PlanResult{}, fmt.Errorf("plan: utilisation must be above 0 and at most 1, not %v", opts.Utilisation)
	}
	if !(opts.WindowTarget >= 0 && opts.WindowTarget < 1) {
		return PlanResult{}, fmt.Errorf("plan: window target must be from 0 to below 1, not %v", opts.WindowTarget)
	}
	if opts.HourSlack == 0 {
		opts.HourSlack = 0.05
	}
	if !(opts.HourSlack > 0 && opts.HourSlack <= 1) {
		return PlanResult{}, fmt.Errorf("plan: hour slack must be above 0 and at most 1, not %v", opts.HourSlack)
	}
	if opts.MaxEvaluations == 0 {
		opts.MaxEvaluations = 250
	}
	_, baseline, err := simulateDays(ctx, sc, opts.Seeds, func(seed uint64) *day { return newDay(sc, seed) })
	if err != nil {
		return PlanResult{}, err
	}
	if opts.KeepWindows {
		opts.WindowTarget = max(opts.WindowTarget, baseline.Windows)
	}
	p := &planner{sc: sc, opts: opts, seen: map[string]Summary{}}
	best, err := p.search(ctx)
	if err != nil {
		return PlanResult{}, err
	}
	check, skills, err := p.evaluate(ctx, best, true)
	if err != nil {
		return PlanResult{}, err
	}
	res := PlanResult{Scenario: sc.Name, Target: opts.Target, SLA: sc.Dispatch.SLA.Duration, Seeds: opts.Seeds,
		Recommended: best, ScenarioOnDuty: scenarioOnDuty(sc), Check: check, Skills: skills, Trials: p.trials,
		CheckSeeds: opts.CheckSeeds, WindowTarget: opts.WindowTarget, Complete: !p.spent, Baseline: baseline, KeepWindows: opts.KeepWindows}
	if len(opts.CheckSeeds) > 0 {
		held := &planner{sc: sc, opts: opts}
		held.opts.Seeds = opts.CheckSeeds
		if res.Holdout, _, err = held.evaluate(ctx, best, false); err != nil {
			return PlanResult{}, err
		}
	}
	res.LeastFeasible = best.TechHours()
	for _, t := range p.trials {
		if t.Feasible && t.TechHours < res.LeastFeasible {
			res.LeastFeasible = t.TechHours
		}
	}
	for h := range len(best.OnDuty) {
		rate := 0.0
		if h < len(sc.Demand.PerHour) && h < sc.Hours {
			rate = sc.Demand.PerHour[h]
		}
		res.Demand = append(res.Demand, rate)
	}
	return res, nil
}

type planner struct {
	sc     Scenario
	opts   PlanOptions
	trials []Trial
	seen   map[string]Summary // by staffing, so a staffing is simulated once
	spent  bool               // the budget ended the search before the last trimming pass
}

// stopped ends the search: quietly when the budget is spent (the best so far
// stands), with err otherwise.
func (p *planner) stopped(err error) error {
	if errors.Is(err, errBudget) {
		p.spent = true
		return nil
	}
	return err
}

// errBudget ends the search when MaxEvaluations staffings were simulated.
var errBudget = errors.New("plan: evaluation budget spent")

func (p *planner) search(ctx context.Context) (Staffing, error) {
	base := demandProfile(p.sc, p.opts.Utilisation)
	scaled := func(f float64) Staffing {
		s := Staffing{StartHour: p.sc.StartHour, OnDuty: make([]int, len(base))}
		for h, b := range base {
			s.OnDuty[h] = int(math.Ceil(f * b))
		}
		return s
	}
	// 2. Bracket, then bisect the factor.
	lo, hi := 0.0, 1.0
	var best Staffing
	var bestSum Summary
	for {
		s := scaled(hi)
		sum, err := p.try(ctx, "scale", s)
		if err != nil {
			return Staffing{}, fmt.Errorf("plan: no staffing up to %.1f× the demand estimate reached the target: %w", hi, err)
		}
		if p.feasible(sum) {
			best, bestSum = s, sum
			break
		}
		lo = hi
		if hi >= 16 {
			return Staffing{}, fmt.Errorf("plan: even %.0f× the demand estimate (%d technician-hours) reaches only %.1f %%", hi, s.TechHours(), 100*sum.Share)
		}
		hi *= 2
	}
	for hi-lo > 0.04*hi {
		mid := (lo + hi) / 2
		s := scaled(mid)
		sum, err := p.try(ctx, "scale", s)
		if err != nil {
			return best, p.stopped(err)
		}
		if p.feasible(sum) {
			hi, best, bestSum = mid, s, sum
		} else {
			lo = mid
		}
	}
	// 3. Rebalance by the on-time share of each hour's requests.
	for range 3 {
		s := best.clone()
		changed := false
		for h := range s.OnDuty {
			share, n := hourShare(bestSum, p.sc, h)
			if n == 0 {
				continue
			}
			// An hour's technicians, in proportion to how far its requests
			// are from the target, at most a tenth of them either way.
			d := int(math.Round(float64(s.OnDuty[h]) * clampF(share-p.opts.Target, -0.1, 0.1)))
			if d != 0 {
				s.OnDuty[h] = max(0, s.OnDuty[h]-d)
				changed = true
			}
		}
		if !changed {
			break
		}
		sum, err := p.try(ctx, "rebalance", s)
		if err != nil {
			return best, p.stopped(err)
		}
		if !p.feasible(sum) || s.TechHours() >= best.TechHours() {
			break
		}
		best, bestSum = s, sum
	}
	// 4. Trim: hours with the most slack first, halving the step.
	step := 1
	for _, c := range best.OnDuty {
		step = max(step, c/16)
	}
	for ; step >= 1; step /= 2 {
		for improved := true; improved; {
			improved = false
			for _, h := range p.bySlack(bestSum, best) {
				if best.OnDuty[h] < step {
					continue
				}
				s := best.clone()
				s.OnDuty[h] -= step
				sum, err := p.try(ctx, fmt.Sprintf("trim %s −%d", fmtHour(p.sc.StartHour+h), step), s)
				if err != nil {
					return best, p.stopped(err)
				}
				if p.feasible(sum) {
					best, bestSum, improved = s, sum, true
				}
			}
		}
	}
	return best, nil
}

// feasible tells whether a simulated staffing reaches the targets.
func (p *planner) feasible(sum Summary) bool {
	if sum.Share < p.opts.Target || sum.Windows < p.opts.WindowTarget {
		return false
	}
	for _, h := range sum.ByHour {
		if h.Requests > 0 && h.Share < p.opts.Target-p.opts.HourSlack {
			return false
		}
	}
	return true
}

// bySlack orders the hours of a staffing by how far above the target the
// requests opened in them were served (the tail counts as the last hour).
func (p *planner) bySlack(sum Summary, s Staffing) []int {
	hours := make([]int, len(s.OnDuty))
	slack := make([]float64, len(s.OnDuty))
	for h := range hours {
		hours[h] = h
		share, n := hourShare(sum, p.sc, h)
		if n == 0 {
			share = 1
		}
		slack[h] = share
	}
	slices.SortStableFunc(hours, func(a, b int) int {
		if slack[a] != slack[b] {
			if slack[a] > slack[b] {
				return -1
			}
			return 1
		}
		return a - b
	})
	return hours
}

func hourShare(sum Summary, sc Scenario, h int) (float64, int) {
	x, ok := summaryHour(sum, sc.StartHour+h)
	if !ok {
		return 0, 0
	}
	return x.Share, x.Requests
}

// try simulates a staffing (once: repeats are remembered) and records it.
func (p *planner) try(ctx context.Context, step string, s Staffing) (Summary, error) {
	key := fmt.Sprint(s.OnDuty)
	if sum, ok := p.seen[key]; ok {
		return sum, nil
	}
	if len(p.trials) >= p.opts.MaxEvaluations {
		return Summary{}, errBudget
	}
	sum, _, err := p.evaluate(ctx, s, false)
	if err != nil {
		return Summary{}, err
	}
	p.seen[key] = sum
	t := Trial{Step: step, TechHours: s.TechHours(), Share: sum.Share, Windows: sum.Windows, Feasible: p.feasible(sum)}
	p.trials = append(p.trials, t)
	if p.opts.Progress != nil {
		p.opts.Progress(t)
	}
	return sum, nil
}

// evaluate runs the batch strategy on the staffing over every seed, on all
// cores. With skills it also counts the holders of each skill on duty.
func (p *planner) evaluate(ctx context.Context, s Staffing, skills bool) (Summary, []SkillHours, error) {
	days, sum, err := simulateDays(ctx, p.sc, p.opts.Seeds, func(seed uint64) *day { return staffedDay(p.sc, seed, s) })
	if err != nil || !skills {
		return sum, nil, err
	}
	return sum, skillHours(p.sc, s, days), nil
}

// simulateDays runs the batch strategy on the day dayOf draws for each seed,
// on all cores, and returns the days and the summary.
func simulateDays(ctx context.Context, sc Scenario, seeds []uint64, dayOf func(uint64) *day) ([]*day, Summary, error) {
	v, err := batchVariant(sc)
	if err != nil {
		return nil, Summary{}, err
	}
	results := make([]Result, len(seeds))
	days := make([]*day, len(seeds))
	work := make(chan int)
	var wg sync.WaitGroup
	for range max(1, min(runtime.GOMAXPROCS(0), len(seeds))) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				days[i] = dayOf(seeds[i])
				results[i] = runDay(days[i], v, nil)
			}
		}()
	}
	for i := range seeds {
		if ctx.Err() != nil {
			break
		}
		work <- i
	}
	close(work)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, Summary{}, fmt.Errorf("plan: %w", err)
	}
	for i := range results {
		results[i].Strategy = v.Name
	}
	return days, Summarise(v.Name, results), nil
}

// batchVariant is the scenario's default strategy: batch at its batch window.
func batchVariant(sc Scenario) (Variant, error) {
	vs, err := Variants(sc, "batch")
	if err != nil {
		return Variant{}, fmt.Errorf("plan: %w", err)
	}
	return vs[0], nil
}

// staffedDay is the seed's day with its fleet replaced by one of the
// staffing's shape. Technician i is drawn from its own stream (seed, i), so
// adding a technician leaves the others as they were, and every request and
// answer is the scenario's.
func staffedDay(sc Scenario, seed uint64, s Staffing) *day {
	d := newDay(sc, seed)
	one := sc
	one.Technicians.Count = 1
	d.techs = d.techs[:0:0]
	for i, sh := range s.shifts() {
		one.Technicians.Shifts = []ShiftPattern{{StartHour: s.StartHour + sh[0], EndHour: s.StartHour + sh[1], Share: 1}}
		rng := rand.New(rand.NewPCG(seed, 0x57aff<<20|uint64(i)))
		t := drawTechnicians(one, rng)[0]
		t.idx, t.id = i, fmt.Sprintf("t%05d", i)
		d.techs = append(d.techs, t)
	}
	return d
}

func skillHours(sc Scenario, s Staffing, days []*day) []SkillHours {
	var out []SkillHours
	for _, skill := range sortedKeys(sc.Technicians.Skills) {
		sh := SkillHours{Skill: skill, OnDuty: make([]float64, len(s.OnDuty))}
		for _, d := range days {
			for _, t := range d.techs {
				if !contains(t.skills, skill) {
					continue
				}
				for h := range sh.OnDuty {
					at := d.start.Add(time.Duration(h) * time.Hour)
					if !at.Before(t.shiftStart) && at.Before(t.shiftEnd) {
						sh.OnDuty[h] += 1 / float64(len(days))
					}
				}
			}
		}
		out = append(out, sh)
	}
	return out
}

// planHours is how many hours a staffing covers: the scenario's day, then
// as long as its requests may still need a technician (the give-up time of
// the last ASAP requests, the latest window of the windowed ones), within
// the simulator's 48 hours.
func planHours(sc Scenario) int {
	tail := max(sc.Dispatch.SLA.Duration, sc.Dispatch.GiveUp.Duration).Hours()
	if sc.Demand.ASAPShare < 1 {
		tail = math.Max(tail, sc.Demand.WindowAheadHr[1]+sc.Demand.WindowHours)
	}
	return min(sc.Hours+int(math.Ceil(tail)), 48-sc.StartHour)
}

// demandProfile is the first estimate of technicians needed per hour of
// planHours: the hours of work — requests × (mean job length + a typical
// drive and answer) — ÷ utilisation, where the work happens: an ASAP
// request's half in the hour it is opened and half in the next (an
// hour-long job begun within an hour straddles both), a windowed request's
// spread evenly over the hours its window may fall in.
func demandProfile(sc Scenario, utilisation float64) []float64 {
	b := sc.Behaviour
	total, job := 0.0, 0.0
	for skill, w := range sc.Demand.Skills {
		m, ok := b.ServiceMinutes[skill]
		if !ok {
			m = b.ServiceMinutes["default"]
		}
		total += w
		job += w * m
	}
	job /= total
	speed, share := 0.0, 0.0
	for _, m := range sc.Technicians.Travel {
		speed += m.Share * m.SpeedKmh
		share += m.Share
	}
	speed /= share
	drive := 0.25*sc.City.RadiusKm*b.Detour/speed*60 + b.ResponseMedian.Minutes()
	d := sc.Demand
	out := make([]float64, planHours(sc))
	add := func(h int, x float64) {
		if h >= 0 && h < len(out) {
			out[h] += x
		}
	}
	for h := range sc.Hours {
		if h >= len(d.PerHour) {
			break
		}
		work := d.PerHour[h] * (job + drive) / 60 / utilisation
		asap := work * d.ASAPShare
		add(h, asap/2)
		add(h+1, asap/2)
		// A window opens lo..hi hours after the request and lasts
		// WindowHours; the job is done somewhere in it.
		lo := h + int(math.Floor(d.WindowAheadHr[0]))
		hi := h + int(math.Ceil(d.WindowAheadHr[1]+d.WindowHours))
		for k := lo; k < hi; k++ {
			add(k, work*(1-d.ASAPShare)/float64(hi-lo))
		}
	}
	return out
}

// scenarioOnDuty is the expected count of the scenario's own technicians on
// duty per hour of the staffing (day plus tail).
func scenarioOnDuty(sc Scenario) []float64 {
	out := make([]float64, planHours(sc))
	for h := range out {
		hour := sc.StartHour + h
		for _, s := range sc.Technicians.Shifts {
			if s.StartHour <= hour && hour < s.EndHour {
				out[h] += s.Share * float64(sc.Technicians.Count)
			}
		}
	}
	return out
}
