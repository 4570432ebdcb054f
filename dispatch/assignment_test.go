package dispatch

import (
	"math"
	"math/rand/v2"
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
	for trial := range 2000 {
		n, m := 1+rng.IntN(6), 1+rng.IntN(6)
		cost := make([][]float64, n)
		for i := range cost {
			cost[i] = make([]float64, m)
			for j := range cost[i] {
				if rng.Float64() < 0.3 {
					cost[i][j] = math.Inf(1)
				} else {
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
		if count != wantN || math.Abs(total-wantC) > 1e-9 {
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
	pairs := AssignBatch([]Job{jobA, jobB}, lists, now)
	if len(pairs) != 2 || pairs[0].TechnicianID != "y" || pairs[1].TechnicianID != "x" {
		t.Fatalf("pairs %+v", pairs)
	}
}
