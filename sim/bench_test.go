package sim

import "testing"

// BenchmarkCityDay is one city day per strategy (seed 1).
func BenchmarkCityDay(b *testing.B) {
	benchDay(b, cityScenario(b, 1))
}

// BenchmarkCityDayTwice is the city day with twice its demand (per_hour
// doubled), one per strategy (seed 1).
func BenchmarkCityDayTwice(b *testing.B) {
	benchDay(b, cityScenario(b, 2))
}

// cityScenario is sim/scenarios/city.yaml with its demand scaled by factor.
func cityScenario(tb testing.TB, factor float64) Scenario {
	tb.Helper()
	sc, err := Load("scenarios/city.yaml")
	if err != nil {
		tb.Fatal(err)
	}
	per := make([]float64, len(sc.Demand.PerHour))
	for i, v := range sc.Demand.PerHour {
		per[i] = v * factor
	}
	sc.Demand.PerHour = per
	return sc
}

func benchDay(b *testing.B, sc Scenario) {
	vs, err := Variants(sc, "all")
	if err != nil {
		b.Fatal(err)
	}
	for _, v := range vs {
		b.Run(v.Name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				runDay(newDay(sc, 1), v, nil)
			}
		})
	}
}
