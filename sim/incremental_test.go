package sim

import (
	"fmt"
	"reflect"
	"testing"
)

// TestIncrementalEqualsExhaustive pins that searching only what may have
// changed decides exactly as searching every waiting request every time:
// every answer given without the pool equals the pool's search, and the
// trace (every offer, answer, arrival) and the Result are the same, for
// every strategy, on the city day (two seeds), twice its demand and the
// regional day.
func TestIncrementalEqualsExhaustive(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every strategy on three days")
	}
	regional, err := Load("scenarios/regional.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// Not in parallel, and one seed for the heavier days: the full test
	// suite runs packages side by side, and the surge test beside this one
	// needs a core.
	for _, tc := range []struct {
		name  string
		sc    Scenario
		seeds []uint64
	}{
		{"city", cityScenario(t, 1), []uint64{1, 2}},
		{"city-twice", cityScenario(t, 2), []uint64{1}},
		{"regional", regional, []uint64{1}},
	} {
		vs, err := Variants(tc.sc, "all")
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vs {
			for _, seed := range tc.seeds {
				t.Run(fmt.Sprintf("%s/%s/seed%d", tc.name, v.Name, seed), func(t *testing.T) {
					ref, inc := v, v
					ref.Trace, inc.Trace = &Trace{}, &Trace{}
					want := simulateWith(newDay(tc.sc, seed), ref, nil, func(r *run) { r.exhaustive = true })
					got := simulateWith(newDay(tc.sc, seed), inc, nil, func(r *run) { r.verify = true })
					if got.mismatches > 0 {
						t.Errorf("%d answers found without the pool differ from its search", got.mismatches)
					}
					if len(got.tr.Events) != len(want.tr.Events) {
						t.Errorf("%d events, want %d", len(got.tr.Events), len(want.tr.Events))
					}
					for i := range min(len(got.tr.Events), len(want.tr.Events)) {
						if got.tr.Events[i] != want.tr.Events[i] {
							t.Fatalf("event %d: %+v, want %+v", i, got.tr.Events[i], want.tr.Events[i])
						}
					}
					if !reflect.DeepEqual(got.res, want.res) {
						t.Fatalf("result\n%+v\nwant\n%+v", got.res, want.res)
					}
				})
			}
		}
	}
}
