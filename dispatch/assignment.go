package dispatch

import (
	"math"
	"slices"
	"time"
)

// This file is part of the pure core: the batched assignment.

// SolveAssignment solves the rectangular assignment problem: it picks at most one
// column per row and one row per column so that the number of assigned rows
// is as large as possible and, among those, the total cost is least. A cost
// of +Inf forbids a pair. It returns, per row, the column or -1.
//
// It is the Hungarian method with potentials (Jonker–Volgenant style shortest
// augmenting paths), O(n²·m) for n rows ≤ m columns. No well-kept Go library
// for it was reachable here (the Go assignment packages are not on the module
// proxy, gonum has none), so it is written out and tested against brute force.
func SolveAssignment(cost [][]float64) []int {
	n := len(cost)
	if n == 0 {
		return nil
	}
	m := len(cost[0])
	transposed := false
	c := cost
	if n > m {
		c = transpose(cost)
		n, m = m, n
		transposed = true
	}
	// Forbidden pairs become one big finite cost, so every row can be
	// matched; pairs that used it are dropped afterwards. big is larger than
	// any sum of allowed costs, so fewer forbidden pairs always win.
	big := 1.0
	for _, row := range c {
		for _, v := range row {
			if !math.IsInf(v, 1) {
				big += math.Abs(v)
			}
		}
	}
	big *= float64(n + 1)
	at := func(i, j int) float64 {
		if v := c[i][j]; !math.IsInf(v, 1) {
			return v
		}
		return big
	}
	u := make([]float64, n+1)
	v := make([]float64, m+1)
	p := make([]int, m+1) // p[j]: row (1-based) matched to column j
	way := make([]int, m+1)
	minv := make([]float64, m+1)
	used := make([]bool, m+1)
	for i := 1; i <= n; i++ {
		p[0] = i
		j0 := 0
		for j := range minv {
			minv[j] = math.Inf(1)
			used[j] = false
		}
		for {
			used[j0] = true
			i0 := p[j0]
			delta := math.Inf(1)
			j1 := 0
			for j := 1; j <= m; j++ {
				if used[j] {
					continue
				}
				cur := at(i0-1, j-1) - u[i0] - v[j]
				if cur < minv[j] {
					minv[j] = cur
					way[j] = j0
				}
				if minv[j] < delta {
					delta = minv[j]
					j1 = j
				}
			}
			for j := 0; j <= m; j++ {
				if used[j] {
					u[p[j]] += delta
					v[j] -= delta
				} else {
					minv[j] -= delta
				}
			}
			j0 = j1
			if p[j0] == 0 {
				break
			}
		}
		for j0 != 0 {
			j1 := way[j0]
			p[j0] = p[j1]
			j0 = j1
		}
	}
	rowOf := make([]int, n)
	for i := range rowOf {
		rowOf[i] = -1
	}
	for j := 1; j <= m; j++ {
		if p[j] != 0 && !math.IsInf(c[p[j]-1][j-1], 1) {
			rowOf[p[j]-1] = j - 1
		}
	}
	if !transposed {
		return rowOf
	}
	out := make([]int, len(cost))
	for i := range out {
		out[i] = -1
	}
	for col, row := range rowOf {
		if row >= 0 {
			out[row] = col
		}
	}
	return out
}

func transpose(a [][]float64) [][]float64 {
	if len(a) == 0 {
		return nil
	}
	t := make([][]float64, len(a[0]))
	for j := range t {
		t[j] = make([]float64, len(a))
		for i := range a {
			t[j][i] = a[i][j]
		}
	}
	return t
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
	var techs []Scored
	for _, list := range candidates {
		for _, sc := range list {
			if _, ok := colOf[sc.TechnicianID]; !ok {
				colOf[sc.TechnicianID] = len(techs)
				techs = append(techs, sc)
			}
		}
	}
	if len(jobs) == 0 || len(techs) == 0 {
		return nil
	}
	cost := make([][]float64, len(jobs))
	for i := range jobs {
		row := make([]float64, len(techs))
		for j := range row {
			row[j] = math.Inf(1)
		}
		for _, sc := range candidates[i] {
			row[colOf[sc.TechnicianID]] = pairCost(jobs[i], sc, now, policy)
		}
		cost[i] = row
	}
	var out []BatchPair
	for i, col := range SolveAssignment(cost) {
		if col < 0 {
			continue
		}
		for _, sc := range candidates[i] {
			if sc.TechnicianID == techs[col].TechnicianID {
				out = append(out, BatchPair{JobIndex: i, Scored: sc})
			}
		}
	}
	slices.SortFunc(out, func(a, b BatchPair) int { return a.JobIndex - b.JobIndex })
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
