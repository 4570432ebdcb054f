// Package sim is Onsite's discrete-event simulator: a day of requests and
// technicians on a virtual clock, dispatched by the same pure core the server
// runs (eligibility, ranking, offer plans, the batch assignment), so
// strategies can be compared by numbers.
package sim

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/onsite/onsite/geo"
)

// Scenario describes a simulated day. Every field is documented in
// docs/simulator.md; unknown keys are rejected.
type Scenario struct {
	Name        string      `yaml:"name"`
	Seeds       int         `yaml:"seeds"`      // how many seeds to run (default 20)
	StartHour   int         `yaml:"start_hour"` // hour of day the simulation starts
	Hours       int         `yaml:"hours"`      // length of the day
	City        City        `yaml:"city"`
	Technicians Technicians `yaml:"technicians"`
	Demand      Demand      `yaml:"demand"`
	Behaviour   Behaviour   `yaml:"behaviour"`
	Dispatch    Dispatch    `yaml:"dispatch"`
}

// City is the area served: a centre and a radius.
type City struct {
	Center     geo.Point `yaml:"center"`
	RadiusKm   float64   `yaml:"radius_km"`
	Resolution int       `yaml:"resolution"` // H3 resolution of the index: 8 for cities (default), 7 for wide rural areas
}

// Technicians is the supply.
type Technicians struct {
	Count     int                `yaml:"count"`
	Skills    map[string]float64 `yaml:"skills"`     // share of technicians certified for each skill
	MinSkills int                `yaml:"min_skills"` // every technician holds at least this many
	Shifts    []ShiftPattern     `yaml:"shifts"`     // when they work; shares add up to 1
	Travel    map[string]Mode    `yaml:"travel"`     // car, bike, foot: share and speed
	Capacity  int                `yaml:"capacity"`   // simultaneous jobs
}

// ShiftPattern is a share of technicians working from StartHour to EndHour.
type ShiftPattern struct {
	StartHour int     `yaml:"start_hour"`
	EndHour   int     `yaml:"end_hour"`
	Share     float64 `yaml:"share"`
}

// Mode is a travel mode's share and speed.
type Mode struct {
	Share    float64 `yaml:"share"`
	SpeedKmh float64 `yaml:"speed_kmh"`
}

// Demand is the requests of the day.
type Demand struct {
	PerHour       []float64          `yaml:"per_hour"` // requests per hour, index 0 = start_hour
	Fixed         []FixedRequest     `yaml:"fixed"`    // requests at given times and places, besides per_hour
	Skills        map[string]float64 `yaml:"skills"`   // skill mix of requests (weights)
	UniformShare  float64            `yaml:"uniform_share"`
	Hotspots      []Hotspot          `yaml:"hotspots"`
	ASAPShare     float64            `yaml:"asap_share"`
	WindowHours   float64            `yaml:"window_hours"`    // length of a time window
	WindowAheadHr [2]float64         `yaml:"window_ahead_hr"` // window starts this many hours after creation (range)
}

// FixedRequest is one request placed by hand (tests, replays).
type FixedRequest struct {
	AtMinute float64   `yaml:"at_minute"` // after start_hour
	Place    geo.Point `yaml:"place"`
	Skill    string    `yaml:"skill"`
	Window   bool      `yaml:"window"` // a window request (window_ahead_hr[0] ahead) instead of ASAP
}

// Hotspot is a cluster of demand.
type Hotspot struct {
	Center   geo.Point `yaml:"center"`
	RadiusKm float64   `yaml:"radius_km"`
	Weight   float64   `yaml:"weight"`
}

// Behaviour is how people act.
type Behaviour struct {
	AcceptProbability float64            `yaml:"accept_probability"`
	AcceptSpread      float64            `yaml:"accept_spread"`   // each technician's own rate is uniform in accept_probability ± this
	ResponseMedian    Duration           `yaml:"response_median"` // lognormal answer delay
	ResponseSigma     float64            `yaml:"response_sigma"`
	NoResponseShare   float64            `yaml:"no_response_share"`
	ServiceMinutes    map[string]float64 `yaml:"service_minutes"` // mean job length by skill ("default" for the rest)
	ServiceSigma      float64            `yaml:"service_sigma"`
	DropShare         float64            `yaml:"drop_share"` // accepted jobs dropped before arrival
	Detour            float64            `yaml:"detour"`     // road ÷ straight line
}

