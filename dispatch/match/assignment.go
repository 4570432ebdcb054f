package match

import (
	"container/heap"
	"math"
	"slices"
	"time"
)

// This file is part of the pure core: the batched assignment.

// SolveAssignment solves the rectangular assignment problem: it picks at most one
// column per row and one row per column so that the number of assigned rows
// is as large as possible and, among those, the total cost is least. A cost
// of +Inf (or any other that is not a finite number) forbids a pair. It
// returns, per row, the column or -1.
//
// No well-kept Go library for it was reachable here (the Go assignment
// packages are not on the module proxy, gonum has none), so it is written
// out (solveSparse) and tested against brute force.
func SolveAssignment(cost [][]float64) []int {
	arcs := make([][]arc, len(cost))
	cols := 0
	for i, row := range cost {
		cols = max(cols, len(row))
		for j, c := range row {
			if finite(c) {
				arcs[i] = append(arcs[i], arc{col: j, cost: c})
			}
		}
	}
	return solveSparse(arcs, cols)
}

func finite(c float64) bool { return !math.IsInf(c, 0) && !math.IsNaN(c) }

// arc is an allowed pair of a row with a column, and its cost.
type arc struct {
	col  int
	cost float64
}

// solveSparse is SolveAssignment for rows given as their allowed arcs, with
// cols columns. It is the Hungarian method with potentials, each row added
// by a shortest augmenting path (Dijkstra over the allowed arcs only, as in
// Jonker–Volgenant), so its time grows with the arcs, not rows × columns: a
// batch of thousands of requests with 5 candidates each stays sparse. Every
// row also gets a private "unassigned" column that costs more than any
// assignment's total, so the fewest rows are left unassigned first and the
// least total cost decides among those. Callers give only finite costs.
func solveSparse(rows [][]arc, cols int) []int {
	n := len(rows)
	out := make([]int, n)
	for i := range out {
		out[i] = -1
	}
	// Shift costs to be non-negative (the same for every arc, so the order
	// of assignments with the same number of pairs is kept), and size the
	// cost of leaving a row unassigned.
	lowest, highest := math.Inf(1), math.Inf(-1)
	for _, r := range rows {
		for _, a := range r {
			lowest, highest = min(lowest, a.cost), max(highest, a.cost)
		}
	}
	if math.IsInf(lowest, 1) {
		return out
	}
	// No assignment has more than min(n, cols) pairs, each at most
	// highest-lowest after the shift. (A sum of all arcs would do too, but
	// the potentials grow to this size, and a smaller one keeps precision.)
	unassigned := 1 + float64(min(n, cols))*(highest-lowest)
	if !finite(unassigned) {
		return out
	}
	m := cols + n // column cols+i is row i's own "unassigned" column
	arcsOf := func(i int, visit func(col int, cost float64)) {
		for _, a := range rows[i] {
			visit(a.col, a.cost-lowest)
		}
		visit(cols+i, unassigned)
	}
	u := make([]float64, n)    // row potentials
	v := make([]float64, m)    // column potentials
	rowOf := make([]int, m)    // row matched to a column, -1 if free
	colOf := make([]int, n)    // column matched to a row
	dist := make([]float64, m) // shortest reduced distance this round
	via := make([]int, m)      // column before this one on the path, -1 from the new row
	done := make([]bool, m)    // distance final this round
	for j := range rowOf {
		rowOf[j] = -1
		dist[j] = math.Inf(1)
	}
	var touched []int   // columns with a distance this round, to reset
	var finalized []int // matched columns whose distance became final this round
	h := &distHeap{}
	for r := range n {
		for _, j := range touched {
			dist[j], done[j] = math.Inf(1), false
		}
		touched, finalized, *h = touched[:0], finalized[:0], (*h)[:0]
		relax := func(from, row int, base float64) {
			arcsOf(row, func(j int, c float64) {
				if done[j] {
					return
				}
				if d := base + c - u[row] - v[j]; d < dist[j] {
					if math.IsInf(dist[j], 1) {
						touched = append(touched, j)
					}
					dist[j], via[j] = d, from
					heap.Push(h, distItem{col: j, dist: d})
				}
			})
		}
		relax(-1, r, 0)
		free := -1
		for h.Len() > 0 {
			it := heap.Pop(h).(distItem)
			j := it.col
			if done[j] || it.dist > dist[j] {
				continue
			}
			done[j] = true
			if rowOf[j] < 0 {
				free = j
				break
			}
			finalized = append(finalized, j)
			relax(j, rowOf[j], dist[j])
		}
		// Potentials: as the dense method's running deltas would leave them.
		total := dist[free]
		u[r] += total
		for _, j := range finalized {
			v[j] -= total - dist[j]
			u[rowOf[j]] += total - dist[j]
		}
		// Augment along the path back to the new row.
		for j := free; j >= 0; {
			prev := via[j]
			row := r
			if prev >= 0 {
				row = rowOf[prev]
			}
			rowOf[j], colOf[row] = row, j
			j = prev
		}
	}
	for i, j := range colOf {
		if j < cols {
			out[i] = j
		}
	}
	return out
}

type distItem struct {
	col  int
	dist float64
}

// distHeap is a min-heap of columns by tentative distance.
type distHeap []distItem

func (h distHeap) Len() int           { return len(h) }
func (h distHeap) Less(i, j int) bool { return h[i].dist < h[j].dist }
func (h distHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *distHeap) Push(x any)        { *h = append(*h, x.(distItem)) }
func (h *distHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}

