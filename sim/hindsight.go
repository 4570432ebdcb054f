package sim

import (
	"sort"
	"time"

	"github.com/onsite/onsite/geo"
)

// Hindsight solves the day knowing everything in advance: every request's
// time, place and length, and how every technician would answer every offer
// (the same outcomes the strategies met). It reports two figures:
//
//   - UpperBound: no strategy, online or offline, can have more ASAP requests
//     on site within the SLA. It is a maximum matching in a relaxation of the
//     day: each request needs a predecessor that could bring a technician in
//     time — a technician from their start (skill, shift, acceptance, travel)
//     or another request, finished at the earliest it could possibly be
//     (created + its service time, as if nobody had to travel there) and left
//     at the fastest speed. Every real schedule is such a matching, so the
//     matching's size bounds them all; the relaxation makes it loose when
//     chains matter.
//   - Clairvoyant: a feasible plan with the same knowledge, taking requests in
//     order and giving each to the technician who would accept and arrive
//     first. Any strategy can be compared with it; the true optimum lies
//     between Clairvoyant and UpperBound.
//   - WithoutWindows: the same plan with every windowed request left out. The
//     upper bound may leave windows out too (it only counts ASAP requests),
//     so this is how close a feasible plan comes to the bound on the bound's
//     own problem; the strategies keep windows, so they compare with
//     Clairvoyant.
func Hindsight(sc Scenario, seed uint64) Bound {
	d := newDay(sc, seed)
	var asap []*simRequest
	for _, q := range d.requests {
		if q.asap {
			asap = append(asap, q)
		}
	}
	b := Bound{Seed: seed, ASAP: len(asap)}
	b.UpperBound = upperBound(d, asap)
	b.Clairvoyant = clairvoyant(d, d.requests)
	b.WithoutWindows = clairvoyant(d, asap)
	b.UpperShare = frac(b.UpperBound, b.ASAP)
	b.ClairvoyShare = frac(b.Clairvoyant, b.ASAP)
	b.WithoutWindowsShare = frac(b.WithoutWindows, b.ASAP)
	return b
}

func (d *day) travel(from, to geo.Point, t *simTech) time.Duration {
	return geo.StraightLine{Detour: d.sc.Behaviour.Detour}.Estimate(from, to, geo.Traveller{Mode: t.mode, SpeedKmh: t.speed})
}

func (d *day) wouldTake(t *simTech, q *simRequest) bool {
	if !contains(t.skills, q.skill) {
		return false
	}
	a := d.answer(t, q)
	return a.responds && a.accepts && !a.drops
}

// upperBound is the matching bound over the day's ASAP requests, asap.
func upperBound(d *day, asap []*simRequest) int {
	sla := d.sc.Dispatch.SLA.Duration
	fastest := &simTech{mode: "car"}
	for _, t := range d.techs {
		fastest.speed = max(fastest.speed, t.speed)
	}
	// Left side: technician slots (one per unit of capacity), then every
	// request as a possible predecessor. Right side: ASAP requests.
	var adj [][]int
	for _, t := range d.techs {
		var edges []int
		for j, q := range asap {
			if !d.wouldTake(t, q) {
				continue
			}
			start := maxTime(q.created, t.shiftStart)
			if start.Before(t.shiftEnd) && !start.Add(d.travel(t.home, q.place, t)).After(q.deadline(sla)) {
				edges = append(edges, j)
			}
		}
		for range t.capacity {
			adj = append(adj, edges)
		}
	}
	for _, p := range d.requests {
		earliest := p.created
		if !p.asap && p.windowStart.After(earliest) {
			earliest = p.windowStart
		}
		done := earliest.Add(p.service)
		var edges []int
		for j, q := range asap {
			if q == p {
				continue
			}
			if !done.Add(d.travel(p.place, q.place, fastest)).After(q.deadline(sla)) {
				edges = append(edges, j)
			}
		}
		adj = append(adj, edges)
	}
	return maxMatching(adj, len(asap))
}

// maxMatching is Hopcroft–Karp on a bipartite graph given as adjacency lists
// from the left side to right indices < nRight.
func maxMatching(adj [][]int, nRight int) int {
	const inf = int(^uint(0) >> 1)
	matchL := make([]int, len(adj))
	matchR := make([]int, nRight)
	for i := range matchL {
		matchL[i] = -1
	}
	for i := range matchR {
		matchR[i] = -1
	}
	dist := make([]int, len(adj))
	bfs := func() bool {
		var queue []int
		found := false
		for u := range adj {
			if matchL[u] < 0 {
				dist[u] = 0
				queue = append(queue, u)
			} else {
				dist[u] = inf
			}
		}
		for len(queue) > 0 {
			u := queue[0]
			queue = queue[1:]
			for _, v := range adj[u] {
				w := matchR[v]
				if w < 0 {
					found = true
				} else if dist[w] == inf {
					dist[w] = dist[u] + 1
					queue = append(queue, w)
				}
			}
		}
		return found
	}
	var dfs func(u int) bool
	dfs = func(u int) bool {
		for _, v := range adj[u] {
			w := matchR[v]
			if w < 0 || (dist[w] == dist[u]+1 && dfs(w)) {
				matchL[u], matchR[v] = v, u
				return true
			}
		}
		dist[u] = inf
		return false
	}
	size := 0
	for bfs() {
		for u := range adj {
			if matchL[u] < 0 && dfs(u) {
				size++
			}
		}
	}
	return size
}

// clairvoyant plans the given requests of the day (all, or some) and counts
// the ASAP ones on site in time.
func clairvoyant(d *day, requests []*simRequest) int {
	sla := d.sc.Dispatch.SLA.Duration
	lead := d.sc.Dispatch.WindowLead.Duration
	reqs := append([]*simRequest(nil), requests...)
	sort.SliceStable(reqs, func(i, j int) bool { return reqs[i].searchFrom(lead).Before(reqs[j].searchFrom(lead)) })
	type slot struct {
		t      *simTech
		freeAt time.Time
		pos    geo.Point
	}
	var slots []*slot
	for _, t := range d.techs {
		for range t.capacity {
			slots = append(slots, &slot{t: t, freeAt: t.shiftStart, pos: t.home})
		}
	}
	onTime := 0
	for _, q := range reqs {
		from := q.searchFrom(lead)
		var best *slot
		var bestArrival time.Time
		for _, s := range slots {
			if !d.wouldTake(s.t, q) {
				continue
			}
			start := maxTime(from, s.freeAt)
			if !start.Before(s.t.shiftEnd) {
				continue
			}
			arrival := start.Add(d.travel(s.pos, q.place, s.t))
			if !q.asap && arrival.Before(q.windowStart) {
				arrival = q.windowStart
			}
			if arrival.After(q.deadline(sla)) {
				continue
			}
			if best == nil || arrival.Before(bestArrival) {
				best, bestArrival = s, arrival
			}
		}
		if best == nil {
			continue
		}
		best.freeAt, best.pos = bestArrival.Add(q.service), q.place
		if q.asap {
			onTime++
		}
	}
	return onTime
}
