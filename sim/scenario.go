// Package sim is Onsite's discrete-event simulator: a day of requests and
// technicians on a virtual clock, dispatched by the same pure core the server
// runs (eligibility, ranking, offer plans, the batch assignment), so
// strategies can be compared by numbers.
package sim

import (
	"bytes"
	"errors"
	"fmt"
	"math"
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
	Description string      `yaml:"description"` // one line: what kind of day or place it stands for
	Seeds       int         `yaml:"seeds"`       // how many seeds to run (default 20)
	StartHour   int         `yaml:"start_hour"`  // hour of day the simulation starts
	Hours       int         `yaml:"hours"`       // length of the day
	City        City        `yaml:"city"`
	Technicians Technicians `yaml:"technicians"`
	Demand      Demand      `yaml:"demand"`
	Behaviour   Behaviour   `yaml:"behaviour"`
	Dispatch    Dispatch    `yaml:"dispatch"`
}

// City is the area served: a disc (a centre and a radius), a rectangle or a
// polygon.
type City struct {
	Center     geo.Point   `yaml:"center"`
	RadiusKm   float64     `yaml:"radius_km"`
	Rectangle  *Rectangle  `yaml:"rectangle"`  // instead of the disc
	Polygon    []geo.Point `yaml:"polygon"`    // instead of the disc: vertices in order, not closed
	Resolution int         `yaml:"resolution"` // H3 resolution of the index: 8 for cities (default), 7 for wide rural areas
}

// Rectangle is an area between two corners.
type Rectangle struct {
	SouthWest geo.Point `yaml:"south_west"`
	NorthEast geo.Point `yaml:"north_east"`
}

// Technicians is the supply.
type Technicians struct {
	Count     int                `yaml:"count"`
	Skills    map[string]float64 `yaml:"skills"`     // share of technicians certified for each skill
	MinSkills int                `yaml:"min_skills"` // every technician holds at least this many
	MaxSkills int                `yaml:"max_skills"` // and at most this many (0: no maximum)
	// ExpiredShare is the share of certifications that have expired: still on
	// the profile, no longer qualifying.
	ExpiredShare float64 `yaml:"expired_share"`
	// Towns are where technicians live (weights, spread); HomeUniformShare
	// of them live anywhere in the region instead. No towns: uniform.
	Towns            []Hotspot       `yaml:"towns"`
	HomeUniformShare float64         `yaml:"home_uniform_share"`
	OffDuty          OffDuty         `yaml:"off_duty"`
	Shifts           []ShiftPattern  `yaml:"shifts"`   // when they work; shares add up to 1
	Travel           map[string]Mode `yaml:"travel"`   // car, bike, foot: share and speed
	Capacity         int             `yaml:"capacity"` // simultaneous jobs
}

// ShiftPattern is a share of technicians working from StartHour to EndHour,
// or from Start to End when they are given (any minute, "07:30").
type ShiftPattern struct {
	StartHour int       `yaml:"start_hour"`
	EndHour   int       `yaml:"end_hour"`
	Start     ClockTime `yaml:"start"`
	End       ClockTime `yaml:"end"`
	Share     float64   `yaml:"share"`
}

// Span is the shift's start and end after midnight of the first day.
func (s ShiftPattern) Span() (start, end time.Duration) {
	start, end = time.Duration(s.StartHour)*time.Hour, time.Duration(s.EndHour)*time.Hour
	if s.Start.Set {
		start = s.Start.Since
	}
	if s.End.Set {
		end = s.End.Since
	}
	return start, end
}

// OffDuty is technicians who are not on shift today but would come online
// when asked: with probability ComeOnline, Delay after the asking, for Hours.
type OffDuty struct {
	Count      int      `yaml:"count"`
	ComeOnline float64  `yaml:"come_online"`
	Delay      Duration `yaml:"delay"`
	Hours      float64  `yaml:"hours"`
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
	Surges        []Surge            `yaml:"surges"`          // extra requests in an area for a while (an outage)
}

// Surge is extra ASAP requests, PerHour of them (Poisson), uniform in the
// disc around Center, from From until To: an outage that brings many
// customers of one area at once. Skills is their mix (default: the day's).
type Surge struct {
	From     ClockTime          `yaml:"from"`
	To       ClockTime          `yaml:"to"`
	Center   geo.Point          `yaml:"center"`
	RadiusKm float64            `yaml:"radius_km"`
	PerHour  float64            `yaml:"per_hour"`
	Skills   map[string]float64 `yaml:"skills"`
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
	ByHour            []AnswerHours      `yaml:"by_hour"`    // answer behaviour that differs at some hours of the day
}

// AnswerHours overrides how technicians answer the requests that start
// searching from From until To (after midnight of the first day). A value
// left out keeps the day's.
type AnswerHours struct {
	From              ClockTime `yaml:"from"`
	To                ClockTime `yaml:"to"`
	AcceptProbability *float64  `yaml:"accept_probability"`
	NoResponseShare   *float64  `yaml:"no_response_share"`
	ResponseMedian    *Duration `yaml:"response_median"`
}

