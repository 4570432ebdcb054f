package sim

import (
	"fmt"
	"math/bits"
	"testing"
)

// smallDay is a random short day: a few technicians for a few requests in a
// small town, ASAP and windowed, two skills, short jobs.
func smallDay(techs int, perHour string) string {
	return fmt.Sprintf(`
name: small-day
seeds: 1
start_hour: 8
hours: 3
city: {center: {lat: 47.3769, lng: 8.5417}, radius_km: 6}
technicians:
  count: %d
  skills: {wifi_setup: 0.7, tv_setup: 0.5}
  shifts: [{start_hour: 8, end_hour: 11, share: 0.5}, {start_hour: 9, end_hour: 13, share: 0.5}]
  travel: {car: {share: 0.7, speed_kmh: 25}, bike: {share: 0.3, speed_kmh: 15}}
demand:
  per_hour: %s
  skills: {wifi_setup: 2, tv_setup: 1}
  asap_share: 0.7
  window_hours: 1
  window_ahead_hr: [0.5, 1.5]
behaviour:
  accept_probability: 0.8
  no_response_share: 0.05
  service_minutes: {default: 35}
  service_sigma: 0.6
  detour: 1.25
dispatch:
  sla: 60m
  window_lead: 30m
`, techs, perHour)
}

// exhaustive is the best plan of the day found by trying every assignment
// of requests to slots and every order within a slot: the most ASAP
// requests served, with no condition on windows (asapOnly) and with at least
// minWindows windows served.
func exhaustive(t *testing.T, d *day, minWindows int) (asapOnly, withWindows int) {
	t.Helper()
	pl := newPlanner(d)
	plan := newPlan(d)
	n := len(d.requests)
	if n > 8 {
		t.Fatalf("%d requests: too many for brute force", n)
	}
	// can[s][mask]: some order of the requests in mask fits slot s.
	can := make([][]bool, len(plan.slots))
	for s, slot := range plan.slots {
		can[s] = make([]bool, 1<<n)
		for mask := range 1 << n {
			var set []*simRequest
			for i := range n {
				if mask&(1<<i) != 0 {
					set = append(set, d.requests[i])
				}
			}
			can[s][mask] = anyOrder(pl, slot, set, nil)
		}
	}
	asapMask, windowMask := 0, 0
	for i, q := range d.requests {
		if q.asap {
			asapMask |= 1 << i
		} else {
			windowMask |= 1 << i
		}
	}
	asapOnly, withWindows = 0, -1
	var walk func(s, used int)
	walk = func(s, used int) {
		if s == len(plan.slots) {
			a, w := bits.OnesCount(uint(used&asapMask)), bits.OnesCount(uint(used&windowMask))
			asapOnly = max(asapOnly, a)
			if w >= minWindows {
				withWindows = max(withWindows, a)
			}
			return
		}
		for mask := range 1 << n {
			if mask&used == 0 && can[s][mask] {
				walk(s+1, used|mask)
			}
		}
	}
	walk(0, 0)
	return asapOnly, withWindows
}

// anyOrder reports whether some order of set fits the slot after prefix.
func anyOrder(pl *offlinePlanner, slot *planSlot, set, prefix []*simRequest) bool {
	if len(set) == 0 {
		_, ok := pl.feasible(slot.t, prefix)
		return ok
	}
	if _, ok := pl.feasible(slot.t, prefix); !ok {
		return false
	}
	for i, q := range set {
		rest := append(append([]*simRequest(nil), set[:i]...), set[i+1:]...)
		if anyOrder(pl, slot, rest, append(append([]*simRequest(nil), prefix...), q)) {
			return true
		}
	}
	return false
}

// TestHindsightAgainstBruteForce checks on small random days that the upper
// bound is never below the best plan exhaustive search finds, that this
// optimum is never below the offline plan, and that the local search never
// does worse than the greedy plan it starts from.
func TestHindsightAgainstBruteForce(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		techs   int
		perHour string
	}{
		{"slack", 3, "[2, 2, 2]"},
		{"balanced", 2, "[2, 3, 2]"},
		{"short", 1, "[3, 3, 2]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			sc, err := Parse([]byte(smallDay(c.techs, c.perHour)))
			if err != nil {
				t.Fatal(err)
			}
			tried := 0
			for seed := uint64(1); tried < 12 && seed < 200; seed++ {
				d := newDay(sc, seed)
				if len(d.requests) < 3 || len(d.requests) > 8 {
					continue
				}
				tried++
				b := Hindsight(sc, seed)
				_, greedyWindows := clairvoyantPlan(newPlanner(d), d.requests).value()
				best, bestKeeping := exhaustive(t, d, greedyWindows)
				t.Logf("seed %d: %d requests, bound %d, matching %d, optimum %d (keeping windows %d), offline %d / %d, greedy %d / %d", seed, len(d.requests), b.UpperBound, b.MatchingBound, best, bestKeeping, b.OfflineWithoutWindows, b.Offline, b.WithoutWindows, b.Clairvoyant)
				switch {
				case b.UpperBound < best:
					t.Errorf("seed %d: upper bound %d below the optimum %d (%+v)", seed, b.UpperBound, best, b)
				case bestKeeping < b.Offline:
					t.Errorf("seed %d: optimum keeping %d windows %d below the offline plan %d", seed, greedyWindows, bestKeeping, b.Offline)
				case best < b.OfflineWithoutWindows:
					t.Errorf("seed %d: optimum %d below the offline plan without windows %d", seed, best, b.OfflineWithoutWindows)
				case b.Offline < b.Clairvoyant || b.OfflineWithoutWindows < b.WithoutWindows:
					t.Errorf("seed %d: local search worse than greedy: %+v", seed, b)
				}
			}
			if tried < 5 {
				t.Fatalf("only %d small days tried", tried)
			}
		})
	}
}

// TestBoundBindsOnShortSupply: one technician for a morning of requests
// cannot reach them all, and the bound says so where the matching bound
// does not.
func TestBoundBindsOnShortSupply(t *testing.T) {
	t.Parallel()
	sc, err := Parse([]byte(smallDay(1, "[4, 4, 3]")))
	if err != nil {
		t.Fatal(err)
	}
	sc.Demand.ASAPShare = 1
	for seed := uint64(1); seed <= 5; seed++ {
		b := Hindsight(sc, seed)
		if b.ASAP == 0 {
			continue
		}
		if b.UpperShare >= 1 {
			t.Errorf("seed %d: upper bound %d of %d ASAP requests (%+v)", seed, b.UpperBound, b.ASAP, b)
		}
		if b.UpperBound > b.MatchingBound || b.UpperBound < b.OfflineWithoutWindows {
			t.Errorf("seed %d: bound %d outside [offline %d, matching %d]", seed, b.UpperBound, b.OfflineWithoutWindows, b.MatchingBound)
		}
	}
}
