package sim

import (
	"math"
	"sort"
	"time"

	"github.com/onsite/onsite/geo"
)

// The Lagrangian bound. The ASAP requests reached within the SLA in any
// strategy's day (or any plan of the offline model, see offline.go) form,
// per technician, a sequence the technician could serve one after the
// other. Relaxing "each request is served at most once" with a multiplier
// λ_q ≥ 0 per request leaves one problem per technician: the sequence of
// greatest Σ (1 − λ_q), a longest path over the requests in time order.
// Whatever λ, Σ λ_q + Σ_technicians (their best sequence) is at least what
// any plan serves, so every iteration of the subgradient method gives a
// valid bound and the least one is kept.
//
// What makes it an upper bound for the simulated strategies, which face
// answer delays, declines, expiries and drops:
//   - answers come with no delay (the clairvoyant plan makes the same
//     assumption), and a technician may take a request only if they would
//     respond, accept and not drop it (wouldTake);
//   - a request is accepted while the technician is on shift and the request
//     searching, possibly while busy (as chaining allows), and the technician
//     sets off when both are done: no strategy can do earlier;
//   - windowed requests count for nothing in the share, and leaving one out
//     never delays the rest (the travel model obeys the triangle
//     inequality), so the bound leaves them out;
//   - the per-technician paths need not be elementary (a request may appear
//     twice in one technician's path, when its jobs are short), and a
//     technician idle for boundGap or more before a request may reach it
//     from the nearest place they could be (home or any request they could
//     take): both only loosen the bound, and make it fast;
//   - capacity above one (a technician travelling to two jobs at once) is
//     not modelled: a day with such technicians gets the matching bound.

// boundGap: a technician free this long before a request is created is
// allowed to come from wherever suits them best (see above).
const boundGap = 30 * time.Minute

// boundIterations bounds the subgradient method (the result stays a valid
// bound at every iteration, and is the same for a seed).
const boundIterations = 60

// boundGrid rounds arrivals down to this many seconds, so that a request
// holds few labels (an earlier arrival only loosens the bound).
const boundGrid = 60.0

// boundWork caps the labels the subgradient method creates over a day, so
// that a big day stays fast; an iteration cut short is dropped, so the bound
// stays valid, and the cap counts work, not time, so it is the same for a
// seed.
const boundWork = 5_000_000

// boundEps is the slack of the deadline check in float seconds: it keeps
// rounding from cutting a feasible arrival, and only loosens the bound.
const boundEps = 0.01

// techPaths is one technician's longest-path problem over the ASAP requests
// they could take.
type techPaths struct {
	reqs    []int     // indices into the ASAP list, by creation
	created []float64 // seconds from the day's start
	dead    []float64
	service []float64
	home    []float64 // travel from home
	minIn   []float64 // the least travel from anywhere the technician could be
	start   float64   // shift start
	secKm   float64   // travel seconds per km (detour included)
}

// lagrangian holds the day's ASAP requests and every technician's problem.
type lagrangian struct {
	work  int // labels the method may still create (see boundWork)
	n     int
	distK []float32 // n×n km (detour included) between ASAP requests
	techs []*techPaths
	sla   float64
}

