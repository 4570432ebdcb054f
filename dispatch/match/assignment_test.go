package match

import (
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// bruteForce tries every assignment of rows to distinct columns (or none) and
// returns the largest number assigned and, for it, the least cost.
func bruteForce(cost [][]float64) (int, float64) {
	n := len(cost)
	m := len(cost[0])
	bestN, bestC := -1, math.Inf(1)
	used := make([]bool, m)
	var rec func(i, count int, total float64)
	rec = func(i, count int, total float64) {
		if i == n {
			if count > bestN || (count == bestN && total < bestC-1e-9) {
				bestN, bestC = count, total
			}
			return
		}
		rec(i+1, count, total) // row i unassigned
		for j := range m {
			if !used[j] && !math.IsInf(cost[i][j], 1) {
				used[j] = true
				rec(i+1, count+1, total+cost[i][j])
				used[j] = false
			}
		}
	}
	rec(0, 0, 0)
	return bestN, bestC
}

func TestSolveAssignmentAgainstBruteForce(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(42, 1))
	for trial := range 4000 {
		// Up to 7 × 7, forbidden pairs from none to most, costs whole or
		// fractional, some negative, some with the late penalty.
		n, m := 1+rng.IntN(7), 1+rng.IntN(7)
		forbidden := rng.Float64() * 0.8
		cost := make([][]float64, n)
		for i := range cost {
			cost[i] = make([]float64, m)
			for j := range cost[i] {
				switch x := rng.Float64(); {
				case x < forbidden:
					cost[i][j] = math.Inf(1)
				case trial%4 == 1:
					cost[i][j] = float64(rng.IntN(100)) - 30 + rng.Float64()
				case trial%4 == 2 && x > 0.8:
					cost[i][j] = LatePenaltyMinutes + float64(rng.IntN(60))
				case trial%4 == 3 && x > 0.85:
					cost[i][j] = 1e10 + float64(rng.IntN(60)) // a huge spread
				case trial%4 == 3:
					cost[i][j] = float64(rng.IntN(100)) + rng.Float64()
				default:
					cost[i][j] = float64(rng.IntN(100))
				}
			}
		}
		got := SolveAssignment(cost)
		seen := map[int]bool{}
		count, total := 0, 0.0
		for i, j := range got {
			if j < 0 {
				continue
			}
			if seen[j] || math.IsInf(cost[i][j], 1) {
				t.Fatalf("trial %d: invalid assignment %v for %v", trial, got, cost)
			}
			seen[j] = true
			count++
			total += cost[i][j]
		}
		wantN, wantC := bruteForce(cost)
		if count != wantN || math.Abs(total-wantC) > 1e-6+1e-14*math.Abs(wantC) {
			t.Fatalf("trial %d: got %d pairs cost %.0f, brute force %d pairs cost %.0f\ncost %v\nassign %v", trial, count, total, wantN, wantC, cost, got)
		}
	}
}

func TestAssignBatchPrefersOnTime(t *testing.T) {
	t.Parallel()
	eta := StraightLineETAForTest()
	// Two jobs, two technicians. Greedy in job order would give job A its
	// nearest technician (x) and leave job B with y, 70 minutes away; the
	// batch gives A to y so both are on time.
	jobA := Job{ID: "A", Skill: "wifi_setup", Place: zurich, Deadline: now.Add(time.Hour)}
	jobB := Job{ID: "B", Skill: "wifi_setup", Place: offset(zurich, 20000), Deadline: now.Add(time.Hour)}
	x := cand("x", 14000, 0) // between A and B, nearer A
	y := cand("y", -3000, 0) // near A only
	lists := [][]Scored{Rank(jobA, []Candidate{x, y}, eta, now), Rank(jobB, []Candidate{x, y}, eta, now)}
	pairs := AssignBatch([]Job{jobA, jobB}, lists, now, BatchPolicy{})
	if len(pairs) != 2 || pairs[0].TechnicianID != "y" || pairs[1].TechnicianID != "x" {
		t.Fatalf("pairs %+v", pairs)
	}
}

