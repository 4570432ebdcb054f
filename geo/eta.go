package geo

import (
	"time"
)

// Traveller is what the travel-time model needs to know about a technician.
type Traveller struct {
	Mode     string  // car, bike or foot
	SpeedKmh float64 // the technician's own average speed; 0 uses the mode's default
}

// ETA predicts how long a traveller takes from one point to another. The
// default is StraightLine; a road router can implement it instead.
type ETA interface {
	Estimate(from, to Point, t Traveller) time.Duration
}

// Reach is a travel model that can say how far a traveller gets in a time:
// from any point farther than ReachM(d, t) metres (as DistanceM measures)
// they take at least d. A search uses it to skip who is too far to rank.
type Reach interface {
	ReachM(d time.Duration, t Traveller) float64
}

// StraightLine predicts travel as great-circle distance × a detour factor ÷
// speed.
type StraightLine struct {
	Detour     float64            // roads are longer than the straight line; 1.25 is typical in cities
	ModeSpeeds map[string]float64 // km/h by travel mode when the traveller has none
}

var (
	_ ETA   = StraightLine{}
	_ Reach = StraightLine{}
)

// DefaultETA is the straight-line model with city defaults.
func DefaultETA() StraightLine {
	return StraightLine{Detour: 1.25, ModeSpeeds: map[string]float64{"car": 25, "bike": 15, "foot": 5}}
}

// Estimate implements ETA.
func (s StraightLine) Estimate(from, to Point, t Traveller) time.Duration {
	speed, detour := s.speedDetour(t)
	km := DistanceM(from, to) / 1000 * detour
	return time.Duration(km / speed * float64(time.Hour))
}

// ReachM implements Reach: beyond this many metres Estimate is at least d,
// for d of a second or more (the margin of 1e-9 covers the rounding).
func (s StraightLine) ReachM(d time.Duration, t Traveller) float64 {
	speed, detour := s.speedDetour(t)
	return d.Hours() * speed / detour * 1000 * (1 + 1e-9)
}

// speedDetour is the traveller's speed in km/h and the detour factor.
func (s StraightLine) speedDetour(t Traveller) (speed, detour float64) {
	speed = t.SpeedKmh
	if speed <= 0 {
		speed = s.ModeSpeeds[t.Mode]
	}
	if speed <= 0 {
		speed = 25
	}
	return speed, max(s.Detour, 1)
}
