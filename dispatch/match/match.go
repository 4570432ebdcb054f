package match

import (
	"cmp"
	"math"
	"slices"
	"time"

	"github.com/onsite/onsite/geo"
)

// This file is part of the pure core: it imports only the standard library
// and geo, takes time as a value, and runs the same in the server and the
// simulator.

// Interval is a working period.
type Interval struct {
	Start, End time.Time
}

// Candidate is what matching knows of a technician. The fields a search
// reads of everyone it meets (eligibility, then the arrival) come first, so
// they share the first cache lines; ranking's come next.
type Candidate struct {
	Available   bool // on duty, not busy, not suspended
	Excluded    bool // declined or dropped this request, or has an offer for it already
	Deciding    bool // holds a pending offer for another request
	HasPosition bool
	Queued      bool // see FreeAt
	ActiveJobs  int
	Capacity    int
	Position    geo.Point
	RadiusKm    float64
	Shifts      []Interval // none means no shift restriction
	Breaks      []Interval // spans inside shifts in which the technician takes no work
	// DecidingUntil is when the technician's pending offer expires (the
	// server's index keeps the expiry, so an offer that lapses frees them).
	DecidingUntil time.Time
	Traveller     geo.Traveller
	// FreeAt is when a technician at capacity is predicted to finish their
	// current job, and Queued whether they already hold a next one. With
	// chaining, such a technician may take one next job from where they are.
	FreeAt       time.Time
	Rating       float64 // 0..5, 0 when unrated
	OffersSent   int
	Accepted     int
	IdleSince    time.Time
	TechnicianID string
	Certs        map[string]Interval // skill → certified from, until
	// Bookings are the windowed jobs the technician holds whose hold has
	// not begun: they take no capacity now, but no new job may make the
	// technician late for one (see FitsBookings).
	Bookings []Booking
}

// Booking is a windowed job a technician holds ahead of its hold: where, and
// the window they must arrive in.
type Booking struct {
	Place      geo.Point
	Start, End time.Time
}

// Job is what matching knows of a request.
type Job struct {
	ID       string
	Skill    string
	Place    geo.Point
	Deadline time.Time // the SLA deadline (or window end)
	GiveUp   time.Time // when searching stops; the batch sends no one predicted to arrive later (zero: no limit)
	Opens    time.Time // a window's start (zero for ASAP requests)
	// Length is how long the technician is planned to stay on site: a job
	// taken before a booking must leave time for it and the drive on.
	Length time.Duration
	// Prefer is a technician to ask first when they suit (the one who made
	// the first visit of a follow-up); "" for none.
	Prefer string
	// ChainWithin lets a technician at capacity who finishes within this
	// time (and has no next job yet) be a candidate; 0 turns chaining off.
	ChainWithin time.Duration
}

// Ineligibility reasons, returned by Eligible.
const (
	ReasonOK            = ""
	ReasonNoCert        = "no current certification"
	ReasonUnavailable   = "not available"
	ReasonAtCapacity    = "at capacity"
	ReasonOutsideShift  = "outside shift"
	ReasonOutsideRadius = "outside travel radius"
	ReasonExcluded      = "declined, dropped or already offered"
	ReasonNoPosition    = "no known position"
	ReasonDeciding      = "deciding on another offer"
	ReasonOnBreak       = "on a break"
	ReasonLateForWindow = "would be late for a booked window"
)

// Eligible applies the hard rules of DESIGN.md; it returns ReasonOK or why not.
func Eligible(j Job, c Candidate, now time.Time) string { return eligible(&j, &c, true, now) }

// eligible is Eligible without copies, for the search's inner loop, which
// checks the certification itself when checkCert is false.
func eligible(j *Job, c *Candidate, checkCert bool, now time.Time) string {
	// Cheapest checks first: this runs for every technician a search meets.
	switch {
	case c.Excluded:
		return ReasonExcluded
	case !c.Available:
		return ReasonUnavailable
	case c.ActiveJobs >= c.Capacity && !chainable(j, c, now):
		return ReasonAtCapacity
	case c.Deciding || c.DecidingUntil.After(now):
		return ReasonDeciding
	case checkCert && !certified(c.Certs, j.Skill, now):
		return ReasonNoCert
	case !inShift(c.Shifts, now):
		return ReasonOutsideShift
	case inBreak(c.Breaks, now):
		return ReasonOnBreak
	case !c.HasPosition:
		return ReasonNoPosition
	case !geo.WithinM(c.Position, j.Place, c.RadiusKm*1000):
		return ReasonOutsideRadius
	}
	return ReasonOK
}

// EligibleWith is Eligible, then whether c, reaching j by the travel model,
// keeps every booking (ReasonLateForWindow if not): the whole rule set of a
// door that gives a technician a job.
func EligibleWith(j Job, c Candidate, eta geo.ETA, now time.Time) string {
	if why := eligible(&j, &c, true, now); why != ReasonOK {
		return why
	}
	if len(c.Bookings) > 0 && !fitsBookings(&j, &c, arrivalIn(&j, &c, eta, now), eta, now) {
		return ReasonLateForWindow
	}
	return ReasonOK
}