func TestAssignBatchPolicy(t *testing.T) {
	t.Parallel()
	eta := StraightLineETAForTest()
	urgent := BatchPolicy{Urgency: 1, UrgencyCap: time.Hour}
	job := func(id string, dx float64, left, giveUp time.Duration) Job {
		return Job{ID: id, Skill: "wifi_setup", Place: offset(zurich, dx), Deadline: now.Add(left), GiveUp: now.Add(giveUp)}
	}
	window := func(id string, dx float64, opens time.Duration) Job {
		j := job(id, dx, opens+2*time.Hour, opens+2*time.Hour)
		j.Opens = now.Add(opens)
		return j
	}
	// x is 3 km from Zürich's centre (about 9 minutes by car), y 9 km.
	x, y := cand("x", 3000, 0), cand("y", 9000, 0)
	// unsure is as near as x but accepts one offer in three (learned), sure
	// is 7 km further and accepts nearly all.
	unsure, sure := cand("unsure", 3000, 0), cand("sure", 10000, 0)
	unsure.OffersSent, unsure.Accepted = 20, 5
	sure.OffersSent, sure.Accepted = 20, 20
	tests := []struct {
		name   string
		jobs   []Job
		techs  []Candidate
		policy BatchPolicy
		want   map[string]string // job → technician
	}{
		{
			name:  "without urgency the nearer request wins a contested technician",
			jobs:  []Job{job("old", 4000, 15*time.Minute, 15*time.Minute), job("new", 2500, 58*time.Minute, 58*time.Minute)},
			techs: []Candidate{x}, policy: BatchPolicy{},
			want: map[string]string{"new": "x"},
		},
		{
			name:  "with urgency the request with the least time left wins it",
			jobs:  []Job{job("old", 4000, 15*time.Minute, 15*time.Minute), job("new", 2500, 58*time.Minute, 58*time.Minute)},
			techs: []Candidate{x}, policy: urgent,
			want: map[string]string{"old": "x"},
		},
		{
			name:  "urgency changes nothing when every request can have a technician",
			jobs:  []Job{job("old", 4000, 15*time.Minute, 15*time.Minute), job("new", 9500, 58*time.Minute, 58*time.Minute)},
			techs: []Candidate{x, y}, policy: urgent,
			want: map[string]string{"old": "x", "new": "y"},
		},
		{
			name:  "time left beyond the cap counts as the cap",
			jobs:  []Job{job("window", 2500, 3*time.Hour, 3*time.Hour), job("asap", 4000, 59*time.Minute, 59*time.Minute)},
			techs: []Candidate{x}, policy: urgent,
			// Both count about an hour left; the nearer one wins.
			want: map[string]string{"window": "x"},
		},
		{
			name:  "without urgency a request weighs arrival by the chance of acceptance",
			jobs:  []Job{job("only", 2500, 58*time.Minute, 58*time.Minute)},
			techs: []Candidate{unsure, sure}, policy: BatchPolicy{},
			want: map[string]string{"only": "unsure"},
		},
		{
			name:  "urgency does not change which technician a request gets",
			jobs:  []Job{job("only", 2500, 58*time.Minute, 58*time.Minute)},
			techs: []Candidate{unsure, sure}, policy: urgent,
			want: map[string]string{"only": "unsure"},
		},
		{
			name:  "a cap of 0 counts all the time left",
			jobs:  []Job{job("window", 2500, 3*time.Hour, 3*time.Hour), job("asap", 4000, 59*time.Minute, 59*time.Minute)},
			techs: []Candidate{x}, policy: BatchPolicy{Urgency: 1},
			want: map[string]string{"asap": "x"},
		},
		{
			name:  "the give-up time is checked against the answer time and the drive",
			jobs:  []Job{job("tight", 4000, 5*time.Minute, 5*time.Minute)}, // x is about 3 minutes away
			techs: []Candidate{x}, policy: BatchPolicy{AnswerTime: 3 * time.Minute},
			want: map[string]string{},
		},
		{
			name:  "a window is not assigned to someone who would wait at the door",
			jobs:  []Job{window("later", 4000, time.Hour)},
			techs: []Candidate{x}, policy: BatchPolicy{MaxWait: 5 * time.Minute},
			want: map[string]string{},
		},
		{
			// x (1 km away) ranks first but would wait 27 minutes at the
			// door; f, 9 km away, arrives about as the window opens.
			name:  "a technician ranked first but not allowed is never sent",
			jobs:  []Job{window("half-hour", 4000, 30*time.Minute)},
			techs: []Candidate{x, cand("f", -5000, 0)}, policy: BatchPolicy{MaxWait: 5 * time.Minute},
			want: map[string]string{"half-hour": "f"},
		},
		{
			name:  "a window is assigned when the technician arrives as it opens",
			jobs:  []Job{window("soon", 4000, 5*time.Minute)},
			techs: []Candidate{x}, policy: BatchPolicy{MaxWait: 5 * time.Minute},
			want: map[string]string{"soon": "x"},
		},
		{
			name:  "no one is sent who would arrive after the give-up time",
			jobs:  []Job{job("far", 20000, 40*time.Minute, 40*time.Minute)},
			techs: []Candidate{cand("z", -10000, 0)}, policy: urgent,
			want: map[string]string{},
		},
		{
			name:  "a late arrival is allowed while the request still searches",
			jobs:  []Job{job("late", 20000, 40*time.Minute, 2*time.Hour)},
			techs: []Candidate{cand("z", -10000, 0)}, policy: urgent,
			want: map[string]string{"late": "z"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var lists [][]Scored
			for _, j := range tt.jobs {
				lists = append(lists, Rank(j, tt.techs, eta, now))
			}
			got := map[string]string{}
			for _, p := range AssignBatch(tt.jobs, lists, now, tt.policy) {
				got[tt.jobs[p.JobIndex].ID] = p.TechnicianID
			}
			if !maps.Equal(got, tt.want) {
				t.Fatalf("assigned %v, want %v", got, tt.want)
			}
		})
	}
}