// Dispatch is the configuration the strategies run with.
type Dispatch struct {
	SLA          Duration   `yaml:"sla"`
	GiveUp       Duration   `yaml:"give_up"`
	OfferTimeout Duration   `yaml:"offer_timeout"`
	WaveSize     int        `yaml:"wave_size"`
	BatchWindow  Duration   `yaml:"batch_window"`
	BatchUrgency float64    `yaml:"batch_urgency"` // batch: minutes of cost per minute left to the deadline, up to the SLA (default 1; 0: off)
	WindowLead   Duration   `yaml:"window_lead"`   // a windowed request starts searching this long before its window
	OverlapAfter Duration   `yaml:"overlap_after"` // also run batch with a second offer after this long unanswered (0: off)
	ChainWithin  Duration   `yaml:"chain_within"`  // also run batch with chaining: busy technicians finishing within this take a next job (0: off)
	BatchWindows []Duration `yaml:"batch_windows"` // extra batch windows to sweep (optional)
	Strategies   []string   `yaml:"strategies"`    // default: all
}

// Duration reads "30s", "2m", "1h".
type Duration struct{ time.Duration }

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return fmt.Errorf("line %d: want a duration such as 30s", n.Line)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration (want 30s, 2m, 1h)", n.Line, s)
	}
	d.Duration = v
	return nil
}

// Strategies the simulator knows.
var Strategies = []string{"sequential", "wave", "batch"}

// Load reads and validates a scenario file.
func Load(path string) (Scenario, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Scenario{}, fmt.Errorf("read scenario: %w", err)
	}
	sc, err := Parse(raw)
	if err != nil {
		return Scenario{}, fmt.Errorf("scenario %s: %w", path, err)
	}
	return sc, nil
}

// Parse decodes a scenario strictly (unknown keys are errors), fills the
// defaults and validates it.
func Parse(raw []byte) (Scenario, error) {
	sc := defaults()
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&sc); err != nil {
		return Scenario{}, fmt.Errorf("%s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if err := sc.Validate(); err != nil {
		return Scenario{}, err
	}
	return sc, nil
}

func defaults() Scenario {
	return Scenario{
		Seeds: 20, StartHour: 8, Hours: 8,
		Technicians: Technicians{MinSkills: 1, Capacity: 1},
		Demand:      Demand{ASAPShare: 1, WindowHours: 2, WindowAheadHr: [2]float64{2, 6}, UniformShare: 1},
		Behaviour: Behaviour{AcceptProbability: 0.7, ResponseMedian: Duration{90 * time.Second}, ResponseSigma: 0.6,
			ServiceSigma: 0.5, Detour: 1.25},
		Dispatch: Dispatch{SLA: Duration{time.Hour}, OfferTimeout: Duration{5 * time.Minute}, WaveSize: 3,
			BatchWindow: Duration{30 * time.Second}, BatchUrgency: 1, WindowLead: Duration{45 * time.Minute}},
	}
}