// LatePenaltyMinutes is the cost of a predicted arrival after the deadline,
// on top of the arrival itself: one late request costs more than any
// realistic sum of on-time arrival minutes in a batch.
const LatePenaltyMinutes = 10_000

// BatchPair is one request given to one technician by a batch.
type BatchPair struct {
	JobIndex int
	Scored
}

// BatchPolicy is how the batch weighs a pair beyond its predicted arrival.
type BatchPolicy struct {
	// Urgency adds, per minute a request has left before its deadline (counted
	// up to UrgencyCap), this many minutes to the cost of its pairs. When
	// requests outnumber the technicians who can reach them in time, those
	// with the least time left are served first (earliest deadline first);
	// the others can still be served by a technician who frees up later.
	// When technicians are plentiful it changes nothing: every request gets
	// its best one. 0 turns it off; a cap of 0 counts all the time left.
	Urgency    float64
	UrgencyCap time.Duration
	// AnswerTime is how long people typically take to answer an offer
	// (AnswerTime learns it): a technician is on site no sooner than that
	// plus the drive, which is what the give-up time is checked against.
	AnswerTime time.Duration
	// MaxWait: a technician who would arrive more than this before a
	// window opens is not sent yet (they would stand idle at the door while
	// others need them); the window is assigned closer to its start.
	MaxWait time.Duration
}

// DefaultMaxWait is BatchPolicy.MaxWait in the server and the simulator.
const DefaultMaxWait = 5 * time.Minute

// AnswerTime is the median of recent answer delays (0 when there are none
// yet), for BatchPolicy.AnswerTime.
func AnswerTime(recent []time.Duration) time.Duration {
	if len(recent) == 0 {
		return 0
	}
	s := slices.Clone(recent)
	slices.Sort(s)
	return s[len(s)/2]
}

// minOfferTimeout is the shortest time an offer is ever open.
const minOfferTimeout = 15 * time.Second

// BatchOfferTimeout is how long a batch offer stays open: the configured
// timeout, cut to the time in which a yes still brings the technician (eta
// away) to the request by its give-up time, but not under 15 s (unless the
// configured timeout is shorter). A later yes is of no use, so the request is
// better offered onwards by then; an earlier one is worth waiting for, so the
// offer is not cut any shorter (people take about 90 s to answer, and a
// slow answer may well be a yes). A zero giveUp keeps the configured timeout.
func BatchOfferTimeout(configured, eta time.Duration, giveUp, now time.Time) time.Duration {
	if giveUp.IsZero() {
		return configured
	}
	return min(configured, max(giveUp.Sub(now)-eta, minOfferTimeout))
}

// AssignBatch gives pending jobs to distinct technicians at least cost: cost
// is the predicted arrival in minutes, plus a steep penalty when it misses
// the deadline, divided by the chance the technician accepts (an offer that
// is likely refused costs the time it wastes), plus the policy's urgency
// term. A pair predicted to arrive (answer and drive) after the job's give-up
// time (when the platform stops searching for it) is never made: the
// technician is kept for someone they can reach in time, and a deployment
// that wants late arrivals dispatched sets its give-up time past the SLA. Nor
// is one that would wait at a window's door longer than the policy allows.
// candidates[i] holds job i's ranked candidates (short lists keep the problem
// small). Jobs left without a technician wait for the next batch.
func AssignBatch(jobs []Job, candidates [][]Scored, now time.Time, policy BatchPolicy) []BatchPair {
	colOf := map[string]int{}
	var techAt []string // the technician of each column
	rows := make([][]arc, len(jobs))
	for i, list := range candidates {
		for _, sc := range list {
			c := pairCost(jobs[i], sc, now, policy)
			if !finite(c) {
				continue
			}
			col, ok := colOf[sc.TechnicianID]
			if !ok {
				col = len(techAt)
				colOf[sc.TechnicianID] = col
				techAt = append(techAt, sc.TechnicianID)
			}
			rows[i] = append(rows[i], arc{col: col, cost: c})
		}
	}
	var out []BatchPair
	for i, col := range solveSparse(rows, len(techAt)) {
		if col < 0 {
			continue
		}
		for _, sc := range candidates[i] {
			if sc.TechnicianID == techAt[col] {
				out = append(out, BatchPair{JobIndex: i, Scored: sc})
				break
			}
		}
	}
	return out
}

func pairCost(j Job, sc Scored, now time.Time, policy BatchPolicy) float64 {
	if !j.GiveUp.IsZero() && sc.Arrival.Add(policy.AnswerTime).After(j.GiveUp) {
		return math.Inf(1)
	}
	if policy.MaxWait > 0 && !j.Opens.IsZero() && j.Opens.Sub(sc.Arrival) > policy.MaxWait {
		return math.Inf(1)
	}
	c := sc.ETA.Minutes()
	if !j.Deadline.IsZero() && sc.Arrival.After(j.Deadline) {
		c += LatePenaltyMinutes
	}
	c /= math.Max(sc.AcceptRate, 0.05)
	if j.Prefer != "" && sc.TechnicianID == j.Prefer && Suits(j, sc) {
		// The technician who knows the job wins it whenever they make the
		// deadline; the solver still serves as many requests as it can first.
		c = 0
	}
	if policy.Urgency > 0 && !j.Deadline.IsZero() {
		// The same for every technician of the request, so it only decides
		// which requests are served when not all can be.
		left := max(0, j.Deadline.Sub(now))
		if policy.UrgencyCap > 0 {
			left = min(left, policy.UrgencyCap)
		}
		c += policy.Urgency * left.Minutes()
	}
	return c
}
