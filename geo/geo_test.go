package geo

import (
	"math"
	"testing"
	"time"

	"github.com/onsite/onsite/internal/errs"
)

var zurich = Point{Lat: 47.3769, Lng: 8.5417}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		p         Point
		wantField string
	}{
		{"zurich", zurich, ""},
		{"poles and antimeridian", Point{90, -180}, ""},
		{"lat too big", Point{90.0001, 0}, "lat"},
		{"lat too small", Point{-91, 0}, "lat"},
		{"lng too big", Point{0, 180.5}, "lng"},
		{"lat NaN", Point{math.NaN(), 0}, "lat"},
		{"lng NaN", Point{0, math.NaN()}, "lng"},
		{"lng Inf", Point{0, math.Inf(1)}, "lng"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(tt.p, "lat", "lng")
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			e, ok := errs.As(err)
			if !ok || e.Code != errs.Invalid || e.Field != tt.wantField {
				t.Fatalf("err = %v, want invalid on %s", err, tt.wantField)
			}
		})
	}
}

func TestDistance(t *testing.T) {
	t.Parallel()
	bern := Point{Lat: 46.9480, Lng: 7.4474}
	d := DistanceM(zurich, bern) / 1000
	if d < 94 || d > 96 {
		t.Fatalf("Zurich–Bern = %.1f km, want about 95", d)
	}
	p := Offset(zurich, 3000, 4000)
	if d := DistanceM(zurich, p); math.Abs(d-5000) > 5 {
		t.Fatalf("offset distance = %.1f m, want 5000", d)
	}
}

func TestCellsAndRings(t *testing.T) {
	t.Parallel()
	c := CellOf(zurich, CityResolution)
	if got, ok := ParseCell(c.String()); !ok || got != c {
		t.Fatalf("parse(%s) = %v %v", c, got, ok)
	}
	seen := map[Cell]bool{}
	for k := 0; k <= 3; k++ {
		for _, x := range Ring(c, k) {
			if seen[x] {
				t.Fatalf("cell %s in two rings", x)
			}
			seen[x] = true
		}
	}
	if len(seen) != len(Disk(c, 3)) || len(seen) != 37 {
		t.Fatalf("rings 0..3 hold %d cells, disk %d, want 37", len(seen), len(Disk(c, 3)))
	}
}

// TestRingMinDistanceIsALowerBound places points at many distances and checks
// that the ring they fall in never claims to be farther than they are.
func TestRingMinDistanceIsALowerBound(t *testing.T) {
	t.Parallel()
	for _, res := range []int{CityResolution, RuralResolution} {
		origin := CellOf(zurich, res)
		ringOf := map[Cell]int{}
		for k := 0; k <= 40; k++ {
			for _, x := range Ring(origin, k) {
				ringOf[x] = k
			}
		}
		for dx := -20000.0; dx <= 20000; dx += 370 {
			for dy := -20000.0; dy <= 20000; dy += 410 {
				p := Offset(zurich, dx, dy)
				k, ok := ringOf[CellOf(p, res)]
				if !ok {
					continue
				}
				// any point of the origin cell, not only its centre: use zurich
				if d := DistanceM(zurich, p) / 1000; RingMinDistanceKm(res, k) > d {
					t.Fatalf("res %d ring %d: point %.2f km away but bound says %.2f", res, k, d, RingMinDistanceKm(res, k))
				}
			}
		}
	}
}