func TestAnswerTime(t *testing.T) {
	t.Parallel()
	s := time.Second
	tests := []struct {
		recent []time.Duration
		want   time.Duration
	}{
		{nil, 0},
		{[]time.Duration{40 * s}, 40 * s},
		{[]time.Duration{300 * s, 20 * s, 90 * s}, 90 * s},
		{[]time.Duration{10 * s, 30 * s, 20 * s, 100 * s}, 30 * s},
	}
	for _, tt := range tests {
		in := slices.Clone(tt.recent)
		if got := AnswerTime(tt.recent); got != tt.want {
			t.Errorf("AnswerTime(%v) = %v, want %v", tt.recent, got, tt.want)
		}
		if !slices.Equal(in, tt.recent) {
			t.Errorf("AnswerTime reordered its input: %v", tt.recent)
		}
	}
}

func TestBatchOfferTimeout(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	m := time.Minute
	tests := []struct {
		name       string
		configured time.Duration
		eta        time.Duration
		giveUp     time.Time
		want       time.Duration
	}{
		{"no give-up time keeps the configured timeout", 5 * m, 20 * m, time.Time{}, 5 * m},
		{"plenty of time keeps the configured timeout", 5 * m, 20 * m, now.Add(50 * m), 5 * m},
		{"cut to when a yes still arrives in time", 5 * m, 20 * m, now.Add(23 * m), 3 * m},
		{"exactly the configured timeout", 5 * m, 20 * m, now.Add(25 * m), 5 * m},
		{"never under 15 s", 5 * m, 20 * m, now.Add(20 * m), 15 * time.Second},
		{"past the give-up time", 5 * m, 20 * m, now.Add(-m), 15 * time.Second},
		{"a configured timeout under 15 s is kept", 10 * time.Second, 20 * m, now.Add(20 * m), 10 * time.Second},
		{"a window's end far ahead", 5 * m, 20 * m, now.Add(3 * time.Hour), 5 * m},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := BatchOfferTimeout(tt.configured, tt.eta, tt.giveUp, now); got != tt.want {
				t.Errorf("BatchOfferTimeout(%v, %v, %v) = %v, want %v", tt.configured, tt.eta, tt.giveUp, got, tt.want)
			}
		})
	}
}