// newLagrangian builds the problems; ok is false when some technician has
// capacity above one.
func newLagrangian(pl *offlinePlanner, asap []*simRequest) (*lagrangian, bool) {
	d := pl.d
	n := len(asap)
	lg := &lagrangian{work: boundWork, n: n, distK: make([]float32, n*n), sla: d.sc.Dispatch.SLA.Seconds()}
	detour := max(d.sc.Behaviour.Detour, 1)
	for i, p := range asap {
		for j := i + 1; j < n; j++ {
			km := float32(geo.DistanceM(p.place, asap[j].place) / 1000 * detour)
			lg.distK[i*n+j], lg.distK[j*n+i] = km, km
		}
	}
	sec := func(t time.Time) float64 { return t.Sub(d.start).Seconds() }
	for _, t := range d.techs {
		if t.capacity > 1 {
			return nil, false
		}
		speed := t.speed
		if speed <= 0 {
			speed = 25 // as geo.StraightLine
		}
		tp := &techPaths{start: sec(t.shiftStart), secKm: 3600 / speed}
		end := sec(t.shiftEnd)
		for i, q := range asap {
			c := sec(q.created)
			if !pl.wouldTake(t, q) || max(c, tp.start) >= end || max(c, tp.start) > c+lg.sla+boundEps {
				continue
			}
			tp.reqs = append(tp.reqs, i)
			tp.created = append(tp.created, c)
			tp.dead = append(tp.dead, c+lg.sla)
			tp.service = append(tp.service, q.service.Seconds())
			tp.home = append(tp.home, geo.DistanceM(t.home, q.place)/1000*detour*tp.secKm)
		}
		tp.minIn = append([]float64(nil), tp.home...)
		for a, i := range tp.reqs {
			for _, j := range tp.reqs {
				if i != j {
					tp.minIn[a] = min(tp.minIn[a], float64(lg.distK[j*n+i])*tp.secKm)
				}
			}
		}
		if len(tp.reqs) > 0 {
			lg.techs = append(lg.techs, tp)
		}
	}
	return lg, true
}

type pathLabel struct {
	k      int // position in techPaths.reqs
	at     float64
	profit float64
	parent int // label index, -1 from home
}

type pathEvent struct {
	at     float64
	kind   int     // pathRelease < pathEntry < pathLabelEv at equal times
	profit float64 // labels: the most profitable first at equal times
	i      int     // label index (release, label) or position (entry)
}

const (
	pathRelease = iota // a label's technician has been free for boundGap
	pathEntry          // a request may be reached from anywhere (after boundGap idle)
	pathLabelEv        // a label to settle
)

type pathHeap []pathEvent

func (h pathHeap) less(a, b int) bool {
	if h[a].at != h[b].at {
		return h[a].at < h[b].at
	}
	if h[a].kind != h[b].kind {
		return h[a].kind < h[b].kind
	}
	return h[a].profit > h[b].profit
}

func (h *pathHeap) push(e pathEvent) {
	*h = append(*h, e)
	i := len(*h) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !h.less(i, p) {
			break
		}
		(*h)[i], (*h)[p] = (*h)[p], (*h)[i]
		i = p
	}
}

func (h *pathHeap) pop() pathEvent {
	old := *h
	top := old[0]
	n := len(old) - 1
	old[0] = old[n]
	*h = old[:n]
	i := 0
	for {
		l, r, m := 2*i+1, 2*i+2, i
		if l < n && h.less(l, m) {
			m = l
		}
		if r < n && h.less(r, m) {
			m = r
		}
		if m == i {
			return top
		}
		(*h)[i], (*h)[m] = (*h)[m], (*h)[i]
		i = m
	}
}

