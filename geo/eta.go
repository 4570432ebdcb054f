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

// StraightLine predicts travel as great-circle distance × a detour factor ÷
// speed.
type StraightLine struct {
	Detour     float64            // roads are longer than the straight line; 1.25 is typical in cities
	ModeSpeeds map[string]float64 // km/h by travel mode when the traveller has none
}

var _ ETA = StraightLine{}

// DefaultETA is the straight-line model with city defaults.
func DefaultETA() StraightLine {
	return StraightLine{Detour: 1.25, ModeSpeeds: map[string]float64{"car": 25, "bike": 15, "foot": 5}}
}

// Estimate implements ETA.
func (s StraightLine) Estimate(from, to Point, t Traveller) time.Duration {
	speed := t.SpeedKmh
	if speed <= 0 {
		speed = s.ModeSpeeds[t.Mode]
	}
	if speed <= 0 {
		speed = 25
	}
	detour := s.Detour
	if detour < 1 {
		detour = 1
	}
	km := DistanceM(from, to) / 1000 * detour
	return time.Duration(km / speed * float64(time.Hour))
}