// Validate checks every value and names the first impossible ones.
func (sc *Scenario) Validate() error {
	var problems []string
	bad := func(key, format string, args ...any) {
		problems = append(problems, key+": "+fmt.Sprintf(format, args...))
	}
	share := func(key string, v float64) {
		if !(v >= 0 && v <= 1) {
			bad(key, "must be a share from 0 to 1, not %v", v)
		}
	}
	if sc.Name == "" {
		bad("name", "is required")
	}
	if sc.Seeds < 1 || sc.Seeds > 1000 {
		bad("seeds", "must be from 1 to 1000")
	}
	if sc.StartHour < 0 || sc.StartHour > 23 {
		bad("start_hour", "must be from 0 to 23")
	}
	if sc.Hours < 1 || sc.Hours > 48 {
		bad("hours", "must be from 1 to 48")
	}
	if err := geo.Validate(sc.City.Center, "city.center.lat", "city.center.lng"); err != nil {
		bad("city.center", "%v", err)
	}
	if sc.City.Resolution == 0 {
		sc.City.Resolution = geo.CityResolution
	}
	if sc.City.Resolution != geo.CityResolution && sc.City.Resolution != geo.RuralResolution {
		bad("city.resolution", "must be 7 or 8")
	}
	if !(sc.City.RadiusKm > 0 && sc.City.RadiusKm <= 300) {
		bad("city.radius_km", "must be above 0 and at most 300")
	}
	t := sc.Technicians
	if t.Count < 1 || t.Count > 100_000 {
		bad("technicians.count", "must be from 1 to 100000")
	}
	if len(t.Skills) == 0 {
		bad("technicians.skills", "needs at least one skill")
	}
	for k, v := range t.Skills {
		share("technicians.skills."+k, v)
	}
	if t.MinSkills < 1 || t.MinSkills > max(1, len(t.Skills)) {
		bad("technicians.min_skills", "must be from 1 to the number of skills")
	}
	if t.Capacity < 1 || t.Capacity > 10 {
		bad("technicians.capacity", "must be from 1 to 10")
	}
	if len(t.Shifts) == 0 {
		bad("technicians.shifts", "needs at least one shift pattern")
	}
	total := 0.0
	for i, s := range t.Shifts {
		key := fmt.Sprintf("technicians.shifts[%d]", i)
		if s.StartHour < 0 || s.StartHour > 47 || s.EndHour <= s.StartHour || s.EndHour > 48 {
			bad(key, "needs 0 <= start_hour < end_hour <= 48")
		}
		share(key+".share", s.Share)
		total += s.Share
	}
	if len(t.Shifts) > 0 && (total < 0.999 || total > 1.001) {
		bad("technicians.shifts", "shares add up to %.3f, not 1", total)
	}
	if len(t.Travel) == 0 {
		bad("technicians.travel", "needs at least one travel mode")
	}
	total = 0
	for k, m := range t.Travel {
		if k != "car" && k != "bike" && k != "foot" {
			bad("technicians.travel."+k, "unknown travel mode (car, bike or foot)")
		}
		share("technicians.travel."+k+".share", m.Share)
		if !(m.SpeedKmh > 0 && m.SpeedKmh <= 150) {
			bad("technicians.travel."+k+".speed_kmh", "must be above 0 and at most 150")
		}
		total += m.Share
	}
	if len(t.Travel) > 0 && (total < 0.999 || total > 1.001) {
		bad("technicians.travel", "shares add up to %.3f, not 1", total)
	}
	d := sc.Demand
	if len(d.PerHour) == 0 && len(d.Fixed) == 0 {
		bad("demand.per_hour", "needs one rate per simulated hour (or demand.fixed requests)")
	}
	for i, f := range d.Fixed {
		key := fmt.Sprintf("demand.fixed[%d]", i)
		if f.AtMinute < 0 || f.AtMinute >= float64(sc.Hours*60) {
			bad(key+".at_minute", "must lie within the simulated hours")
		}
		if err := geo.Validate(f.Place, key+".place.lat", key+".place.lng"); err != nil {
			bad(key+".place", "%v", err)
		}
		if _, ok := d.Skills[f.Skill]; !ok {
			bad(key+".skill", "%q is not in demand.skills", f.Skill)
		}
	}
	for i, v := range d.PerHour {
		if !(v >= 0 && v <= 10_000) {
			bad(fmt.Sprintf("demand.per_hour[%d]", i), "must be from 0 to 10000")
		}
	}
	if len(d.Skills) == 0 {
		bad("demand.skills", "needs at least one skill")
	}
	for k, v := range d.Skills {
		if _, ok := t.Skills[k]; !ok {
			bad("demand.skills."+k, "no technician can hold it (not in technicians.skills)")
		}
		if !(v > 0) {
			bad("demand.skills."+k, "weight must be above 0")
		}
	}
	share("demand.uniform_share", d.UniformShare)
	share("demand.asap_share", d.ASAPShare)
	if d.UniformShare < 1 && len(d.Hotspots) == 0 {
		bad("demand.hotspots", "needed when uniform_share is below 1")
	}
	for i, h := range d.Hotspots {
		key := fmt.Sprintf("demand.hotspots[%d]", i)
		if err := geo.Validate(h.Center, key+".center.lat", key+".center.lng"); err != nil {
			bad(key+".center", "%v", err)
		}
		if !(h.RadiusKm > 0) || !(h.Weight > 0) {
			bad(key, "radius_km and weight must be above 0")
		}
	}
	if !(d.WindowHours > 0 && d.WindowHours <= 24) {
		bad("demand.window_hours", "must be above 0 and at most 24")
	}
	if d.WindowAheadHr[0] < 0 || d.WindowAheadHr[1] < d.WindowAheadHr[0] {
		bad("demand.window_ahead_hr", "must be [low, high] with 0 <= low <= high")
	}
	b := sc.Behaviour
	share("behaviour.accept_probability", b.AcceptProbability)
	share("behaviour.no_response_share", b.NoResponseShare)
	share("behaviour.drop_share", b.DropShare)
	if b.AcceptSpread < 0 || b.AcceptProbability-b.AcceptSpread < 0 || b.AcceptProbability+b.AcceptSpread > 1 {
		bad("behaviour.accept_spread", "accept_probability ± accept_spread must stay within 0 and 1")
	}
	if b.ResponseMedian.Duration <= 0 {
		bad("behaviour.response_median", "must be positive")
	}
	if !(b.ResponseSigma >= 0 && b.ResponseSigma <= 3) {
		bad("behaviour.response_sigma", "must be from 0 to 3")
	}
	if !(b.ServiceSigma >= 0 && b.ServiceSigma <= 3) {
		bad("behaviour.service_sigma", "must be from 0 to 3")
	}
	if _, ok := b.ServiceMinutes["default"]; !ok {
		bad("behaviour.service_minutes.default", "is required")
	}
	for k, v := range b.ServiceMinutes {
		if !(v > 0 && v <= 24*60) {
			bad("behaviour.service_minutes."+k, "must be above 0 and at most 1440")
		}
	}
	if !(b.Detour >= 1 && b.Detour <= 3) {
		bad("behaviour.detour", "must be from 1 to 3")
	}
	p := sc.Dispatch
	if p.SLA.Duration <= 0 {
		bad("dispatch.sla", "must be positive")
	}
	if p.GiveUp.Duration == 0 {
		sc.Dispatch.GiveUp = p.SLA
	} else if p.GiveUp.Duration < 0 {
		bad("dispatch.give_up", "must be positive")
	}
	if p.OfferTimeout.Duration < time.Second {
		bad("dispatch.offer_timeout", "must be at least 1s")
	}
	if p.ChainWithin.Duration < 0 || p.ChainWithin.Duration > 2*time.Hour {
		bad("dispatch.chain_within", "must be from 0s to 2h")
	}
	if p.WaveSize < 1 || p.WaveSize > 50 {
		bad("dispatch.wave_size", "must be from 1 to 50")
	}
	if p.BatchWindow.Duration < 0 || p.BatchWindow.Duration > 10*time.Minute {
		bad("dispatch.batch_window", "must be from 0s to 10m")
	}
	if !(p.BatchUrgency >= 0 && p.BatchUrgency <= 10) {
		bad("dispatch.batch_urgency", "must be from 0 to 10")
	}
	for i, w := range p.BatchWindows {
		if w.Duration < 0 || w.Duration > 10*time.Minute {
			bad(fmt.Sprintf("dispatch.batch_windows[%d]", i), "must be from 0s to 10m")
		}
	}
	for _, s := range p.Strategies {
		if !contains(Strategies, s) {
			bad("dispatch.strategies", "unknown strategy %q (known: %s)", s, strings.Join(Strategies, ", "))
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return errors.New("invalid scenario:\n  " + strings.Join(problems, "\n  "))
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