// best is the technician's greatest Σ (1 − λ_q) over sequences (0: none),
// and adds one to used[q] for every request on that sequence. ok is false
// when the work left ran out.
func (lg *lagrangian) best(tp *techPaths, lambda []float64, used []int) (float64, bool) {
	gap := boundGap.Seconds()
	profit := func(k int) float64 { return 1 - lambda[tp.reqs[k]] }
	var labels []pathLabel
	var h pathHeap
	settled := make([]float64, len(tp.reqs))
	// pending is, per request, the most profitable label pushed so far and
	// when it arrives: a label no better and no sooner need not be pushed.
	pendF := make([]float64, len(tp.reqs))
	pendAt := make([]float64, len(tp.reqs))
	for k := range tp.reqs {
		if profit(k) <= 0 {
			continue
		}
		at := max(tp.created[k], tp.start) + tp.home[k]
		if at <= tp.dead[k]+boundEps {
			labels = append(labels, pathLabel{k: k, at: at, profit: profit(k), parent: -1})
			h.push(pathEvent{at: at, kind: pathLabelEv, profit: labels[len(labels)-1].profit, i: len(labels) - 1})
		}
		h.push(pathEvent{at: tp.created[k], kind: pathEntry, i: k})
	}
	pool, poolFrom := 0.0, -1
	top, topLabel := 0.0, -1
	for len(h) > 0 {
		if len(labels) > lg.work {
			return 0, false
		}
		e := h.pop()
		switch e.kind {
		case pathRelease:
			if l := labels[e.i]; l.profit > pool {
				pool, poolFrom = l.profit, e.i
			}
		case pathEntry:
			k := e.i
			if pool <= 0 {
				continue
			}
			at := max(tp.created[k], tp.start) + tp.minIn[k]
			if f := pool + profit(k); at <= tp.dead[k]+boundEps && f > settled[k] {
				labels = append(labels, pathLabel{k: k, at: at, profit: f, parent: poolFrom})
				h.push(pathEvent{at: at, kind: pathLabelEv, profit: labels[len(labels)-1].profit, i: len(labels) - 1})
			}
		case pathLabelEv:
			l := labels[e.i]
			if l.profit <= settled[l.k] {
				continue // an earlier arrival did at least as well
			}
			settled[l.k] = l.profit
			if l.profit > top {
				top, topLabel = l.profit, e.i
			}
			done := l.at + tp.service[l.k]
			h.push(pathEvent{at: done + gap, kind: pathRelease, i: e.i})
			from := tp.reqs[l.k] * lg.n
			lo := sort.SearchFloat64s(tp.dead, done-boundEps)
			for j := lo; j < len(tp.reqs) && tp.created[j] < done+gap; j++ {
				pj := profit(j)
				if pj <= 0 || j == l.k {
					continue
				}
				f := l.profit + pj
				if f <= settled[j] {
					continue
				}
				at := max(tp.created[j], done) + float64(lg.distK[from+tp.reqs[j]])*tp.secKm
				if at > tp.dead[j]+boundEps {
					continue
				}
				at = math.Floor(at/boundGrid) * boundGrid
				if f <= pendF[j] && at >= pendAt[j] {
					continue
				}
				if f > pendF[j] {
					pendF[j], pendAt[j] = f, at
				}
				labels = append(labels, pathLabel{k: j, at: at, profit: f, parent: e.i})
				h.push(pathEvent{at: at, kind: pathLabelEv, profit: labels[len(labels)-1].profit, i: len(labels) - 1})
			}
		}
	}
	lg.work -= len(labels)
	for i := topLabel; i >= 0; i = labels[i].parent {
		used[tp.reqs[labels[i].k]]++
	}
	return top, true
}

// bound runs the subgradient method from λ = 0 and returns the least
// Lagrangian value met. lower is the size of a feasible plan (the step
// target); the method stops early once the bound proves that plan optimal.
func (lg *lagrangian) bound(lower int) float64 {
	lambda := make([]float64, lg.n)
	used := make([]int, lg.n)
	best := math.Inf(1)
	theta, stale := 1.0, 0
	for range boundIterations {
		clear(used)
		l := 0.0
		for _, x := range lambda {
			l += x
		}
		for _, tp := range lg.techs {
			v, ok := lg.best(tp, lambda, used)
			if !ok {
				return best
			}
			l += v
		}
		if l < best-1e-9 {
			best, stale = l, 0
		} else if stale++; stale >= 3 {
			theta, stale = theta/2, 0
		}
		if math.Floor(best+1e-6) <= float64(lower) {
			break
		}
		norm := 0.0
		for q, x := range lambda {
			g := 1 - float64(used[q])
			if x == 0 && g > 0 {
				continue // the projection keeps λ at 0
			}
			norm += g * g
		}
		if norm == 0 {
			break
		}
		step := theta * (l - float64(lower)) / norm
		for q := range lambda {
			lambda[q] = max(0, lambda[q]-step*(1-float64(used[q])))
		}
	}
	return best
}
