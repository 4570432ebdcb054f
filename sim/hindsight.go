package sim

import (
	"math"
	"sort"
	"time"

	"github.com/onsite/onsite/geo"
)

// Hindsight solves the day knowing everything in advance: every request's
// time, place and length, and how every technician would answer every offer
// (the same outcomes the strategies met), under the offline model of
// offline.go (no answer delays). It reports:
//
//   - UpperBound: no strategy, online or offline, can have more ASAP requests
//     on site within the SLA. It is the least of the Lagrangian bound over
//     per-technician sequences (bound.go) and MatchingBound.
//   - MatchingBound: the earlier bound, a maximum matching in a relaxation
//     of the day: each request needs a predecessor that could bring a
//     technician in time — a technician from their start (skill, shift,
//     acceptance, travel) or another request, finished at the earliest it
//     could possibly be (created + its service time, as if nobody had to
//     travel there) and left at the fastest speed. The predecessor need not
//     itself be served, so it saturates near 100 %.
//   - Clairvoyant: a feasible plan with the same knowledge, taking requests in
//     order and giving each to the technician who would accept and arrive
//     first.
//   - Offline: the clairvoyant plan improved by local search (offline.go):
//     never worse, and keeping every window it kept. The true optimum lies
//     between Offline and UpperBound.
//   - WithoutWindows, OfflineWithoutWindows: the same two plans with every
//     windowed request left out. The upper bound leaves windows out too (they
//     count for nothing in the share), so OfflineWithoutWindows is how close
//     a feasible plan comes to the bound on the bound's own problem; the
//     strategies keep windows, so they compare with Offline and Clairvoyant.
func Hindsight(sc Scenario, seed uint64) Bound {
	d := newDay(sc, seed)
	var asap []*simRequest
	for _, q := range d.requests {
		if q.asap {
			asap = append(asap, q)
		}
	}
	pl := newPlanner(d)
	b := Bound{Seed: seed, ASAP: len(asap)}
	plan := clairvoyantPlan(pl, d.requests)
	b.Clairvoyant, _ = plan.value()
	pl.improve(plan, d.requests)
	b.Offline, _ = plan.value()
	plan = clairvoyantPlan(pl, asap)
	b.WithoutWindows, _ = plan.value()
	pl.improve(plan, asap)
	b.OfflineWithoutWindows, _ = plan.value()
	b.MatchingBound = upperBound(d, asap)
	b.UpperBound = b.MatchingBound
	if lg, ok := newLagrangian(pl, asap); ok {
		b.UpperBound = min(b.UpperBound, int(math.Floor(lg.bound(b.OfflineWithoutWindows)+1e-6)))
	}
	b.UpperShare = frac(b.UpperBound, b.ASAP)
	b.MatchingShare = frac(b.MatchingBound, b.ASAP)
	b.ClairvoyShare = frac(b.Clairvoyant, b.ASAP)
	b.OfflineShare = frac(b.Offline, b.ASAP)
	b.WithoutWindowsShare = frac(b.WithoutWindows, b.ASAP)
	b.OfflineWithoutWindowsShare = frac(b.OfflineWithoutWindows, b.ASAP)
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

// clairvoyantPlan is the greedy plan: requests in order, each to the slot
// that would accept and arrive first. It serves only requests reached by
// their deadline.
func clairvoyantPlan(pl *offlinePlanner, requests []*simRequest) *offlinePlan {
	d := pl.d
	sla := d.sc.Dispatch.SLA.Duration
	lead := d.sc.Dispatch.WindowLead.Duration
	reqs := append([]*simRequest(nil), requests...)
	sort.SliceStable(reqs, func(i, j int) bool { return reqs[i].searchFrom(lead).Before(reqs[j].searchFrom(lead)) })
	plan := newPlan(d)
	freeAt := make([]time.Time, len(plan.slots))
	pos := make([]geo.Point, len(plan.slots))
	for i, s := range plan.slots {
		freeAt[i], pos[i] = s.t.shiftStart, s.t.home
	}
	for _, q := range reqs {
		from := q.searchFrom(lead)
		best := -1
		var bestArrival time.Time
		for i, s := range plan.slots {
			if !pl.wouldTake(s.t, q) {
				continue
			}
			start := maxTime(from, freeAt[i])
			if !start.Before(s.t.shiftEnd) {
				continue
			}
			arrival := start.Add(d.travel(pos[i], q.place, s.t))
			if !q.asap && arrival.Before(q.windowStart) {
				arrival = q.windowStart
			}
			if arrival.After(q.deadline(sla)) {
				continue
			}
			if best < 0 || arrival.Before(bestArrival) {
				best, bestArrival = i, arrival
			}
		}
		if best < 0 {
			continue
		}
		freeAt[best], pos[best] = bestArrival.Add(q.service), q.place
		plan.slots[best].seq = append(plan.slots[best].seq, q)
	}
	return plan
}
