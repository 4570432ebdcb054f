package sim

import "testing"

// BenchmarkCityDay is one city day per strategy (seed 1).
func BenchmarkCityDay(b *testing.B) {
	sc, err := Load("scenarios/city.yaml")
	if err != nil {
		b.Fatal(err)
	}
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