// denseHungarian is the dense O(n²·m) Hungarian method the batch used before
// solveSparse, kept as an independent reference for instances too large
// for brute force.
func denseHungarian(cost [][]float64) []int {
	n := len(cost)
	if n == 0 {
		return nil
	}
	m := len(cost[0])
	transposed := false
	c := cost
	if n > m {
		c = transposeMatrix(cost)
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

func transposeMatrix(a [][]float64) [][]float64 {
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

// TestSolveAssignmentNotFinite: a cost that is not a finite number forbids
// the pair, like +Inf.
func TestSolveAssignmentNotFinite(t *testing.T) {
	t.Parallel()
	inf, nan := math.Inf(1), math.NaN()
	tests := []struct {
		name string
		cost [][]float64
		want []int
	}{
		{"NaN", [][]float64{{nan, 5}, {1, nan}}, []int{1, 0}},
		{"-Inf", [][]float64{{math.Inf(-1), 5}, {1, 2}}, []int{1, 0}},
		{"all forbidden", [][]float64{{inf, nan}, {math.Inf(-1), inf}}, []int{-1, -1}},
		{"no columns", [][]float64{{}, {}}, []int{-1, -1}},
		{"no rows", nil, []int{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SolveAssignment(tt.cost); !slices.Equal(got, tt.want) {
				t.Fatalf("SolveAssignment(%v) = %v, want %v", tt.cost, got, tt.want)
			}
		})
	}
}

// TestSolveSparseAgainstDense compares the sparse solver with the dense
// Hungarian method on batch-sized instances (up to 150 requests, a few
// candidates each, some technicians shared by many): the same number of
// pairs and the same least total cost.
func TestSolveSparseAgainstDense(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(7, 3))
	for trial := range 300 {
		n, m := 1+rng.IntN(150), 1+rng.IntN(150)
		cost := make([][]float64, n)
		for i := range cost {
			cost[i] = make([]float64, m)
			for j := range cost[i] {
				cost[i][j] = math.Inf(1)
			}
			for range 1 + rng.IntN(6) {
				j := rng.IntN(m)
				if trial%2 == 0 {
					j = rng.IntN(max(1, m/10)) // crowd onto a few technicians
				}
				cost[i][j] = float64(rng.IntN(60)) + rng.Float64()
				switch {
				case rng.IntN(10) == 0:
					cost[i][j] += LatePenaltyMinutes
				case trial%3 == 2 && rng.IntN(10) == 0:
					cost[i][j] += 1e10 // a huge spread: precision must hold
				}
			}
		}
		sum := func(assign []int) (int, float64) {
			count, total := 0, 0.0
			seen := map[int]bool{}
			for i, j := range assign {
				if j < 0 {
					continue
				}
				if seen[j] || math.IsInf(cost[i][j], 1) {
					t.Fatalf("trial %d: invalid assignment", trial)
				}
				seen[j] = true
				count++
				total += cost[i][j]
			}
			return count, total
		}
		gotN, gotC := sum(SolveAssignment(cost))
		wantN, wantC := sum(denseHungarian(cost))
		if gotN != wantN || math.Abs(gotC-wantC) > 1e-6+1e-14*wantC {
			t.Fatalf("trial %d (%d × %d): sparse %d pairs cost %.4f, dense %d pairs cost %.4f", trial, n, m, gotN, gotC, wantN, wantC)
		}
	}
}
