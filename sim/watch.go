package sim

import (
	"reflect"
	"slices"
	"time"

	"github.com/onsite/onsite/dispatch/match"
	"github.com/onsite/onsite/geo"
)

// The simulator is incremental: a waiting request is searched again only
// when a technician may have become eligible for it. A search returns only
// eligible technicians with the request's skill, so while none can be
// eligible it finds no one, whatever the time and reach.
//
// A technician's eligibility changes only when the pool's copy of them
// changes (run.changed is told of every change) or when one of its clocks
// turns: a busy technician becomes chainable, an expired offer's exclusion
// ends, a certification, shift or decision starts or ends. So each watched
// request keeps the technicians who may be eligible now (maybe) and, for
// everyone else, the earliest such clock (until): before until, a search
// can find only someone in maybe.

// reqWatch is what a request knows of who may be eligible for it.
type reqWatch struct {
	watched bool         // in run.watching; until and maybe are kept true
	until   time.Time    // no one outside maybe can be eligible before it
	maybe   []*techState // those who may be eligible now
}

// withoutPool answers q's search without the pool when it can: no one, if
// no one is eligible; or, when at most want are and all lie within the
// widest search's rings, what search would return: each search then finds
// exactly the eligible within its rings, in match.Rank's order.
func (r *run) withoutPool(q *reqState, want int) ([]match.Scored, bool) {
	if !q.w.watched || !r.now.Before(q.w.until) {
		r.rewatch(q)
	}
	j := r.job(q)
	found := r.found[:0]
	defer func() { r.found = found[:0] }()
	keep := q.w.maybe[:0]
	for i, t := range q.w.maybe {
		if len(found) > want {
			keep = append(keep, q.w.maybe[i:]...) // too many: the pool searches
			break
		}
		if at := r.eligibleFrom(q, j, t); at.After(r.now) {
			q.w.until = minTime(q.w.until, at)
			continue
		}
		keep = append(keep, t)
		found = append(found, t.cand)
	}
	clear(q.w.maybe[len(keep):])
	q.w.maybe = keep
	if len(found) == 0 {
		return nil, true
	}
	if len(found) > want {
		return nil, false
	}
	// Every one within the widest search's rings: it would find exactly
	// them; the first search finds those within its reach's rings.
	reach := match.ReachKm(j, r.now, 60, r.eta.Detour, maxSearchKm)
	maxK := r.maxRing(reach)
	near := r.near[:0]
	defer func() { r.near = near[:0] }()
	for i, t := range q.w.maybe {
		k := r.ring(q.cell, t.cell)
		if k < 0 || k > r.maxK {
			return nil, false
		}
		if k <= maxK {
			near = append(near, found[i])
		}
	}
	list := match.Rank(j, near, r.eta, r.now)
	if match.AtRisk(j, list) && reach < maxSearchKm && len(near) < len(found) {
		list = match.Rank(j, found, r.eta, r.now)
	}
	return list, true
}

// maxRing is geo.MaxRing at the city's resolution for km up to
// maxSearchKm, from a table of its ring distances.
func (r *run) maxRing(km float64) int {
	k := 1
	for k+1 < len(r.ringMin) && r.ringMin[k+1] <= km {
		k++
	}
	return min(k, r.maxK)
}

// ring is the grid distance between two cells (-1 if H3 has none).
func (r *run) ring(a, b geo.Cell) int {
	k, ok := r.rings[[2]geo.Cell{a, b}]
	if !ok {
		d, found := geo.GridDistance(a, b)
		if k = d; !found {
			k = -1
		}
		r.rings[[2]geo.Cell{a, b}] = k
	}
	return k
}