// FitsBookings reports whether c, arriving at j in d, keeps their bookings:
// every booking j would make them late for counts as a job held at once
// with it, and those with the jobs held now must stay under capacity. A job
// is done Length after the arrival (not before a window's start), and keeps
// a booking when the technician can drive on from it and arrive by the
// booking's window start, or (for a windowed j) when they can come from the
// booking's window end plus Length and arrive by j's deadline.
func FitsBookings(j Job, c Candidate, d time.Duration, eta geo.ETA, now time.Time) bool {
	return fitsBookings(&j, &c, d, eta, now)
}

func fitsBookings(j *Job, c *Candidate, d time.Duration, eta geo.ETA, now time.Time) bool {
	if len(c.Bookings) == 0 {
		return true
	}
	arrive := now.Add(d)
	if arrive.Before(j.Opens) {
		arrive = j.Opens
	}
	done := arrive.Add(j.Length)
	late := 0
	for _, b := range c.Bookings {
		before := !done.Add(eta.Estimate(j.Place, b.Place, c.Traveller)).After(b.Start)
		after := !j.Opens.IsZero() && !j.Deadline.IsZero() &&
			!b.End.Add(j.Length).Add(eta.Estimate(b.Place, j.Place, c.Traveller)).After(j.Deadline)
		if !before && !after {
			late++
		}
	}
	return late == 0 || c.ActiveJobs+late < c.Capacity
}

func chainable(j *Job, c *Candidate, now time.Time) bool {
	return j.ChainWithin > 0 && !c.Queued && !c.FreeAt.IsZero() && c.FreeAt.Sub(now) <= j.ChainWithin
}

// startFrom is when a candidate can set off: now, or when their current job
// ends for a chained one.
func startFrom(c *Candidate, now time.Time) time.Time {
	if c.ActiveJobs >= c.Capacity && c.FreeAt.After(now) {
		return c.FreeAt
	}
	return now
}

func inBreak(breaks []Interval, t time.Time) bool {
	for _, b := range breaks {
		if !t.Before(b.Start) && t.Before(b.End) {
			return true
		}
	}
	return false
}

func certified(certs map[string]Interval, skill string, t time.Time) bool {
	iv, ok := certs[skill]
	return ok && !t.Before(iv.Start) && t.Before(iv.End)
}

func inShift(shifts []Interval, t time.Time) bool {
	if len(shifts) == 0 {
		return true
	}
	for _, s := range shifts {
		if !t.Before(s.Start) && t.Before(s.End) {
			return true
		}
	}
	return false
}

// Scored is an eligible candidate with its prediction and score parts.
type Scored struct {
	Candidate
	DistanceM    float64
	ETA          time.Duration
	Arrival      time.Time
	OnTimeChance float64 // chance of accepting and arriving before the deadline
	AcceptRate   float64 // learned, smoothed
	IdleFor      time.Duration
}

// etaBucket treats arrivals this close as equal, so that chance of meeting
// the deadline, rating and idle time can break the tie.
const etaBucket = 2 * time.Minute

// acceptRate is the technician's smoothed acceptance rate: a newcomer counts
// as 3 of 4 offers accepted until their own record outweighs it.
func acceptRate(c *Candidate) float64 {
	return (float64(c.Accepted) + 3) / (float64(c.OffersSent) + 4)
}

// onTimeChance is the chance a technician accepts and arrives by the
// deadline: the acceptance rate times a logistic in the slack (σ ≈ 5 min, so
// arriving exactly at the deadline is an even chance).
func onTimeChance(rate float64, arrival, deadline time.Time) float64 {
	if deadline.IsZero() {
		return rate
	}
	slack := deadline.Sub(arrival).Minutes()
	return rate / (1 + math.Exp(-slack/5))
}

// Rank keeps the eligible candidates (EligibleWith) and orders them: predicted arrival first
// (within 2-minute buckets), then chance of meeting the deadline (within 5-point
// buckets), rating, and longest idle first. It does not modify cands.
func Rank(j Job, cands []Candidate, eta geo.ETA, now time.Time) []Scored {
	eligible := make([]Candidate, 0, len(cands))
	for _, c := range cands {
		if EligibleWith(j, c, eta, now) == ReasonOK {
			eligible = append(eligible, c)
		}
	}
	return rankEligible(j, eligible, eta, now)
}

// rankEligible is Rank for candidates already known to be eligible.
func rankEligible(j Job, cands []Candidate, eta geo.ETA, now time.Time) []Scored {
	out := make([]Scored, 0, len(cands))
	for _, c := range cands {
		out = append(out, score(j, c, eta, now))
	}
	slices.SortStableFunc(out, compareScored)
	return out
}

// score is an eligible candidate's prediction and score parts.
func score(j Job, c Candidate, eta geo.ETA, now time.Time) Scored {
	return scoreIn(&j, &c, arrivalIn(&j, &c, eta, now), now)
}