// ClockTime reads a time of day "HH:MM", from 00:00 to 48:00 (past 24:00
// is the next day).
type ClockTime struct {
	Since time.Duration // after midnight
	Set   bool
}

// UnmarshalYAML parses "HH:MM".
func (c *ClockTime) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return fmt.Errorf("line %d: want a time of day such as \"07:30\"", n.Line)
	}
	var h, m int
	if _, err := fmt.Sscanf(s, "%d:%d", &h, &m); err != nil || len(s) < 4 || s[len(s)-3] != ':' ||
		h < 0 || m < 0 || m > 59 || h*60+m > 48*60 {
		return fmt.Errorf("line %d: %q is not a time of day from 00:00 to 48:00", n.Line, s)
	}
	c.Since, c.Set = time.Duration(h)*time.Hour+time.Duration(m)*time.Minute, true
	return nil
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
	if strings.ContainsAny(sc.Description, "\r\n") {
		bad("description", "must be one line")
	}
	sc.validateRegion(bad)
	if sc.City.Resolution == 0 {
		sc.City.Resolution = geo.CityResolution
	}
	if sc.City.Resolution != geo.CityResolution && sc.City.Resolution != geo.RuralResolution {
		bad("city.resolution", "must be 7 or 8")
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
	if t.MaxSkills != 0 && (t.MaxSkills < t.MinSkills || t.MaxSkills > len(t.Skills)) {
		bad("technicians.max_skills", "must be from min_skills to the number of skills (or 0: no maximum)")
	}
	share("technicians.expired_share", t.ExpiredShare)
	share("technicians.home_uniform_share", t.HomeUniformShare)
	if t.HomeUniformShare > 0 && len(t.Towns) == 0 {
		bad("technicians.home_uniform_share", "only with technicians.towns")
	}
	for i, h := range t.Towns {
		key := fmt.Sprintf("technicians.towns[%d]", i)
		if err := geo.Validate(h.Center, key+".center.lat", key+".center.lng"); err != nil {
			bad(key+".center", "%v", err)
		}
		if !(h.RadiusKm > 0) || !(h.Weight > 0) {
			bad(key, "radius_km and weight must be above 0")
		}
	}
	if o := t.OffDuty; o.Count != 0 || o.ComeOnline != 0 || o.Delay.Duration != 0 || o.Hours != 0 {
		if o.Count < 1 || o.Count > 100_000 {
			bad("technicians.off_duty.count", "must be from 1 to 100000")
		}
		share("technicians.off_duty.come_online", o.ComeOnline)
		if o.Delay.Duration < 0 || o.Delay.Duration > 4*time.Hour {
			bad("technicians.off_duty.delay", "must be from 0s to 4h")
		}
		if !(o.Hours > 0 && o.Hours <= 24) {
			bad("technicians.off_duty.hours", "must be above 0 and at most 24 (how long one stays online)")
		}
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
		if (s.Start.Set && s.StartHour != 0) || (s.End.Set && s.EndHour != 0) {
			bad(key, "give start and end, or start_hour and end_hour, not both")
		}
		if from, to := s.Span(); from < 0 || to <= from || to > 48*time.Hour {
			bad(key, "needs 00:00 <= start < end <= 48:00 (start_hour < end_hour <= 48)")
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
	for i, u := range d.Surges {
		key := fmt.Sprintf("demand.surges[%d]", i)
		first, last := time.Duration(sc.StartHour)*time.Hour, time.Duration(sc.StartHour+sc.Hours)*time.Hour
		if !u.From.Set || !u.To.Set || u.To.Since <= u.From.Since || u.From.Since < first || u.To.Since > last {
			bad(key, "needs from and to (\"13:00\") within the simulated hours, from before to")
		}
		if err := geo.Validate(u.Center, key+".center.lat", key+".center.lng"); err != nil {
			bad(key+".center", "%v", err)
		}
		if !(u.RadiusKm > 0 && u.RadiusKm <= 100) {
			bad(key+".radius_km", "must be above 0 and at most 100")
		}
		if !(u.PerHour > 0 && u.PerHour <= 10_000) {
			bad(key+".per_hour", "must be above 0 and at most 10000")
		}
		for k, v := range u.Skills {
			if _, ok := t.Skills[k]; !ok {
				bad(key+".skills."+k, "no technician can hold it (not in technicians.skills)")
			}
			if !(v > 0) {
				bad(key+".skills."+k, "weight must be above 0")
			}
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
	for i, h := range b.ByHour {
		key := fmt.Sprintf("behaviour.by_hour[%d]", i)
		if !h.From.Set || !h.To.Set || h.To.Since <= h.From.Since {
			bad(key, "needs from and to (\"18:00\"), from before to")
		}
		for j, o := range b.ByHour[:i] {
			if h.From.Since < o.To.Since && o.From.Since < h.To.Since {
				bad(key, "overlaps behaviour.by_hour[%d]", j)
			}
		}
		if h.AcceptProbability != nil {
			share(key+".accept_probability", *h.AcceptProbability)
			if *h.AcceptProbability-b.AcceptSpread < 0 || *h.AcceptProbability+b.AcceptSpread > 1 {
				bad(key+".accept_probability", "± behaviour.accept_spread must stay within 0 and 1")
			}
		}
		if h.NoResponseShare != nil {
			share(key+".no_response_share", *h.NoResponseShare)
		}
		if h.ResponseMedian != nil && h.ResponseMedian.Duration <= 0 {
			bad(key+".response_median", "must be positive")
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

// validateRegion checks the served area and, for a rectangle or a polygon,
// sets the centre and radius of the disc around it.
func (sc *Scenario) validateRegion(bad func(key, format string, args ...any)) {
	c := &sc.City
	shapes := 0
	if c.RadiusKm != 0 {
		shapes++
	}
	if c.Rectangle != nil {
		shapes++
	}
	if len(c.Polygon) > 0 {
		shapes++
	}
	if shapes != 1 {
		bad("city", "needs exactly one of radius_km (a disc around center), rectangle or polygon")
		return
	}
	if c.RadiusKm != 0 {
		if err := geo.Validate(c.Center, "city.center.lat", "city.center.lng"); err != nil {
			bad("city.center", "%v", err)
		}
		if !(c.RadiusKm > 0 && c.RadiusKm <= 300) {
			bad("city.radius_km", "must be above 0 and at most 300")
		}
		return
	}
	if c.Center != (geo.Point{}) {
		bad("city.center", "only with radius_km (a rectangle or a polygon has its own)")
	}
	var vertices []geo.Point
	key := "city.polygon"
	if r := c.Rectangle; r != nil {
		key = "city.rectangle"
		ok := true
		for name, p := range map[string]geo.Point{"south_west": r.SouthWest, "north_east": r.NorthEast} {
			if err := geo.Validate(p, key+"."+name+".lat", key+"."+name+".lng"); err != nil {
				bad(key+"."+name, "%v", err)
				ok = false
			}
		}
		if !ok {
			return
		}
		if !(r.SouthWest.Lat < r.NorthEast.Lat && r.SouthWest.Lng < r.NorthEast.Lng) {
			bad(key, "south_west must lie south and west of north_east")
			return
		}
		vertices = r.vertices()
	} else {
		if len(c.Polygon) < 3 {
			bad(key, "needs at least 3 vertices")
			return
		}
		for i, p := range c.Polygon {
			k := fmt.Sprintf("%s[%d]", key, i)
			if err := geo.Validate(p, k+".lat", k+".lng"); err != nil {
				bad(k, "%v", err)
				return
			}
		}
		if polygonArea(c.Polygon) == 0 {
			bad(key, "encloses no area")
			return
		}
		vertices = c.Polygon
	}
	lo, hi := bounds(vertices)
	c.Center = geo.Point{Lat: (lo.Lat + hi.Lat) / 2, Lng: (lo.Lng + hi.Lng) / 2}
	for _, v := range vertices {
		c.RadiusKm = max(c.RadiusKm, geo.DistanceM(c.Center, v)/1000)
	}
	if c.RadiusKm > 300 {
		bad(key, "must lie within 300 km of its centre")
	}
}

func (r Rectangle) vertices() []geo.Point {
	sw, ne := r.SouthWest, r.NorthEast
	return []geo.Point{sw, {Lat: sw.Lat, Lng: ne.Lng}, ne, {Lat: ne.Lat, Lng: sw.Lng}}
}

// bounds is the bounding box of points.
func bounds(ps []geo.Point) (lo, hi geo.Point) {
	lo, hi = ps[0], ps[0]
	for _, p := range ps[1:] {
		lo.Lat, lo.Lng = min(lo.Lat, p.Lat), min(lo.Lng, p.Lng)
		hi.Lat, hi.Lng = max(hi.Lat, p.Lat), max(hi.Lng, p.Lng)
	}
	return lo, hi
}

// polygonArea is the absolute shoelace area in degrees² (0: degenerate).
func polygonArea(ps []geo.Point) float64 {
	a := 0.0
	for i, p := range ps {
		q := ps[(i+1)%len(ps)]
		a += p.Lng*q.Lat - q.Lng*p.Lat
	}
	return math.Abs(a) / 2
}

// inPolygon says whether p lies inside the polygon (ray casting in the
// latitude–longitude plane).
func inPolygon(p geo.Point, ps []geo.Point) bool {
	in := false
	for i, j := 0, len(ps)-1; i < len(ps); j, i = i, i+1 {
		a, b := ps[i], ps[j]
		if (a.Lat > p.Lat) != (b.Lat > p.Lat) && p.Lng < (b.Lng-a.Lng)*(p.Lat-a.Lat)/(b.Lat-a.Lat)+a.Lng {
			in = !in
		}
	}
	return in
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