// rewatch looks at every technician with q's skill.
func (r *run) rewatch(q *reqState) {
	if !q.w.watched {
		q.w.watched = true
		r.watching[q.skill] = append(r.watching[q.skill], q)
	}
	j := r.job(q)
	q.w.until, q.w.maybe = r.never, q.w.maybe[:0]
	for _, t := range r.bySkill[q.skill] {
		if at := r.eligibleFrom(q, j, t); at.After(r.now) {
			q.w.until = minTime(q.w.until, at)
		} else {
			q.w.maybe = append(q.w.maybe, t)
		}
	}
}

// changed is called after every change to t in the pool: the requests
// watched for t's skills learn when t may be eligible for them.
func (r *run) changed(t *techState) {
	if len(t.skills) == 0 {
		return
	}
	// Unavailable, at capacity, deciding, off shift or without a position:
	// ineligible for every request (the rules before and after these look
	// at the job), until the pool changes t or one of its clocks turns.
	t.blockedUntil = time.Time{}
	probe := match.Job{Skill: t.skills[0], Place: t.cand.Position, ChainWithin: r.chain}
	switch match.Eligible(probe, t.cand, r.now) {
	case match.ReasonUnavailable, match.ReasonAtCapacity, match.ReasonDeciding, match.ReasonOutsideShift, match.ReasonNoPosition:
		t.blockedUntil = r.clocks(t.cand, t.skills)
	}
	for _, s := range t.skills {
		list := r.watching[s]
		keep := list[:0]
		for _, q := range list {
			if q.dispatched() {
				q.w = reqWatch{} // never searched again
				continue
			}
			keep = append(keep, q)
			if !r.now.Before(q.w.until) {
				continue // looked at afresh before the next search
			}
			at := r.eligibleFrom(q, r.job(q), t)
			i := slices.Index(q.w.maybe, t)
			switch {
			case at.After(r.now):
				q.w.until = minTime(q.w.until, at)
				if i >= 0 {
					q.w.maybe = slices.Delete(q.w.maybe, i, i+1)
				}
			case i < 0:
				q.w.maybe = append(q.w.maybe, t)
			}
		}
		clear(list[len(keep):])
		r.watching[s] = keep
	}
}

// eligibleFrom is the earliest time from now at which t may be eligible for
// q (j) if the pool does not change t: now if it is eligible now, else the
// next turn of one of eligibility's clocks.
func (r *run) eligibleFrom(q *reqState, j match.Job, t *techState) time.Time {
	if r.now.Before(t.blockedUntil) {
		return t.blockedUntil
	}
	c := &t.cand
	if match.Eligible(j, *c, r.now) == match.ReasonOK && !r.excluded(q, c.TechnicianID) {
		return r.now
	}
	next := r.clocks(*c, []string{j.Skill})
	if at, ok := q.expiredAt[c.TechnicianID]; ok {
		next = r.later(next, at.Add(expiredFor))
	}
	return next
}

// clocks is the next time after now at which c's eligibility for a job
// with one of skills may turn by itself: chainable, decision over,
// certification or shift started (an end only makes one ineligible).
func (r *run) clocks(c match.Candidate, skills []string) time.Time {
	next := r.never
	if r.chain > 0 && !c.FreeAt.IsZero() {
		next = r.later(next, c.FreeAt.Add(-r.chain))
	}
	next = r.later(next, c.DecidingUntil)
	for _, s := range skills {
		if iv, ok := c.Certs[s]; ok {
			next = r.later(next, iv.Start)
		}
	}
	for _, s := range c.Shifts {
		next = r.later(next, s.Start)
	}
	return next
}

// later is next, or at if at is after now and before next.
func (r *run) later(next, at time.Time) time.Time {
	if at.After(r.now) && at.Before(next) {
		return at
	}
	return next
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// check is list, compared with the pool's search when verifying.
func (r *run) check(q *reqState, want int, list []match.Scored) []match.Scored {
	if r.verify {
		if full := r.search(q, want); len(full) != len(list) || (len(list) > 0 && !reflect.DeepEqual(full, list)) {
			r.mismatches++
		}
	}
	return list
}