// scoreIn is score for a candidate whose arrival in d is known.
func scoreIn(j *Job, c *Candidate, d time.Duration, now time.Time) Scored {
	return scoreKnown(j, c, d, now, chanceIn(j, c, d, now))
}

// chances are a candidate's acceptance rate and chance of being on time.
type chances struct{ rate, onTime float64 }

func chanceIn(j *Job, c *Candidate, d time.Duration, now time.Time) chances {
	rate := acceptRate(c)
	return chances{rate, onTimeChance(rate, now.Add(d), j.Deadline)}
}

// scoreKnown is scoreIn with the chances already worked out.
func scoreKnown(j *Job, c *Candidate, d time.Duration, now time.Time, ch chances) Scored {
	return Scored{
		Candidate: *c, DistanceM: geo.DistanceM(c.Position, j.Place), ETA: d, Arrival: now.Add(d),
		OnTimeChance: ch.onTime, AcceptRate: ch.rate, IdleFor: idleFor(c, now),
	}
}

// keyKnown is keyOf(scoreKnown(j, c, d, now, ch)) without the copy.
func keyKnown(c *Candidate, d time.Duration, now time.Time, ch chances) rankKey {
	return rankKey{d / etaBucket, math.Round(ch.onTime * 20), c.Rating, idleFor(c, now), c.TechnicianID}
}

// idleFor is how long c has been idle at now.
func idleFor(c *Candidate, now time.Time) time.Duration {
	if !c.IdleSince.IsZero() && now.After(c.IdleSince) {
		return now.Sub(c.IdleSince)
	}
	return 0
}

// arrivalIn predicts how long until c is at the job: the drive, after the
// current job for a chained technician.
func arrivalIn(j *Job, c *Candidate, eta geo.ETA, now time.Time) time.Duration {
	d := eta.Estimate(c.Position, j.Place, c.Traveller)
	if start := startFrom(c, now); start.After(now) {
		d += start.Sub(now)
	}
	return d
}

func compareScored(a, b Scored) int { return compareScoredP(&a, &b) }

func compareScoredP(a, b *Scored) int { return compareKeys(keyOf(a), keyOf(b)) }

// rankKey is what ranking orders by.
type rankKey struct {
	bucket time.Duration // ETA in 2-minute buckets
	chance float64       // OnTimeChance in 5-point steps
	rating float64
	idle   time.Duration
	id     string
}

func keyOf(s *Scored) rankKey {
	return rankKey{s.ETA / etaBucket, math.Round(s.OnTimeChance * 20), s.Rating, s.IdleFor, s.TechnicianID}
}

func compareKeys(a, b rankKey) int {
	if c := cmp.Compare(a.bucket, b.bucket); c != 0 {
		return c
	}
	// Chances within 5 points count as equal, so rating and idle time matter.
	if c := cmp.Compare(b.chance, a.chance); c != 0 {
		return c
	}
	if c := cmp.Compare(b.rating, a.rating); c != 0 {
		return c
	}
	if c := cmp.Compare(b.idle, a.idle); c != 0 {
		return c
	}
	return cmp.Compare(a.id, b.id)
}

// Suits reports whether a ranked candidate is predicted to arrive by the
// job's deadline (always, for a job without one).
func Suits(j Job, sc Scored) bool {
	return j.Deadline.IsZero() || !sc.Arrival.After(j.Deadline)
}

// Prefer moves the job's preferred technician to the front of ranked when
// they are in it (so eligible) and suit it; otherwise ranked is unchanged. It
// does not modify ranked.
func Prefer(j Job, ranked []Scored) []Scored {
	if j.Prefer == "" {
		return ranked
	}
	for i, sc := range ranked {
		if sc.TechnicianID != j.Prefer {
			continue
		}
		if i == 0 || !Suits(j, sc) {
			return ranked
		}
		out := make([]Scored, 0, len(ranked))
		out = append(out, sc)
		out = append(out, ranked[:i]...)
		return append(out, ranked[i+1:]...)
	}
	return ranked
}

// AtRisk reports whether even the best candidate misses the deadline (or
// there is none).
func AtRisk(j Job, ranked []Scored) bool {
	if j.Deadline.IsZero() {
		return false
	}
	if len(ranked) == 0 {
		return true
	}
	best := ranked[0].Arrival
	for _, s := range ranked[1:] {
		if s.Arrival.Before(best) {
			best = s.Arrival
		}
	}
	return best.After(j.Deadline)
}

// ReachKm is how far a search needs to look: no one farther could arrive
// before the deadline at maxSpeedKmh on roads detour× longer, capped at maxKm.
// A request already past its deadline searches up to maxKm.
func ReachKm(j Job, now time.Time, maxSpeedKmh, detour, maxKm float64) float64 {
	if j.Deadline.IsZero() || !j.Deadline.After(now) {
		return maxKm
	}
	km := j.Deadline.Sub(now).Hours() * maxSpeedKmh / math.Max(detour, 1)
	return math.Min(km, maxKm)
}