func TestStraightLineETA(t *testing.T) {
	t.Parallel()
	eta := DefaultETA()
	to := Offset(zurich, 10000, 0) // 10 km east
	tests := []struct {
		name string
		tr   Traveller
		want time.Duration
	}{
		{"car default speed", Traveller{Mode: "car"}, 30 * time.Minute},            // 12.5 km at 25 km/h
		{"own speed wins", Traveller{Mode: "car", SpeedKmh: 50}, 15 * time.Minute}, // 12.5 km at 50 km/h
		{"bike", Traveller{Mode: "bike"}, 50 * time.Minute},                        // 12.5 km at 15 km/h
		{"unknown mode falls back", Traveller{Mode: "boat"}, 30 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := eta.Estimate(zurich, to, tt.tr)
			if diff := got - tt.want; diff < -10*time.Second || diff > 10*time.Second {
				t.Fatalf("eta = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestStraightLineReach: from just beyond ReachM the estimate is at least
// the time asked, and from well inside it less.
func TestStraightLineReach(t *testing.T) {
	t.Parallel()
	eta := DefaultETA()
	from := Point{Lat: 47.3769, Lng: 8.5417}
	for _, tr := range []Traveller{{Mode: "car", SpeedKmh: 30}, {Mode: "bike"}, {Mode: "car", SpeedKmh: 47.5}} {
		for d := 2 * time.Minute; d <= 3*time.Hour; d += 2 * time.Minute {
			m := eta.ReachM(d, tr)
			for _, bearing := range []float64{0, 0.7, 1.6, 3} {
				for _, f := range []float64{1 + 1e-12, 1.0001} {
					to := Offset(from, math.Sin(bearing)*m*f, math.Cos(bearing)*m*f)
					if DistanceM(from, to) > m && eta.Estimate(from, to, tr) < d {
						t.Fatalf("%v: %.3f m away takes %v, less than %v", tr, DistanceM(from, to), eta.Estimate(from, to, tr), d)
					}
				}
				if in := Offset(from, math.Sin(bearing)*m*0.999, math.Cos(bearing)*m*0.999); eta.Estimate(from, in, tr) >= d {
					t.Fatalf("%v: inside the reach takes %v", tr, eta.Estimate(from, in, tr))
				}
			}
		}
	}
}

// TestLatSpan: points farther apart in latitude than LatSpanDeg(m) are more
// than m apart, whatever their longitudes.
func TestLatSpan(t *testing.T) {
	t.Parallel()
	for _, lat := range []float64{-80, -47, 0, 30, 47.37, 85} {
		for _, m := range []float64{1, 500, 2500, 40000, 900000} {
			span := LatSpanDeg(m)
			for _, dLng := range []float64{0, 0.01, 1, 30} {
				a, b := Point{Lat: lat, Lng: 8}, Point{Lat: lat + span, Lng: 8 + dLng}
				if b.Lat <= 90 && DistanceM(a, b) <= m {
					t.Fatalf("lat %v, %v m: %v apart", lat, m, DistanceM(a, b))
				}
			}
		}
	}
}

func TestParseAreas(t *testing.T) {
	t.Parallel()
	city := CellOf(zurich, CityResolution)
	r7 := city.Parent(RuralResolution)
	far := CellOf(Point{Lat: 46.2, Lng: 6.15}, RuralResolution) // Geneva
	tests := []struct {
		name    string
		in      string
		want    int // areas
		wantErr bool
	}{
		{"empty", "", 0, false},
		{"one", "zurich=" + r7.String(), 1, false},
		{"two with spaces", " zurich = " + r7.String() + " ; geneva=" + far.String() + "," + far.String(), 2, false},
		{"no cells", "zurich=", 0, true},
		{"bad cell", "zurich=zz", 0, true},
		{"finer than the city grid", "zurich=" + CellOf(zurich, 10).String(), 0, true},
		{"bad name", "zür ich=" + r7.String(), 0, true},
		{"twice", "a=" + r7.String() + ";a=" + far.String(), 0, true},
		{"no equals", r7.String(), 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseAreas(tt.in)
			if (err != nil) != tt.wantErr || len(got) != tt.want {
				t.Fatalf("ParseAreas(%q) = %v, %v", tt.in, got, err)
			}
		})
	}
	areas, _ := ParseAreas("zurich=" + r7.String())
	if !areas[0].Contains(city) || areas[0].Contains(CellOf(Point{Lat: 46.2, Lng: 6.15}, CityResolution)) {
		t.Fatal("Contains: Zürich's city cell is in the Zürich area, Geneva's is not")
	}
	if areas[0].Contains(city.Parent(5)) {
		t.Fatal("a coarser cell than the area's is not inside it")
	}
}
